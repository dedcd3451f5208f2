"""The admin API against a real broker and a real gate worker, both child processes.

One worker and one API (``stemedb-gate admin-api``) serve the whole module on uuid
topics. Each test uses agents of its own, so tests do not see each other's items; the
thresholds test puts the thresholds back when it ends.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
import pytest_asyncio

from schemas.quarantine import quarantine_item_id
from streams.settings import ENV_PREFIX, GateSettings, load_settings
from streams.topics import ACCEPTED, ADMIN_COMMANDS, ASSERTIONS, BANNED, topic_specs
from streams.topicsetup import admin_client, ensure_topics
from tests.integration.harness import (
    AdminApiProcess,
    Agent,
    Received,
    WorkerProcess,
    consume,
    free_port,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

T = TypeVar("T")

TOKEN = "integration-token-" + uuid.uuid4().hex
OTHER_TOKEN = "integration-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Q = "/v1/admin/quarantine"
CB = "/v1/admin/circuit_breakers"
THRESHOLDS = "/v1/admin/content_defense/thresholds"
ALLOWLIST = "/v1/admin/content_defense/allowlist"
READY_TIMEOUT_SECONDS = 90.0
WAIT_SECONDS = 30.0


class Client:
    """HTTP calls to the admin API with the module's token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | io.BytesIO | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        sent = {**(AUTH if auth else {}), **(headers or {})}
        if json is not None:
            data = orjson.dumps(json)
            sent["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base_url + path, data=data, headers=sent
        ) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, orjson.loads(raw)
            return response.status, raw.decode()


