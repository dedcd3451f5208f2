// The quarantine review page. It calls the admin API routes that its own site serves,
// with the operator's bearer token from sessionStorage, so every action is an ordinary
// API request: authenticated, published as a command and audited like one from curl.
//
// Text that agents wrote (claims, sources, ids) and notes that operators wrote reach the
// page only through textContent and attribute setters, never as HTML.
"use strict";

(() => {
  const API = "/v1/admin";
  const TOKEN_KEY = "stemedb-gate.review.token";
  const REFRESH_INTERVAL_MS = 10000;
  const PAGE_LIMIT = 50;
  const AGENT_ROWS_SHOWN = 100;
  const BREAKER_ROWS_SHOWN = 200;
  const AGENT_ID_PATTERN = /^[0-9a-f]{64}$/;
  // The order of keys in the thresholds panel. Keys that the API adds later follow them.
  const THRESHOLD_ORDER = [
    "quality_threshold", "confidence_threshold", "untrusted_confidence_threshold",
    "duplicate_lookback_hours", "max_future_skew_seconds", "max_age_hours",
    "trust_min_reviews", "trust_min_approval_ratio", "failure_rate_threshold",
    "min_requests", "timeout_seconds", "max_timeout_seconds",
    "max_submissions_per_minute", "half_open_probes", "half_open_max_seconds",
  ];

  const state = {
    filters: { status: "pending", reason: "", agent: "", olderThan: "" },
    cursor: null,          // cursor of the page on screen, null for the first page
    nextCursor: null,
    items: new Map(),      // item id -> item view, for the page on screen
    selected: new Set(),   // ids of selected pending items
    detailId: null,
    pendingAction: null,   // the bulk action that waits for confirmation
    timer: null,
    busy: false,
  };

  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, body) {
      const message = body && typeof body.message === "string"
        ? body.message
        : `the admin API returned HTTP ${status}`;
      super(message);
      this.status = status;
      this.body = body || {};
    }
  }

  // -- token and requests ---------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "review-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, body, options = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${options.token || token()}` };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (options.idempotencyKey) {
      headers["Idempotency-Key"] = options.idempotencyKey;
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (error) {
      throw new ApiError(0, { message: `cannot connect to the admin API (${error.message}). Check that it runs.` });
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401 && !options.token) {
      signOut("The admin API did not accept your token any more. Sign in again.");
    }
    if (!response.ok) {
      throw new ApiError(response.status, data);
    }
    return data;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) {
        search.set(key, String(value));
      }
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  // -- messages -------------------------------------------------------------------

  function say(text) {
    $("errors").textContent = "";
    $("messages").textContent = text;
  }

  function complain(text) {
    $("errors").textContent = text;
  }

  function describeError(error) {
    if (!(error instanceof ApiError)) {
      return String(error);
    }
    const parts = [error.message];
    if (error.body.field) {
      parts.push(`(field: ${error.body.field})`);
    }
    if (error.body.command_id) {
      parts.push(`(command ${error.body.command_id})`);
    }
    return parts.join(" ");
  }

  // -- formatting -----------------------------------------------------------------

  function shortAgent(agentId) {
    return agentId ? `${agentId.slice(0, 12)}…` : "";
  }

  function formatTime(value) {
    if (!value) {
      return "–";
    }
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) {
      return String(value);
    }
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function formatAge(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
      return "–";
    }
    const whole = Math.max(0, Math.floor(seconds));
    if (whole < 60) {
      return `${whole} s`;
    }
    if (whole < 3600) {
      return `${Math.floor(whole / 60)} min ${whole % 60} s`;
    }
    if (whole < 86400) {
      return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
    }
    return `${Math.floor(whole / 86400)} d ${Math.floor((whole % 86400) / 3600)} h`;
  }

  function ageSince(value) {
    const time = new Date(value).getTime();
    return Number.isNaN(time) ? null : (Date.now() - time) / 1000;
  }

  function formatNumber(value) {
    return typeof value === "number" ? String(Math.round(value * 1000) / 1000) : "–";
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function button(text, onClick, options = {}) {
    const node = element("button", text, options.className);
    node.type = "button";
    if (options.id) {
      node.id = options.id;
    }
    if (options.label) {
      node.setAttribute("aria-label", options.label);
    }
    node.addEventListener("click", onClick);
    return node;
  }

  function cell(row, content, className) {
    const td = element("td", null, className);
    if (content instanceof Node) {
      td.append(content);
    } else {
      td.textContent = content === null || content === undefined ? "" : String(content);
    }
    row.append(td);
    return td;
  }

  function pair(list, term, value) {
    const wrapper = element("div");
    wrapper.append(element("dt", term));
    const dd = element("dd");
    if (value instanceof Node) {
      dd.append(value);
    } else {
      dd.textContent = value === null || value === undefined || value === "" ? "–" : String(value);
    }
    wrapper.append(dd);
    list.append(wrapper);
  }

  // A source becomes a link only when it parses as an http or https URL; anything
  // else (urn:, ftp:, javascript:, free text) is shown as plain text.
  function sourceNode(source) {
    let url = null;
    try {
      url = new URL(String(source));
    } catch (error) {
      url = null;
    }
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      const link = element("a", String(source));
      link.href = url.href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      return link;
    }
    return element("span", String(source), "plain-source");
  }

  // Keep keyboard focus on the same control when a refresh rebuilds a table.
  function keepFocus(rebuild) {
    const focusedId = document.activeElement ? document.activeElement.id : "";
    rebuild();
    if (focusedId && document.activeElement !== $(focusedId) && $(focusedId)) {
      $(focusedId).focus();
    }
  }

  // -- sign-in --------------------------------------------------------------------

  function showSignedIn(signedIn) {
    $("sign-in").hidden = signedIn;
    $("main").hidden = !signedIn;
    $("session-bar").hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopTimer();
    state.items.clear();
    state.selected.clear();
    showSignedIn(false);
    $("token-input").value = "";
    $("sign-in-error").textContent = message || "";
    $("messages").textContent = message ? "" : "Signed out.";
    $("token-input").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const candidate = $("token-input").value.trim();
    $("sign-in-error").textContent = "";
    if (!candidate) {
      $("sign-in-error").textContent = "Enter your operator token.";
      return;
    }
    $("sign-in-button").disabled = true;
    try {
      await api("GET", "/quarantine/summary", undefined, { token: candidate });
    } catch (error) {
      // 503 means the token was accepted but the API is still loading the gate's state.
      if (!(error instanceof ApiError && error.status === 503)) {
        $("sign-in-error").textContent = error instanceof ApiError && error.status === 401
          ? "The admin API did not accept this token. Check it against the tokens file."
          : describeError(error);
        return;
      }
    } finally {
      $("sign-in-button").disabled = false;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $("token-input").value = "";
    showSignedIn(true);
    say("Signed in.");
    $("main").focus({ preventScroll: true });
    await refresh();
    startTimer();
  }

  // -- refresh --------------------------------------------------------------------

  function startTimer() {
    stopTimer();
    if ($("auto-refresh").checked) {
      state.timer = setInterval(() => {
        if (!document.hidden && !state.busy && !state.pendingAction) {
          refresh();
        }
      }, REFRESH_INTERVAL_MS);
    }
  }

  function stopTimer() {
    if (state.timer !== null) {
      clearInterval(state.timer);
      state.timer = null;
    }
  }

  async function refresh() {
    if (!token()) {
      return;
    }
    const results = await Promise.allSettled([
      loadSummary(), loadItems(), loadBreakers(), loadThresholds(),
    ]);
    const failed = results.find((result) => result.status === "rejected");
    if (failed) {
      const error = failed.reason;
      $("refresh-status").textContent = `Refresh failed at ${formatTime(new Date().toISOString())}`;
      if (token()) {
        complain(error instanceof ApiError && error.status === 503
          ? "The admin API is still loading the gate's state; the page retries on the next refresh."
          : describeError(error));
      }
      return;
    }
    $("refresh-status").textContent = `Refreshed ${formatTime(new Date().toISOString())}`;
  }

  async function loadSummary() {
    const summary = await api("GET", "/quarantine/summary");
    $("total-pending").textContent = String(summary.total_pending);
    $("oldest-pending").textContent = summary.oldest_pending_at
      ? `${formatAge(summary.oldest_pending_age_seconds)} (since ${formatTime(summary.oldest_pending_at)})`
      : "nothing pending";
    $("by-reason").textContent = summary.by_reason.length
      ? summary.by_reason.map((entry) => `${entry.reason} ${entry.count}`).join(" · ")
      : "–";
    keepFocus(() => renderAgents(summary.by_agent));
    renderAgentActions(summary.by_agent);
  }

  function renderAgents(byAgent) {
    const body = $("agents-body");
    body.replaceChildren();
    for (const entry of byAgent.slice(0, AGENT_ROWS_SHOWN)) {
      const row = element("tr");
      if (entry.agent_id === state.filters.agent) {
        row.className = "current";
      }
      const show = button(shortAgent(entry.agent_id), () => showAgent(entry.agent_id), {
        id: `show-agent-${entry.agent_id}`,
        label: `Show the ${entry.count} pending items of agent ${entry.agent_id}`,
        className: "agent-button",
      });
      show.title = entry.agent_id;
      cell(row, show);
      cell(row, entry.count, "num");
      cell(row, formatAge(ageSince(entry.oldest_pending_at)), "nowrap");
      cell(row, button("Breaker…", () => prepareBreaker(entry.agent_id), {
        id: `breaker-agent-${entry.agent_id}`,
        label: `Open or reset the breaker of agent ${entry.agent_id}`,
      }), "actions");
      body.append(row);
    }
    if (!byAgent.length) {
      const row = element("tr");
      cell(row, "No agent has pending items.").colSpan = 4;
      body.append(row);
    }
    const more = byAgent.length - AGENT_ROWS_SHOWN;
    $("agents-more").hidden = more <= 0;
    $("agents-more").textContent = more > 0
      ? `${more} more agents with fewer pending items are not shown; filter by agent id to see them.`
      : "";
  }

  function renderAgentActions(byAgent) {
    const agent = state.filters.agent;
    const entry = byAgent.find((candidate) => candidate.agent_id === agent);
    const count = entry ? entry.count : 0;
    $("agent-actions").hidden = !agent || count === 0;
    $("approve-agent").textContent = `Approve all ${count} pending items of agent ${shortAgent(agent)}`;
    $("reject-agent").textContent = `Reject all ${count} pending items of agent ${shortAgent(agent)}`;
    $("approve-agent").dataset.count = String(count);
    $("reject-agent").dataset.count = String(count);
  }

  async function loadItems() {
    const f = state.filters;
    const page = await api("GET", "/quarantine" + query({
      status: f.status,
      reason: f.reason,
      agent_id: f.agent,
      older_than_seconds: f.olderThan,
      limit: PAGE_LIMIT,
      cursor: state.cursor,
    }));
    state.nextCursor = page.next_cursor;
    state.items = new Map(page.items.map((item) => [item.id, item]));
    for (const id of Array.from(state.selected)) {
      const item = state.items.get(id);
      if (!item || item.status !== "pending") {
        state.selected.delete(id);
      }
    }
    keepFocus(() => renderItems(page));
  }

  function renderItems(page) {
    const body = $("items-body");
    body.replaceChildren();
    for (const item of page.items) {
      const row = element("tr");
      if (item.id === state.detailId) {
        row.className = "current";
      }
      const pick = element("input");
      pick.type = "checkbox";
      pick.id = `select-${item.id}`;
      pick.disabled = item.status !== "pending";
      pick.checked = state.selected.has(item.id);
      pick.setAttribute("aria-label", `Select item ${item.id}: ${item.subject} ${item.predicate} ${item.object}`);
      pick.addEventListener("change", () => {
        if (pick.checked) {
          state.selected.add(item.id);
        } else {
          state.selected.delete(item.id);
        }
        renderSelection();
      });
      cell(row, pick);
      const when = element("span", formatAge(ageSince(item.quarantined_at)) + " ago");
      when.title = formatTime(item.quarantined_at);
      cell(row, when, "nowrap");
      const agent = element("code", shortAgent(item.agent_id));
      agent.title = item.agent_id;
      cell(row, agent);
      cell(row, (item.reasons || [item.reason]).join(", "));
      cell(row, formatNumber(item.quality_score), "num");
      cell(row, `${item.subject} · ${item.predicate} · ${item.object}`, "claim");
      cell(row, item.status, `status status-${item.status}`);
      cell(row, button("Details", () => openDetail(item.id), {
        id: `details-${item.id}`,
        label: `Details of item ${item.id}`,
      }));
      body.append(row);
    }
    if (!page.items.length) {
      const row = element("tr");
      cell(row, "No item matches these filters.").colSpan = 8;
      body.append(row);
    }
    $("items-count").textContent = `${page.total} items match; showing ${page.items.length}` +
      (state.cursor ? " from a later page, oldest first." : ", oldest first.");
    $("next-page").disabled = !state.nextCursor;
    $("first-page").disabled = !state.cursor;
    renderSelection();
  }

  function renderSelection() {
    const pending = Array.from(state.items.values()).filter((item) => item.status === "pending");
    const count = state.selected.size;
    $("selection-count").textContent = count
      ? `${count} item${count === 1 ? "" : "s"} selected.`
      : "No item selected. Tick items in the list, or list one agent to act on all its items.";
    $("approve-selected").disabled = count === 0;
    $("reject-selected").disabled = count === 0;
    $("approve-selected").textContent = `Approve selected (${count})`;
    $("reject-selected").textContent = `Reject selected (${count})`;
    const all = $("select-page");
    all.disabled = pending.length === 0;
    all.checked = pending.length > 0 && pending.every((item) => state.selected.has(item.id));
  }

  async function loadBreakers() {
    const page = await api("GET", "/circuit_breakers" + query({
      state: $("breaker-state").value,
      limit: BREAKER_ROWS_SHOWN,
    }));
    keepFocus(() => renderBreakers(page));
  }

  function renderBreakers(page) {
    const body = $("breakers-body");
    body.replaceChildren();
    for (const breaker of page.circuit_breakers) {
      const row = element("tr");
      const agent = element("code", shortAgent(breaker.agent_id));
      agent.title = breaker.agent_id;
      cell(row, agent);
      cell(row, breaker.state + (breaker.manual ? " (manual)" : ""), `state state-${breaker.state}`);
      cell(row, breaker.until ? formatTime(breaker.until) : "–", "nowrap");
      cell(row, breaker.reason || "–");
      cell(row, breaker.trips, "num");
      const actions = element("td", null, "actions");
      actions.append(button("Select", () => prepareBreaker(breaker.agent_id), {
        id: `breaker-select-${breaker.agent_id}`,
        label: `Select agent ${breaker.agent_id} in the breaker form`,
      }));
      if (breaker.state !== "CLOSED") {
        actions.append(button("Reset", () => resetBreaker(breaker.agent_id), {
          id: `breaker-reset-${breaker.agent_id}`,
          label: `Reset the breaker of agent ${breaker.agent_id}`,
        }));
      }
      row.append(actions);
      body.append(row);
    }
    if (!page.circuit_breakers.length) {
      const row = element("tr");
      cell(row, "No breaker in this state.").colSpan = 6;
      body.append(row);
    }
    const more = page.total - page.circuit_breakers.length;
    $("breakers-more").hidden = more <= 0;
    $("breakers-more").textContent = more > 0
      ? `${more} more breakers are not shown; choose a state to narrow the list.`
      : "";
  }

  async function loadThresholds() {
    const thresholds = await api("GET", "/content_defense/thresholds");
    const list = $("thresholds");
    list.replaceChildren();
    const keys = THRESHOLD_ORDER.filter((key) => key in thresholds);
    for (const key of Object.keys(thresholds)) {
      if (!keys.includes(key) && key !== "updated_by" && key !== "updated_at") {
        keys.push(key);
      }
    }
    for (const key of keys) {
      pair(list, key, thresholds[key]);
    }
    pair(list, "changed by", thresholds.updated_by
      ? `${thresholds.updated_by} at ${formatTime(thresholds.updated_at)}`
      : "not changed at run time (configured values)");
  }

  // -- filters and pages ----------------------------------------------------------

  function readFilters() {
    const agent = $("filter-agent").value.trim().toLowerCase();
    if (agent && !AGENT_ID_PATTERN.test(agent)) {
      $("filter-agent-error").textContent = "An agent id is 64 hex digits.";
      $("filter-agent").setAttribute("aria-invalid", "true");
      $("filter-agent").focus();
      return false;
    }
    $("filter-agent-error").textContent = "";
    $("filter-agent").removeAttribute("aria-invalid");
    state.filters = {
      status: $("filter-status").value,
      reason: $("filter-reason").value,
      agent,
      olderThan: $("filter-age").value,
    };
    return true;
  }

  async function applyFilters(event) {
    if (event) {
      event.preventDefault();
    }
    if (!readFilters()) {
      return;
    }
    state.cursor = null;
    state.selected.clear();
    await refresh();
  }

  async function showAgent(agentId) {
    $("filter-agent").value = agentId;
    $("filter-status").value = "pending";
    await applyFilters();
    $("items-title").scrollIntoView({ block: "start" });
  }

  async function clearFilters() {
    $("filter-status").value = "pending";
    $("filter-reason").value = "";
    $("filter-agent").value = "";
    $("filter-age").value = "";
    await applyFilters();
  }

  async function goToPage(cursor) {
    state.cursor = cursor;
    await refresh();
  }

  function toggleSelectPage() {
    const pending = Array.from(state.items.values()).filter((item) => item.status === "pending");
    const selectAll = $("select-page").checked;
    for (const item of pending) {
      if (selectAll) {
        state.selected.add(item.id);
      } else {
        state.selected.delete(item.id);
      }
      const box = $(`select-${item.id}`);
      if (box) {
        box.checked = selectAll;
      }
    }
    renderSelection();
  }

  // -- decisions ------------------------------------------------------------------

  function requireNote(field) {
    const note = field.value.trim();
    if (!note) {
      complain("Write a note first: it is recorded with the decision.");
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return null;
    }
    field.removeAttribute("aria-invalid");
    return note;
  }

  function askToConfirm(text, action) {
    state.pendingAction = action;
    $("confirm-text").textContent = text;
    $("confirm-box").hidden = false;
    $("confirm-yes").focus();
  }

  function closeConfirm() {
    state.pendingAction = null;
    $("confirm-box").hidden = true;
  }

  function bulkDecision(kind, target) {
    const note = requireNote($("decide-note"));
    if (note === null) {
      return;
    }
    const body = target === "agent"
      ? { agent_id: state.filters.agent, note }
      : { ids: Array.from(state.selected), note };
    const count = target === "agent"
      ? Number($(`${kind}-agent`).dataset.count || 0)
      : body.ids.length;
    const description = target === "agent"
      ? `all ${count} pending items of agent ${state.filters.agent}`
      : `${count} selected item${count === 1 ? "" : "s"}`;
    askToConfirm(`${kind === "approve" ? "Approve" : "Reject"} ${description}?`, async () => {
      const verb = kind === "approve" ? "approved" : "rejected";
      try {
        const result = await api("POST", `/quarantine/${kind}?wait=true`, body, {
          idempotencyKey: newIdempotencyKey(),
        });
        const r = result.results || {};
        let text = `${r.applied || 0} of ${result.count} items ${verb}`;
        const problems = ["not_found", "conflict", "invalid"].filter((key) => r[key]);
        if (problems.length) {
          text += ` (${problems.map((key) => `${r[key]} ${key.replace("_", " ")}`).join(", ")})`;
        }
        if (result.remaining) {
          text += `; ${result.remaining} more of this agent's items remain, repeat to decide them`;
        }
        say(`${text}.`);
        $("decide-note").value = "";
        state.selected.clear();
      } catch (error) {
        if (error instanceof ApiError && error.status === 504) {
          complain(`The worker did not answer every command in time (${error.body.pending} still pending); ` +
            "they stay published and may still be applied. Refresh in a moment.");
        } else {
          complain(`The ${kind} request failed: ${describeError(error)}`);
        }
      }
    });
  }

  async function decideOne(kind) {
    const itemId = state.detailId;
    const note = requireNote($("detail-note"));
    if (!itemId || note === null) {
      return;
    }
    await runBusy(async () => {
      try {
        const result = await api("POST", `/quarantine/${encodeURIComponent(itemId)}/${kind}?wait=true`,
          { note }, { idempotencyKey: newIdempotencyKey() });
        say(`Item ${itemId} ${result.item.status} (command ${result.command_id}).`);
        $("detail-note").value = "";
        state.selected.delete(itemId);
        renderDetail(result.item);
      } catch (error) {
        complain(`The ${kind} of item ${itemId} failed: ${describeError(error)}`);
      }
      await refresh();
    });
  }

  async function runBusy(work) {
    state.busy = true;
    try {
      await work();
    } finally {
      state.busy = false;
    }
  }

  // -- item detail ----------------------------------------------------------------

  async function openDetail(itemId) {
    try {
      const item = await api("GET", `/quarantine/${encodeURIComponent(itemId)}`);
      state.detailId = itemId;
      renderDetail(item);
      if (!$("detail").open) {
        $("detail").showModal();
      }
      $("detail-title").focus();
      for (const row of $("items-body").children) {
        row.classList.toggle("current", Boolean(row.querySelector(`#details-${itemId}`)));
      }
    } catch (error) {
      complain(`Item ${itemId} cannot be shown: ${describeError(error)}`);
    }
  }

  function renderDetail(item) {
    $("detail-title").textContent = `Item ${item.id} · ${item.status}`;
    const claim = $("detail-claim");
    claim.replaceChildren();
    pair(claim, "subject", item.subject);
    pair(claim, "predicate", item.predicate);
    pair(claim, "object", item.object);
    pair(claim, "confidence", formatNumber(item.confidence));
    const agent = element("code", item.agent_id);
    pair(claim, "agent", agent);
    pair(claim, "assertion id", item.assertion_id);
    pair(claim, "quarantined", formatTime(item.quarantined_at));
    pair(claim, "reasons", (item.reasons || []).join(", "));

    const sources = $("detail-sources");
    sources.replaceChildren();
    for (const source of item.sources || []) {
      const entry = element("li");
      entry.append(sourceNode(source));
      sources.append(entry);
    }
    if (!(item.sources || []).length) {
      sources.append(element("li", "no sources", "hint"));
    }

    $("detail-score").textContent = `Quality score ${formatNumber(item.quality_score)}` +
      ": 1.0 minus the penalty of each rule below, clamped to 0 to 1.";
    const breakdown = $("detail-breakdown");
    breakdown.replaceChildren();
    const rules = Object.entries(item.score_breakdown || {});
    for (const [rule, penalty] of rules) {
      const row = element("tr");
      cell(row, rule);
      cell(row, formatNumber(penalty), "num");
      breakdown.append(row);
    }
    if (!rules.length) {
      const row = element("tr");
      cell(row, "no rule applied").colSpan = 2;
      breakdown.append(row);
    }

    const review = $("detail-review");
    review.replaceChildren();
    pair(review, "status", item.status);
    pair(review, "decided", item.decided_at ? formatTime(item.decided_at) : "–");
    pair(review, "by", item.decided_by);
    pair(review, "notes", (item.notes || []).join(" | "));

    const pending = item.status === "pending";
    $("detail-form").hidden = !pending;
  }

  // Runs however the dialog closed: the Close button, or Escape, which the browser handles.
  function detailClosed() {
    const itemId = state.detailId;
    state.detailId = null;
    const opener = itemId ? $(`details-${itemId}`) : null;
    if (opener) {
      opener.focus();
    }
  }

  // -- breakers -------------------------------------------------------------------

  function prepareBreaker(agentId) {
    $("breaker-agent").value = agentId;
    $("breaker-form").scrollIntoView({ block: "center" });
    $("breaker-reason").focus();
  }

  function breakerAgent() {
    const agent = $("breaker-agent").value.trim().toLowerCase();
    if (!AGENT_ID_PATTERN.test(agent)) {
      complain("Enter the agent id, 64 hex digits, in the breaker form.");
      $("breaker-agent").setAttribute("aria-invalid", "true");
      $("breaker-agent").focus();
      return null;
    }
    $("breaker-agent").removeAttribute("aria-invalid");
    return agent;
  }

  async function openBreaker() {
    const agent = breakerAgent();
    if (!agent) {
      return;
    }
    const reason = $("breaker-reason").value.trim();
    if (!reason) {
      complain("Give a reason to open the breaker; it is recorded with the ban.");
      $("breaker-reason").setAttribute("aria-invalid", "true");
      $("breaker-reason").focus();
      return;
    }
    $("breaker-reason").removeAttribute("aria-invalid");
    const amount = Number($("breaker-duration").value);
    if (!Number.isFinite(amount) || amount <= 0) {
      complain("The duration must be a number above 0.");
      $("breaker-duration").focus();
      return;
    }
    const durationSeconds = amount * Number($("breaker-unit").value);
    await runBusy(async () => {
      try {
        const result = await api("POST", `/circuit_breakers/${agent}/open?wait=true`,
          { reason, duration_seconds: durationSeconds }, { idempotencyKey: newIdempotencyKey() });
        say(`Breaker of agent ${shortAgent(agent)} is ${result.state} until ${formatTime(result.until)}.`);
      } catch (error) {
        complain(`Opening the breaker of agent ${shortAgent(agent)} failed: ${describeError(error)}`);
      }
      await refresh();
    });
  }

  async function resetBreaker(agentId) {
    const agent = agentId || breakerAgent();
    if (!agent) {
      return;
    }
    const reason = $("breaker-reason").value.trim();
    await runBusy(async () => {
      try {
        const result = await api("POST", `/circuit_breakers/${agent}/reset?wait=true`,
          reason ? { reason } : {}, { idempotencyKey: newIdempotencyKey() });
        say(`Breaker of agent ${shortAgent(agent)} is ${result.state}.`);
      } catch (error) {
        complain(`Resetting the breaker of agent ${shortAgent(agent)} failed: ${describeError(error)}`);
      }
      await refresh();
    });
  }

  // -- wiring ---------------------------------------------------------------------

  function start() {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    $("refresh-now").addEventListener("click", () => refresh());
    $("auto-refresh").addEventListener("change", startTimer);
    $("filters").addEventListener("submit", applyFilters);
    $("clear-filters").addEventListener("click", clearFilters);
    $("next-page").addEventListener("click", () => goToPage(state.nextCursor));
    $("first-page").addEventListener("click", () => goToPage(null));
    $("select-page").addEventListener("change", toggleSelectPage);
    $("approve-selected").addEventListener("click", () => bulkDecision("approve", "selection"));
    $("reject-selected").addEventListener("click", () => bulkDecision("reject", "selection"));
    $("approve-agent").addEventListener("click", () => bulkDecision("approve", "agent"));
    $("reject-agent").addEventListener("click", () => bulkDecision("reject", "agent"));
    $("confirm-yes").addEventListener("click", async () => {
      const action = state.pendingAction;
      closeConfirm();
      if (action) {
        await runBusy(action);
        await refresh();
      }
    });
    $("confirm-no").addEventListener("click", () => {
      closeConfirm();
      say("Cancelled; nothing was sent.");
    });
    for (const id of ["decide-form", "detail-form", "breaker-form"]) {
      $(id).addEventListener("submit", (event) => event.preventDefault());
    }
    $("detail-approve").addEventListener("click", () => decideOne("approve"));
    $("detail-reject").addEventListener("click", () => decideOne("reject"));
    $("detail-close").addEventListener("click", () => $("detail").close());
    $("detail").addEventListener("close", detailClosed);
    $("breaker-open").addEventListener("click", openBreaker);
    $("breaker-reset").addEventListener("click", () => resetBreaker(null));
    $("breaker-state").addEventListener("change", () => refresh());

    if (token()) {
      showSignedIn(true);
      refresh().then(startTimer);
    } else {
      showSignedIn(false);
      $("token-input").focus();
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
