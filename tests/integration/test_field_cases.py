"""Failures others hit in public, each run against the real worker and a real broker.

Every test starts its own worker on uuid-named topics, writes records with aiokafka and
reads the gate's output topics back with a read_committed consumer.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import orjson
import pytest

from streams.topics import ACCEPTED, ADMIN_EVENTS, ASSERTIONS, BANNED, INVALID, QUARANTINE
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import (
    Agent,
    Received,
    consume,
    original_bytes,
    produce,
    wait_committed,
)

pytestmark = pytest.mark.integration

ROUTES = (ACCEPTED, QUARANTINE, BANNED)


def _on(received: list[Received], topic: str) -> list[Received]:
    return [r for r in received if r.topic == topic]


def _routed_ids(received: list[Received]) -> list[str]:
    return [r.value["assertion"]["id"] for r in received if r.value and "assertion" in r.value]


async def test_undecodable_record_between_two_good_ones(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C1: `not-json` between two valid records of agent-a is dead-lettered, nothing stops."""
    settings = await gate_settings_factory()
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    agent = Agent("agent-a")
    first, second = agent.encoded(), agent.encoded()

    placed = await produce(
        settings.kafka.bootstrap_servers,
        topic(ASSERTIONS),
        [(agent.record_key, first), (agent.record_key, b"not-json"), (agent.record_key, second)],
    )

    out_topics = [topic(t) for t in (*ROUTES, INVALID)]
    received = await consume(
        settings.kafka.bootstrap_servers,
        out_topics,
        until=lambda got: len(got) >= 3,
    )
    assert sorted(_routed_ids(_on(received, topic(ACCEPTED)))) == ["agent-a-1", "agent-a-2"]
    invalid = _on(received, topic(INVALID))
    assert len(invalid) == 1
    assert invalid[0].value["kind"] == "decode_error"
    assert original_bytes(invalid[0].value) == b"not-json"
    assert invalid[0].value["source_offset"] == placed[1][1]
    assert invalid[0].value["source_partition"] == placed[1][0]

    # Still consuming after the bad record.
    await produce(
        settings.kafka.bootstrap_servers, topic(ASSERTIONS), [(agent.record_key, agent.encoded())]
    )
    received = await consume(
        settings.kafka.bootstrap_servers, [topic(ACCEPTED)], until=lambda got: len(got) >= 3
    )
    assert "agent-a-3" in _routed_ids(received)

    partition = placed[0][0]
    committed = await wait_committed(
        settings.kafka.bootstrap_servers,
        settings.kafka.app_id,
        topic(ASSERTIONS),
        partition,
        at_least=placed[2][1] + 1,
    )
    assert committed > placed[2][1]
    assert await worker.metric("stemedb_invalid_total", {"kind": "decode_error"}) == 1.0
    state = await worker.agent_state(agent.agent_id)
    assert state is not None
    assert state["windows"]["submissions"] == 3  # the three valid records, not the bad one


