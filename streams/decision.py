"""The decision for one valid assertion, as a pure function of the agent's state.

``decide`` runs steps 2 to 6 of the gate (allow-list, breaker, content defense, route,
count and judge) and returns the new agent state, the duplicate-index entries to write
and the breaker transitions. It does no I/O, so the worker stays a thin loop: decode,
read state, decide, write state, route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from schemas.assertion import Assertion
from schemas.breaker import BreakerState
from schemas.verdict import Reason, Route
from streams import windows
from streams.breaker import Admission, Breaker, Step, Transition
from streams.scoring import ClaimView, Score, ScoringContext, normalize_text, score
from streams.settings import CircuitBreakerSettings, ContentDefenseSettings
from streams.windows import WindowCounts

REASON_FLOODING = "flooding"
# Verdicts of uncommitted records kept per agent; see AgentState.remember.
# NOTE: a record that faust drops while more than this many later records of its agent
# are applied and not committed is taken for handled when it comes again, and skipped.
MAX_RECENT = 256
REASON_FAILURE_RATE = "failure_rate"


@dataclass(frozen=True)
class AllowEntry:
    reason: str
    expires_at_ms: int | None = None
    added_by: str | None = None

    def active(self, now_ms: int) -> bool:
        return self.expires_at_ms is None or now_ms < self.expires_at_ms


@dataclass(frozen=True)
class AgentState:
    """Everything the gate keeps about one agent, stored as one table value."""

    breaker: Breaker = field(default_factory=Breaker)
    windows: WindowCounts = windows.EMPTY
    approvals: int = 0
    rejections: int = 0
    allowlist: AllowEntry | None = None
    last_offset: int = -1
    """Highest offset of the ``assertions`` records applied."""
    recent: tuple[SeenEntry, ...] = ()
    """Verdicts of the applied records at or above ``recent_from``, by offset.

    Stored with the counts in one table value, so after a crash the two always agree:
    a record fetched again is applied exactly when its offset is here.
    """
    recent_from: int = 0
    """Every applied record at or above this offset is in ``recent``."""

    def to_dict(self) -> dict[str, Any]:
        # vars() of these flat dataclasses contains exactly their fields. dataclasses.asdict
        # gives the same dict but took a third of the gate's own time per record.
        breaker = dict(vars(self.breaker))
        breaker["state"] = self.breaker.state.value
        return {
            "breaker": breaker,
            "windows": dict(vars(self.windows)),
            "approvals": self.approvals,
            "rejections": self.rejections,
            "allowlist": dict(vars(self.allowlist)) if self.allowlist is not None else None,
            "last_offset": self.last_offset,
            "recent": [entry.to_dict() for entry in self.recent],
            "recent_from": self.recent_from,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentState:
        breaker = dict(data["breaker"])
        breaker["state"] = BreakerState(breaker["state"])
        allow = data.get("allowlist")
        last_offset = int(data.get("last_offset", -1))
        return cls(
            breaker=Breaker(**breaker),
            windows=WindowCounts(**data["windows"]),
            approvals=int(data.get("approvals", 0)),
            rejections=int(data.get("rejections", 0)),
            allowlist=AllowEntry(**allow) if allow else None,
            last_offset=last_offset,
            recent=tuple(SeenEntry.from_dict(entry) for entry in data.get("recent", ())),
            # A state stored without the list has no record of its applied offsets.
            recent_from=int(data.get("recent_from", last_offset + 1)),
        )

    def applied(self, offset: int) -> SeenEntry | None:
        """Return the verdict of the record at ``offset`` if it is in ``recent``."""
        for entry in self.recent:
            if entry.offset == offset:
                return entry
        return None

    def remember(self, entry: SeenEntry, committed: int | None) -> AgentState:
        """Add a decided record's verdict to ``recent``.

        Records below ``committed``, the partition's committed offset, are never
        fetched again after a restart, so their entries are dropped. At most
        ``MAX_RECENT`` entries are kept, and ``recent_from`` moves past the ones dropped.
        """
        start = self.recent_from if committed is None else max(self.recent_from, committed)
        entries = sorted(
            (e for e in (*self.recent, entry) if e.offset >= start), key=lambda e: e.offset
        )
        if len(entries) > MAX_RECENT:
            start = entries[-MAX_RECENT - 1].offset + 1
            entries = entries[-MAX_RECENT:]
        return replace(self, recent=tuple(entries), recent_from=start)

    def is_trusted(self, now_ms: int, cd: ContentDefenseSettings) -> bool:
        if self.allowlist is not None and self.allowlist.active(now_ms):
            return True
        reviews = self.approvals + self.rejections
        return reviews >= cd.trust_min_reviews and (
            self.approvals / reviews >= cd.trust_min_approval_ratio
        )


@dataclass(frozen=True)
class SeenEntry:
    """A duplicate-index entry: when a key was seen and the verdict its record got."""

    at_ms: int
    offset: int
    route: str
    reasons: tuple[str, ...] = ()
    quality_score: float | None = None
    scored: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_ms": self.at_ms,
            "offset": self.offset,
            "route": self.route,
            "reasons": list(self.reasons),
            "quality_score": self.quality_score,
            "scored": self.scored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeenEntry:
        return cls(
            at_ms=int(data["at_ms"]),
            offset=int(data["offset"]),
            route=str(data["route"]),
            reasons=tuple(data.get("reasons", ())),
            quality_score=data.get("quality_score"),
            scored=bool(data.get("scored", True)),
        )


SeenLookup = Callable[[str], SeenEntry | None]


@dataclass(frozen=True)
class Decision:
    route: Route
    reasons: tuple[Reason, ...]
    score: Score | None
    state: AgentState
    seen_writes: dict[str, SeenEntry]
    transitions: tuple[Transition, ...]


def id_key(assertion_id: str) -> str:
    return f"id:{assertion_id}"


def claim_key(subject: str, predicate: str, obj: str) -> str:
    text = "\x1f".join(normalize_text(part) for part in (subject, predicate, obj))
    return "claim:" + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _within(entry: SeenEntry | None, now_ms: int, lookback_ms: int) -> bool:
    return entry is not None and entry.scored and now_ms - entry.at_ms <= lookback_ms


def _content_reasons(
    assertion: Assertion,
    claim_score: Score,
    trusted: bool,
    lookup: SeenLookup,
    now_ms: int,
    cd: ContentDefenseSettings,
) -> list[Reason]:
    reasons: list[Reason] = []
    if claim_score.value < cd.quality_threshold:
        reasons.append(Reason.LOW_QUALITY)

    lookback_ms = int(cd.duplicate_lookback_hours * 3_600_000)
    same_id = lookup(id_key(assertion.id))
    same_claim = lookup(claim_key(assertion.subject, assertion.predicate, assertion.object))
    if _within(same_id, now_ms, lookback_ms) or _within(same_claim, now_ms, lookback_ms):
        reasons.append(Reason.DUPLICATE)

    confidence = assertion.confidence
    if (not trusted and confidence >= cd.untrusted_confidence_threshold) or (
        confidence >= cd.confidence_threshold and not assertion.sources
    ):
        reasons.append(Reason.UNTRUSTED_HIGH_CONFIDENCE)
    return reasons


def _judge(breaker: Breaker, counts: WindowCounts, now_ms: int, cb: CircuitBreakerSettings) -> Step:
    """Trip the breaker on a flood (any state but OPEN) or a failure rate (CLOSED only)."""
    size_ms = int(cb.window_seconds * 1000)
    estimate = windows.sliding_estimate(counts, now_ms, size_ms)
    if estimate > windows.limit_per_window(cb.max_submissions_per_minute, size_ms):
        return breaker.trip(now_ms, REASON_FLOODING, cb)
    if (
        breaker.state is BreakerState.CLOSED
        and counts.scored >= cb.min_requests
        and windows.failure_rate(counts) >= cb.failure_rate_threshold
    ):
        return breaker.trip(now_ms, REASON_FAILURE_RATE, cb)
    return Step(breaker, ())


def _tally(
    counts: WindowCounts, late: bool, now_ms: int, size_ms: int, *, scored: bool, quarantined: bool
) -> WindowCounts:
    """Count one record, in the window it fell in when it is ``late``."""
    if late:
        return windows.count_late(counts, now_ms, size_ms, scored=scored, quarantined=quarantined)
    return windows.count(counts, scored=scored, quarantined=quarantined)


def decide(
    assertion: Assertion,
    state: AgentState,
    lookup: SeenLookup,
    now_ms: int,
    offset: int,
    cd: ContentDefenseSettings,
    cb: CircuitBreakerSettings,
) -> Decision:
    """Decide one valid assertion at broker time ``now_ms``.

    Steps:
    1. time-based breaker transitions, and the window that contains ``now_ms``;
    2. admission: OPEN bans, HALF_OPEN scores only while a probe slot is free;
    3. content defense, skipped for an active allow-list entry;
    4. route and count;
    5. settle a HALF_OPEN probe, then judge the agent's rate and failure share.
    """
    size_ms = int(cb.window_seconds * 1000)
    transitions: list[Transition] = []
    # A record decided after later records of its agent: faust dropped it on its way
    # to the stream and it was fetched again.
    late = offset < state.last_offset
    last_offset = max(offset, state.last_offset)

    # 1. Time first, so a breaker whose OPEN ended lets this record through as a probe.
    step = state.breaker.tick(now_ms, cb)
    breaker = step.breaker
    transitions.extend(step.transitions)
    counts = windows.advance(state.windows, now_ms, size_ms)

    # 2. Admission.
    admission = breaker.admit()
    probing = False
    if admission is Admission.PROBE:
        breaker, probing = breaker.start_probe(cb)
    if admission is Admission.BAN or (admission is Admission.PROBE and not probing):
        reason = (
            Reason.CIRCUIT_OPEN
            if admission is Admission.BAN
            else (Reason.HALF_OPEN_PROBES_EXHAUSTED)
        )
        counts = _tally(counts, late, now_ms, size_ms, scored=False, quarantined=False)
        step = _judge(breaker, counts, now_ms, cb)
        transitions.extend(step.transitions)
        # The verdict is stored for replays, unless that would hide a scored copy of the
        # same id from the duplicate check.
        lookback_ms = int(cd.duplicate_lookback_hours * 3_600_000)
        key = id_key(assertion.id)
        writes = {}
        if not _within(lookup(key), now_ms, lookback_ms):
            writes[key] = SeenEntry(
                now_ms, offset, Route.BANNED.value, (reason.value,), None, scored=False
            )
        return Decision(
            route=Route.BANNED,
            reasons=(reason,),
            score=None,
            state=replace(state, breaker=step.breaker, windows=counts, last_offset=last_offset),
            seen_writes=writes,
            transitions=tuple(transitions),
        )

    # 3. Content defense.
    claim_score = score(
        ClaimView(
            subject=assertion.subject,
            predicate=assertion.predicate,
            object=assertion.object,
            confidence=assertion.confidence,
            sources=assertion.sources,
            created_at=assertion.created_at,
        ),
        ScoringContext(
            record_time=_ms_to_datetime(now_ms),
            max_future_skew_seconds=cd.max_future_skew_seconds,
            max_age_hours=cd.max_age_hours,
        ),
    )
    allowed = state.allowlist is not None and state.allowlist.active(now_ms)
    reasons: list[Reason] = []
    if not allowed:
        trusted = state.is_trusted(now_ms, cd)
        reasons = _content_reasons(assertion, claim_score, trusted, lookup, now_ms, cd)

    # 4. Route and count.
    route = Route.QUARANTINE if reasons else Route.ACCEPTED
    counts = _tally(counts, late, now_ms, size_ms, scored=True, quarantined=bool(reasons))

    # 5. Settle a probe, then judge.
    if probing:
        step = breaker.finish_probe(not reasons, now_ms, cb)
        breaker = step.breaker
        transitions.extend(step.transitions)
    if breaker.state is not BreakerState.OPEN:
        step = _judge(breaker, counts, now_ms, cb)
        breaker = step.breaker
        transitions.extend(step.transitions)

    entry = SeenEntry(
        now_ms, offset, route.value, tuple(r.value for r in reasons), claim_score.value
    )
    claim = claim_key(assertion.subject, assertion.predicate, assertion.object)
    return Decision(
        route=route,
        reasons=tuple(reasons),
        score=claim_score,
        state=replace(state, breaker=breaker, windows=counts, last_offset=last_offset),
        seen_writes={id_key(assertion.id): entry, claim: entry},
        transitions=tuple(transitions),
    )


def sweep(
    state: AgentState, now_ms: int, cb: CircuitBreakerSettings
) -> tuple[AgentState | None, tuple[Transition, ...]]:
    """Expire an idle agent's windows and apply its time-based breaker transitions.

    Returns ``None`` for the state when nothing worth keeping is left, so the table
    entry can be deleted: windows expired, breaker CLOSED, no review history, no
    allow-list entry.
    """
    step = state.breaker.tick(now_ms, cb)
    size_ms = int(cb.window_seconds * 1000)
    retention_ms = int(cb.window_retention_seconds * 1000)
    counts = state.windows
    if not counts.is_empty and windows.expired(counts, now_ms, size_ms, retention_ms):
        counts = windows.EMPTY
    swept = replace(state, breaker=step.breaker, windows=counts)
    idle = (
        counts.is_empty
        and swept.breaker.state is BreakerState.CLOSED
        and swept.approvals == 0
        and swept.rejections == 0
        and (swept.allowlist is None or not swept.allowlist.active(now_ms))
    )
    return (None if idle else swept), step.transitions


def reset_breaker(state: AgentState, now_ms: int) -> tuple[AgentState, tuple[Transition, ...]]:
    """Return the agent to CLOSED and clear its window counts."""
    step = state.breaker.reset(now_ms)
    return replace(state, breaker=step.breaker, windows=windows.EMPTY), step.transitions


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)