async def until(
    check: Callable[[], Awaitable[T | None]], what: str, timeout_seconds: float = WAIT_SECONDS
) -> T:
    """Poll ``check`` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout_seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last is not None and last is not False:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_seconds:g} s waiting for {what}: {last!r}")


@pytest.fixture(scope="module")
def module_settings(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GateSettings]:
    """Settings on uuid topics with a tokens file; STEMEDB_ variables are ignored."""
    folder = tmp_path_factory.mktemp("admin-api")
    tokens = folder / "tokens"
    tokens.write_text(f"alice {TOKEN}\nbob {OTHER_TOKEN}\n")
    tokens.chmod(0o600)
    config = folder / "config.toml"
    config.write_text("")
    unique = uuid.uuid4().hex[:12]
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in list(os.environ):
            if name.upper().startswith(ENV_PREFIX):
                monkeypatch.delenv(name)
        yield load_settings(
            config,
            kafka={
                "bootstrap_servers": kafka_bootstrap,
                "topic_prefix": f"test-{unique}.",
                "app_id": f"test-{unique}",
                "partitions": 3,
            },
            worker={"data_dir": folder / "worker", "web_port": free_port()},
            admin_api={
                "port": free_port(),
                "review_port": free_port(),
                "tokens_file": tokens,
                "command_timeout_seconds": 20,
            },
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    module_settings: GateSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WorkerProcess, AdminApiProcess]]:
    """Create the topics, start one worker and one API; delete the topics at the end."""
    settings = module_settings
    logs = tmp_path_factory.mktemp("admin-api-logs")
    await ensure_topics(settings, timeout_seconds=60.0)
    worker = WorkerProcess(settings, logs / "worker.log")
    api = AdminApiProcess(settings, logs / "api.log")
    try:
        api.spawn()
        await asyncio.gather(worker.start(), api.wait_ready())
        yield worker, api
    finally:
        api_code = api.stop()
        worker.stop()
        async with admin_client(settings.kafka.bootstrap_servers) as client:
            names = {spec.name for spec in topic_specs(settings)}
            existing = await client.list_topics()
            doomed = [
                name
                for name in existing
                if name in names or name.startswith(f"{settings.kafka.app_id}-")
            ]
            if doomed:
                await client.delete_topics(doomed)
    assert api_code == 0, f"admin API exited with {api_code}:\n{api.log_tail()}"
    log = api.log_path.read_text(errors="replace")
    assert "disconnected from Kafka" in log, api.log_tail()
    assert "Unclosed" not in log, api.log_tail()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(services: tuple[WorkerProcess, AdminApiProcess]) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, services[1].base_url)


async def quarantine(
    settings: GateSettings, client: Client, agent: Agent, records: list[dict[str, Any]]
) -> list[str]:
    """Produce ``records`` of ``agent`` and return their item ids once the API lists them."""
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(record)) for record in records],
    )
    ids = [quarantine_item_id(agent.agent_id, record["id"]) for record in records]

    async def listed() -> list[str] | None:
        _, body = await client.call("GET", f"{Q}?agent_id={agent.agent_id}&status=all")
        found = {item["id"] for item in body["items"]}
        return ids if set(ids) <= found else None

    return await until(listed, f"{len(ids)} quarantined items of {agent.label}")


def low_quality(agent: Agent) -> dict[str, Any]:
    return agent.assertion(object="n/a")


def untrusted_high_confidence(agent: Agent) -> dict[str, Any]:
    return agent.assertion(confidence=0.97, sources=[])


async def routed(
    settings: GateSettings,
    topic: str,
    assertion_ids: set[str],
    settle_seconds: float = 0.0,
) -> list[Received]:
    """Read ``topic`` until every id arrived, then ``settle_seconds`` more for extras."""

    def mine(received: list[Received]) -> list[Received]:
        return [r for r in received if r.value and r.value["assertion"]["id"] in assertion_ids]

    received = await consume(
        settings.kafka.bootstrap_servers,
        [settings.kafka.topic(topic)],
        until=lambda got: {r.value["assertion"]["id"] for r in mine(got)} >= assertion_ids,
        timeout_seconds=WAIT_SECONDS,
        settle_seconds=settle_seconds,
    )
    return mine(received)


# -- authentication and service routes ------------------------------------------------


async def test_admin_routes_need_token(client: Client) -> None:
    reads = [("GET", Q), ("GET", f"{Q}/summary"), ("GET", CB), ("GET", THRESHOLDS)]
    writes = [("POST", f"{Q}/approve"), ("PUT", THRESHOLDS), ("POST", ALLOWLIST)]

    for method, path in reads + writes:
        status, body = await client.call(method, path, auth=False, json={})
        assert status == 401, (method, path)
        assert body["error"] == "unauthorized"
    status, _ = await client.call("GET", Q, auth=False, headers={"Authorization": "Bearer x"})
    assert status == 401


async def test_open_routes(client: Client) -> None:
    health_status, _ = await client.call("GET", "/healthz", auth=False)
    ready_status, ready = await client.call("GET", "/readyz", auth=False)
    openapi_status, openapi = await client.call("GET", "/openapi.json", auth=False)

    assert health_status == 200
    assert (ready_status, ready["ready"]) == (200, True)
    assert openapi_status == 200
    assert openapi["openapi"] == "3.1.0"


# -- quarantine -----------------------------------------------------------------------


async def test_quarantined_items_listed_filtered_summarized(
    module_settings: GateSettings, client: Client
) -> None:
    agent = Agent("listed")
    ids = await quarantine(
        module_settings,
        client,
        agent,
        [low_quality(agent), low_quality(agent), untrusted_high_confidence(agent)],
    )

    _, page = await client.call("GET", f"{Q}?agent_id={agent.agent_id}&limit=2")
    _, rest = await client.call(
        "GET", f"{Q}?agent_id={agent.agent_id}&limit=2&cursor={page['next_cursor']}"
    )
    _, untrusted = await client.call(
        "GET", f"{Q}?agent_id={agent.agent_id}&reason=UntrustedHighConfidence"
    )
    _, summary = await client.call("GET", f"{Q}/summary")
    item_status, item = await client.call("GET", f"{Q}/{ids[0]}")

    assert page["total"] == 3
    assert [i["id"] for i in page["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None
    assert [i["id"] for i in untrusted["items"]] == [ids[2]]
    by_agent = {entry["agent_id"]: entry["count"] for entry in summary["by_agent"]}
    assert by_agent[agent.agent_id] == 3
    assert summary["total_pending"] >= 3
    assert item_status == 200
    assert item["reason"] == "LowQuality"
    assert item["object"] == "n/a"
    assert item["status"] == "pending"


async def test_list_bad_parameters_400(client: Client) -> None:
    for query, field in [
        ("limit=0", "limit"),
        ("status=x", "status"),
        ("agent_id=8f3a", "agent_id"),
    ]:
        status, body = await client.call("GET", f"{Q}?{query}")
        assert status == 400, query
        assert body["field"] == field


async def test_read_routes_bad_input_400(client: Client) -> None:
    cases = [
        (f"{Q}/summary?agent_id=x", "agent_id"),
        (f"{Q}/not-an-item", "id"),
        (f"{CB}?state=open", "state"),
        (f"{CB}?cursor=%25", "cursor"),
        (f"{CB}/8f3a2b1c", "agent_id"),
        (f"{ALLOWLIST}?include_expired=maybe", "include_expired"),
        (f"{THRESHOLDS}?verbose=1", "verbose"),
    ]
    for path, field in cases:
        status, body = await client.call("GET", path)
        assert status == 400, path
        assert body["field"] == field, path


async def test_idempotency_key_of_other_command_409(
    module_settings: GateSettings, client: Client
) -> None:
    agent = Agent("key-reuse")
    first, second = await quarantine(
        module_settings, client, agent, [low_quality(agent), low_quality(agent)]
    )
    key = {"Idempotency-Key": f"reuse-{uuid.uuid4().hex}"}

    status, _ = await client.call("POST", f"{Q}/{first}/reject?wait=true", headers=key)
    reused_status, reused = await client.call("POST", f"{Q}/{second}/reject?wait=true", headers=key)
    _, untouched = await client.call("GET", f"{Q}/{second}")

    assert status == 200
    assert (reused_status, reused["field"]) == (409, "Idempotency-Key")
    assert untouched["status"] == "pending"


async def test_approve_once_per_idempotency_key(
    module_settings: GateSettings, client: Client
) -> None:
    """Approve twice with one key: one record on accepted, both calls 200, same result."""
    agent = Agent("approve")
    record = low_quality(agent)
    (item_id,) = await quarantine(module_settings, client, agent, [record])
    key = {"Idempotency-Key": f"approve-{uuid.uuid4().hex}"}

    first_status, first = await client.call(
        "POST", f"{Q}/{item_id}/approve?wait=true", json={"note": "checked"}, headers=key
    )
    again_status, again = await client.call(
        "POST", f"{Q}/{item_id}/approve?wait=true", json={"note": "checked"}, headers=key
    )
    other_status, other = await client.call("POST", f"{Q}/{item_id}/approve?wait=true")

    assert (first_status, again_status) == (200, 200)
    assert first["item"]["status"] == "approved"
    assert first["item"]["decided_by"] == "alice"
    assert again["command_id"] == first["command_id"] == key["Idempotency-Key"]
    assert other_status == 409
    assert other["error"] == "conflict"
    accepted = await routed(module_settings, ACCEPTED, {record["id"]}, settle_seconds=3.0)
    assert len(accepted) == 1
    assert accepted[0].value["verdict"]["review"]["decided_by"] == "alice"
    commands = await consume(
        module_settings.kafka.bootstrap_servers,
        [module_settings.kafka.topic(ADMIN_COMMANDS)],
        until=lambda got: any(r.value["command_id"] == first["command_id"] for r in got),
    )
    keys = {r.key for r in commands if r.value["command_id"] == first["command_id"]}
    assert keys == {agent.record_key}


async def test_reject_then_conflict(module_settings: GateSettings, client: Client) -> None:
    agent = Agent("reject")
    (item_id,) = await quarantine(module_settings, client, agent, [low_quality(agent)])

    status, body = await client.call(
        "POST", f"{Q}/{item_id}/reject?wait=true", json={"reason": "placeholder object"}
    )
    again_status, again = await client.call("POST", f"{Q}/{item_id}/reject?wait=true")
    _, item = await client.call("GET", f"{Q}/{item_id}")

    assert status == 200
    assert body["item"]["status"] == "rejected"
    assert again_status == 409
    assert "command_id" in again
    assert item["status"] == "rejected"
    assert "placeholder object" in item["notes"]


async def test_unknown_and_malformed_items(client: Client) -> None:
    unknown = f"q{'0' * 24}"

    get_status, _ = await client.call("GET", f"{Q}/{unknown}")
    approve_status, _ = await client.call("POST", f"{Q}/{unknown}/approve?wait=true")
    bad_status, bad = await client.call("POST", f"{Q}/nope/approve")
    body_status, body = await client.call("POST", f"{Q}/{unknown}/approve", json={"reason": 3})

    assert (get_status, approve_status) == (404, 404)
    assert (bad_status, bad["field"]) == (400, "id")
    assert (body_status, body["field"]) == (400, "reason")


async def test_body_over_limit_is_413(module_settings: GateSettings, client: Client) -> None:
    oversized = b'{"note": "' + b"x" * module_settings.admin_api.max_request_bytes + b'"}'

    # A stream, because aiohttp warns that a large bytes body blocks the event loop.
    status, body = await client.call(
        "POST", f"{Q}/{'q' + '0' * 24}/approve", data=io.BytesIO(oversized)
    )

    assert status == 413
    assert body["error"] == "too_large"


async def test_bulk_reject_by_agent(module_settings: GateSettings, client: Client) -> None:
    agent = Agent("bulk")
    ids = await quarantine(module_settings, client, agent, [low_quality(agent) for _ in range(4)])

    status, body = await client.call(
        "POST", f"{Q}/reject?wait=true", json={"agent_id": agent.agent_id, "reason": "flooding"}
    )

    assert status == 200
    assert body["count"] == 4
    assert body["results"]["applied"] == 4

    async def none_pending() -> bool:
        _, page = await client.call("GET", f"{Q}?agent_id={agent.agent_id}")
        return page["total"] == 0

    await until(none_pending, "no pending items of the agent")
    _, rejected = await client.call("GET", f"{Q}?agent_id={agent.agent_id}&status=rejected")
    assert sorted(i["id"] for i in rejected["items"]) == sorted(ids)


async def test_bulk_approve_by_ids(module_settings: GateSettings, client: Client) -> None:
    agent = Agent("bulk-ids")
    ids = await quarantine(module_settings, client, agent, [low_quality(agent) for _ in range(2)])
    unknown = f"q{'1' * 24}"

    status, body = await client.call(
        "POST", f"{Q}/approve?wait=true", json={"ids": [*ids, unknown]}
    )
    bad_status, bad = await client.call("POST", f"{Q}/approve", json={"ids": []})

    assert status == 200
    assert body["results"]["applied"] == 2
    assert body["results"]["not_found"] == 1
    assert body["unknown_ids"] == [unknown]
    assert (bad_status, bad["field"]) == (400, "ids")


# -- circuit breakers -----------------------------------------------------------------


async def test_breaker_open_bans_then_reset_accepts(
    module_settings: GateSettings, client: Client
) -> None:
    agent = Agent("banned")
    path = f"{CB}/{agent.agent_id}"

    unknown_status, unknown = await client.call("GET", path)
    status, opened = await client.call(
        "POST",
        f"{path}/open?wait=true",
        json={"reason": "flooding_quarantine", "duration_seconds": 3600},
    )
    record = agent.assertion()
    await produce(
        module_settings.kafka.bootstrap_servers,
        module_settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(record))],
    )
    banned = await routed(module_settings, BANNED, {record["id"]})

    async def listed_open() -> dict[str, Any] | None:
        _, page = await client.call("GET", f"{CB}?state=OPEN&limit=1000")
        found = [b for b in page["circuit_breakers"] if b["agent_id"] == agent.agent_id]
        return found[0] if found else None

    snapshot = await until(listed_open, "the OPEN breaker in the list")

    assert (unknown_status, unknown["state"], unknown["trips"]) == (200, "CLOSED", 0)
    assert status == 200
    assert opened["status"] == "opened"
    assert opened["state"] == "OPEN"
    assert opened["until"] is not None
    assert banned[0].headers["x-circuit-breaker-state"] == "OPEN"
    assert snapshot["manual"] is True

    reset_status, reset = await client.call(
        "POST", f"{path}/reset?wait=true", json={"reason": "talked to the owner"}
    )
    good = agent.assertion()
    await produce(
        module_settings.kafka.bootstrap_servers,
        module_settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(good))],
    )
    accepted = await routed(module_settings, ACCEPTED, {good["id"]})

    assert (reset_status, reset["state"], reset["status"]) == (200, "CLOSED", "reset")
    assert accepted[0].headers["x-circuit-breaker-state"] == "CLOSED"


async def test_breaker_bad_input_400(client: Client) -> None:
    agent = Agent("breaker-input")
    cases = [
        (f"{CB}/8f3a2b1c/open", {"reason": "x", "duration_seconds": 60}, "agent_id"),
        (f"{CB}/{agent.agent_id}/open", {"duration_seconds": 60}, "reason"),
        (
            f"{CB}/{agent.agent_id}/open",
            {"reason": "x", "duration_seconds": -1},
            "duration_seconds",
        ),
        (f"{CB}/{agent.agent_id}/reset", {"reason": 1}, "reason"),
    ]
    for path, body, field in cases:
        status, response = await client.call("POST", path, json=body)
        assert status == 400, path
        assert response["field"] == field


# -- thresholds -----------------------------------------------------------------------


async def test_thresholds_change_applies_without_restart(
    module_settings: GateSettings, client: Client
) -> None:
    """Lowering quality_threshold lets the next placeholder record through, then back."""
    agent = Agent("thresholds")
    _, before = await client.call("GET", THRESHOLDS)
    assert before["quality_threshold"] == 0.6

    status, body = await client.call(
        "PUT", f"{THRESHOLDS}?wait=true", json={"quality_threshold": 0.4}
    )
    try:
        record = low_quality(agent)
        await produce(
            module_settings.kafka.bootstrap_servers,
            module_settings.kafka.topic(ASSERTIONS),
            [(agent.record_key, orjson.dumps(record))],
        )
        accepted = await routed(module_settings, ACCEPTED, {record["id"]})

        async def shown() -> dict[str, Any] | None:
            _, view = await client.call("GET", THRESHOLDS)
            return view if view["quality_threshold"] == 0.4 else None

        view = await until(shown, "the new threshold in GET thresholds")
    finally:
        restore_status, _ = await client.call(
            "PUT", f"{THRESHOLDS}?wait=true", json={"quality_threshold": 0.6}
        )

    assert status == 200
    assert body["status"] == "applied"
    assert body["thresholds"]["quality_threshold"] == 0.4
    assert accepted[0].value["verdict"]["quality_score"] < 0.6
    assert view["updated_by"] == "alice"
    assert restore_status == 200
    command_status, command = await client.call("GET", f"/v1/admin/commands/{body['command_id']}")
    assert (command_status, command["status"], command["kind"]) == (
        200,
        "applied",
        "set_thresholds",
    )
    assert len(command["results"]) == module_settings.kafka.partitions


async def test_thresholds_bad_input_400(client: Client) -> None:
    cases = [
        ({"qualty_threshold": 0.5}, "qualty_threshold"),
        ({"quality_threshold": 2}, "quality_threshold"),
        ({"min_requests": "many"}, "min_requests"),
        ({}, "body"),
    ]
    for body, field in cases:
        status, response = await client.call("PUT", THRESHOLDS, json=body)
        assert status == 400, body
        assert response["field"] == field


# -- allow-list -----------------------------------------------------------------------


async def test_allowlist_add_list_remove(module_settings: GateSettings, client: Client) -> None:
    agent = Agent("allowed")

    status, added = await client.call(
        "POST",
        f"{ALLOWLIST}?wait=true",
        json={
            "agent_id": agent.agent_id,
            "reason": "backfill_operation",
            "expires_at": "2099-01-01T00:00:00Z",
        },
    )
    record = untrusted_high_confidence(agent)
    await produce(
        module_settings.kafka.bootstrap_servers,
        module_settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(record))],
    )
    accepted = await routed(module_settings, ACCEPTED, {record["id"]})

    async def entry() -> dict[str, Any] | None:
        _, body = await client.call("GET", ALLOWLIST)
        found = [e for e in body["allowlist"] if e["agent_id"] == agent.agent_id]
        return found[0] if found else None

    listed = await until(entry, "the allow-list entry")

    assert status == 200
    assert added["status"] == "added"
    assert added["expires_at"].startswith("2099-01-01T00:00:00")
    assert accepted[0].value["verdict"]["route"] == "accepted"
    assert listed["reason"] == "backfill_operation"
    assert listed["added_by"] == "alice"

    removed_status, removed = await client.call("DELETE", f"{ALLOWLIST}/{agent.agent_id}?wait=true")

    async def gone() -> bool:
        return await entry() is None

    await until(gone, "the entry to leave the allow-list")
    again_status, _ = await client.call("DELETE", f"{ALLOWLIST}/{agent.agent_id}")

    assert (removed_status, removed["status"]) == (200, "removed")
    assert again_status == 404


async def test_allowlist_bad_input_400(client: Client) -> None:
    agent = Agent("allow-input")
    cases = [
        ({"reason": "x"}, "agent_id"),
        ({"agent_id": agent.agent_id}, "reason"),
        ({"agent_id": agent.agent_id, "reason": "x", "expires_at": "soon"}, "expires_at"),
    ]
    for body, field in cases:
        status, response = await client.call("POST", ALLOWLIST, json=body)
        assert status == 400, body
        assert response["field"] == field
    status, response = await client.call("DELETE", f"{ALLOWLIST}/short")
    assert (status, response["field"]) == (400, "agent_id")


# -- command status and metrics -------------------------------------------------------


async def test_command_status_after_202(module_settings: GateSettings, client: Client) -> None:
    agent = Agent("no-wait")
    (item_id,) = await quarantine(module_settings, client, agent, [low_quality(agent)])

    status, body = await client.call(
        "POST",
        f"{Q}/{item_id}/approve",
        headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
        auth=False,
    )

    async def applied() -> dict[str, Any] | None:
        _, command = await client.call("GET", f"/v1/admin/commands/{body['command_id']}")
        return command if command["status"] == "applied" else None

    command = await until(applied, "the command to be applied")
    unknown_status, _ = await client.call("GET", "/v1/admin/commands/never-issued")

    assert (status, body["status"]) == (202, "pending")
    assert command["kind"] == "approve"
    assert command["issued_by"] == "bob"
    assert command["results"][0]["item_id"] == item_id
    assert unknown_status == 404


async def test_metrics_from_read_model(client: Client) -> None:
    status, text = await client.call("GET", "/metrics", auth=False)

    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert status == 200
    assert "stemedb_quarantine_pending" in values
    assert values["stemedb_admin_api_read_model_ready"] == 1.0


async def test_restart_rebuilds_read_model(
    module_settings: GateSettings,
    services: tuple[WorkerProcess, AdminApiProcess],
    client: Client,
) -> None:
    """A restarted API reads the compacted topics again: decisions and commands survive."""
    agent = Agent("restart")
    pending_id, rejected_id = await quarantine(
        module_settings, client, agent, [low_quality(agent), low_quality(agent)]
    )
    _, rejected = await client.call("POST", f"{Q}/{rejected_id}/reject?wait=true")
    api = services[1]

    assert api.stop() == 0
    api.spawn()
    await api.wait_ready()

    _, pending = await client.call("GET", f"{Q}/{pending_id}")
    _, decided = await client.call("GET", f"{Q}/{rejected_id}")
    _, command = await client.call("GET", f"/v1/admin/commands/{rejected['command_id']}")
    assert pending["status"] == "pending"
    assert decided["status"] == "rejected"
    assert decided["decided_by"] == "alice"
    assert (command["status"], command["kind"]) == ("applied", "reject")