async def test_wrong_type_field_then_valid(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C2: confidence "high" is a schema_error on `confidence`; the next record is routed."""
    settings = await gate_settings_factory()
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    agent = Agent("agent-b")
    bad = agent.assertion()
    bad["confidence"] = "high"

    await produce(
        settings.kafka.bootstrap_servers,
        topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(bad)), (agent.record_key, agent.encoded())],
    )
    received = await consume(
        settings.kafka.bootstrap_servers,
        [topic(t) for t in (*ROUTES, INVALID)],
        until=lambda got: len(got) >= 2,
        timeout_seconds=10.0,
    )

    invalid = _on(received, topic(INVALID))
    assert [r.value["kind"] for r in invalid] == ["schema_error"]
    assert invalid[0].value["field"] == "confidence"
    assert _routed_ids(_on(received, topic(ACCEPTED))) == ["agent-b-2"]
    assert await worker.get_status("/readyz") == 200
    ready = await worker.get_json("/readyz")
    assert ready["problems"] == []


async def test_extreme_values_deep_in_scoring(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C3: year 9999 with a 100,000-character subject neither crashes nor blocks the agent."""
    settings = await gate_settings_factory()
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    agent = Agent("agent-d")
    huge = agent.encoded(created_at="9999-12-31T23:59:59Z", subject="x" * 100_000)
    # Under the size limit the same extremes reach the scorer.
    long_but_fits = agent.encoded(created_at="9999-12-31T23:59:59Z", subject="Lisboa " * 1000)
    valid = [agent.encoded() for _ in range(5)]

    placed = await produce(
        settings.kafka.bootstrap_servers,
        topic(ASSERTIONS),
        [(agent.record_key, v) for v in (huge, long_but_fits, *valid)],
    )
    received = await consume(
        settings.kafka.bootstrap_servers,
        [topic(t) for t in (*ROUTES, INVALID)],
        until=lambda got: len(got) >= 7,
    )

    invalid = _on(received, topic(INVALID))
    assert [r.value["kind"] for r in invalid] == ["too_large"]
    quarantined = _on(received, topic(QUARANTINE))
    assert [r.value["assertion"]["id"] for r in quarantined] == ["agent-d-2"]
    assert "LowQuality" in quarantined[0].value["verdict"]["reasons"]
    breakdown = quarantined[0].value["verdict"]["score_breakdown"]
    assert "future_timestamp" in breakdown
    assert "length" in breakdown
    assert len(_on(received, topic(ACCEPTED))) == 5
    await wait_committed(
        settings.kafka.bootstrap_servers,
        settings.kafka.app_id,
        topic(ASSERTIONS),
        placed[-1][0],
        at_least=placed[-1][1] + 1,
    )
    assert await worker.metric("stemedb_invalid_total", {"kind": "internal_error"}) == 0.0


async def test_lone_record_window_expires_without_later_records(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C4: agent-g's only window is dropped after window plus retention, with no new record.

    The worker's sweep deletes agents whose windows ended more than the retention ago
    and that keep nothing else (breaker CLOSED, no reviews), so quiet agents do not
    pile up in the table.
    """
    settings = await gate_settings_factory(
        circuit_breaker={"window_seconds": 2, "window_retention_seconds": 1},
        worker={"sweep_interval_seconds": 0.5},
    )
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    lone = Agent("agent-g")
    quiet = [Agent(f"quiet-{i}") for i in range(10)]

    await produce(
        settings.kafka.bootstrap_servers,
        topic(ASSERTIONS),
        [(a.record_key, a.encoded()) for a in (lone, *quiet)],
    )
    await consume(
        settings.kafka.bootstrap_servers, [topic(ACCEPTED)], until=lambda got: len(got) >= 11
    )
    state = await worker.agent_state(lone.agent_id)
    assert state is not None
    assert state["windows"]["submissions"] == 1

    # Window 2 s + retention 1 s + sweep interval 0.5 s; 8 s leaves room for a slow sweep.
    await asyncio.sleep(8)
    assert await worker.agent_state(lone.agent_id) is None
    assert await worker.metric("stemedb_agents_tracked") == 0.0


async def test_burst_over_limit_opens_breaker(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C5 (integration): 120 records in seconds open agent-o's breaker; the rest are banned."""
    settings = await gate_settings_factory()
    await worker_factory(settings)
    topic = settings.kafka.topic
    agent = Agent("agent-o")

    await produce(
        settings.kafka.bootstrap_servers,
        topic(ASSERTIONS),
        [(agent.record_key, agent.encoded()) for _ in range(120)],
    )
    received = await consume(
        settings.kafka.bootstrap_servers,
        [topic(t) for t in (*ROUTES, ADMIN_EVENTS)],
        until=lambda got: len([r for r in got if r.topic != topic(ADMIN_EVENTS)]) >= 120,
    )

    accepted = _on(received, topic(ACCEPTED))
    banned = _on(received, topic(BANNED))
    # The estimate first exceeds 50 at record 51, or at 52 when the burst straddles a
    # window boundary and the previous window's weight is just under 1.
    assert 51 <= len(accepted) <= 52
    assert len(accepted) + len(banned) == 120
    assert all(r.headers["x-circuit-breaker-state"] == "OPEN" for r in banned)
    assert all(r.value["verdict"]["reasons"] == ["CircuitOpen"] for r in banned)
    transitions = [
        r.value["detail"]
        for r in _on(received, topic(ADMIN_EVENTS))
        if r.value["kind"] == "breaker_transition"
    ]
    assert transitions[0]["to"] == "OPEN"
    assert transitions[0]["reason"] == "flooding"


async def _snapshot(worker: Any, agents: list[Agent]) -> dict[str, Any]:
    return {a.label: await worker.agent_state(a.agent_id) for a in agents}


async def test_restart_does_not_count_twice(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """C6: after a clean restart, and after one with RocksDB deleted, state is unchanged.

    agent-f sends 5 records; agent-o floods so that one breaker is OPEN. After each
    restart the window counts, breakers and duplicate index must equal the state
    before, and no output record may appear twice.
    """
    # One-hour windows keep all records in one window; 0.5 per minute is 30 per window.
    settings = await gate_settings_factory(
        circuit_breaker={"window_seconds": 3600, "max_submissions_per_minute": 0.5}
    )
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    bootstrap = settings.kafka.bootstrap_servers
    agent_f = Agent("agent-f")
    flooder = Agent("agent-o")
    first_ids = [agent_f.assertion() for _ in range(5)]

    placed = await produce(
        bootstrap,
        topic(ASSERTIONS),
        [(agent_f.record_key, orjson.dumps(a)) for a in first_ids]
        + [(flooder.record_key, flooder.encoded()) for _ in range(60)],
    )
    outputs = [topic(t) for t in ROUTES]
    before = await consume(bootstrap, outputs, until=lambda got: len(got) >= 65)
    assert len(before) == 65
    for partition in {p for p, _ in placed}:
        last = max(o for p, o in placed if p == partition)
        await wait_committed(
            bootstrap, settings.kafka.app_id, topic(ASSERTIONS), partition, last + 1
        )
    state_before = await _snapshot(worker, [agent_f, flooder])
    assert state_before["agent-f"]["windows"]["submissions"] == 5
    assert state_before["agent-o"]["breaker"]["state"] == "OPEN"

    # 1. Clean restart.
    assert worker.stop() == 0
    worker = await worker_factory(settings)
    assert await _snapshot(worker, [agent_f, flooder]) == state_before
    after = await consume(bootstrap, outputs, until=lambda got: len(got) >= 65, settle_seconds=3)
    assert len(after) == 65

    # 2. Restart with the local RocksDB folder deleted: state comes from the changelog.
    assert worker.stop() == 0
    shutil.rmtree(settings.worker.data_dir)
    worker = await worker_factory(settings)
    assert await _snapshot(worker, [agent_f, flooder]) == state_before
    after = await consume(bootstrap, outputs, until=lambda got: len(got) >= 65, settle_seconds=3)
    assert len(after) == 65

    # The duplicate index came back too: resending an id is a Duplicate.
    await produce(bootstrap, topic(ASSERTIONS), [(agent_f.record_key, orjson.dumps(first_ids[0]))])
    quarantined = await consume(bootstrap, [topic(QUARANTINE)], until=lambda got: len(got) >= 1)
    assert quarantined[0].value["verdict"]["reasons"] == ["Duplicate"]


async def test_kill_restart_rebuilds_state_from_changelog(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """After kill -9 the worker discards its local stores and restores the same state."""
    settings = await gate_settings_factory(circuit_breaker={"window_seconds": 3600})
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    bootstrap = settings.kafka.bootstrap_servers
    agent = Agent("agent-k")

    placed = await produce(
        bootstrap, topic(ASSERTIONS), [(agent.record_key, agent.encoded()) for _ in range(5)]
    )
    await consume(bootstrap, [topic(ACCEPTED)], until=lambda got: len(got) >= 5)
    await wait_committed(
        bootstrap, settings.kafka.app_id, topic(ASSERTIONS), placed[0][0], placed[-1][1] + 1
    )
    before = await worker.agent_state(agent.agent_id)

    worker.kill()
    worker = await worker_factory(settings)

    assert await worker.agent_state(agent.agent_id) == before
    assert "did not stop cleanly" in worker.log_tail(400)
