"""The gate's per-record loop with in-memory tables and outputs, no Kafka."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas.verdict import RoutedAssertion
from streams.faults import build_input
from streams.gate import Gate
from streams.metrics import GateMetrics
from streams.settings import load_settings

OUTPUT_NAMES = (
    "accepted",
    "admin-commands",
    "quarantine",
    "banned",
    "invalid",
    "admin-events",
    "quarantine-state",
    "breaker-state",
    "config-state",
)


class Output:
    def __init__(self, name: str, sent: list[tuple[str, dict[str, Any]]]) -> None:
        self.name = name
        self.sent = sent

    async def send(self, key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        self.sent.append((self.name, orjson.loads(value)))


def make_gate() -> tuple[Gate, list[tuple[str, dict[str, Any]]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    tables: dict[str, Any] = {name: {} for name in ("agents", "seen", "quarantine", "config")}
    outputs = {name: Output(name, sent) for name in OUTPUT_NAMES}
    gate = Gate(load_settings(None), tables, outputs, GateMetrics(CollectorRegistry()))
    return gate, sent


def event(key: bytes | None, value: bytes | None, offset: int) -> Any:
    message = SimpleNamespace(
        key=key,
        value=value,
        topic="assertions",
        partition=0,
        offset=offset,
        timestamp=time.time(),
        timestamp_type=1,
        tp=("assertions", 0),
    )
    return SimpleNamespace(message=message)


async def test_routed_value_matches_the_schema() -> None:
    gate, sent = make_gate()
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))

    routed = [body for name, body in sent if name == "accepted"]
    assert len(routed) == 1
    model = RoutedAssertion.model_validate(routed[0])
    assert model.model_dump(mode="json") == routed[0]
    assert routed[0]["assertion"] == orjson.loads(value or b"")


async def test_second_delivery_in_process_is_skipped() -> None:
    gate, sent = make_gate()
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))
    await gate.handle_assertion(event(key, value, 0))

    assert len(sent) == 1
    assert gate.metrics.replays._value.get() == 0


async def test_replay_after_restart_repeats_the_verdict() -> None:
    gate, sent = make_gate()
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))
    gate.handled.forget([("assertions", 0)])
    await gate.handle_assertion(event(key, value, 0))

    assert [name for name, _ in sent] == ["accepted", "accepted"]
    first, second = (body["verdict"] for _, body in sent)
    assert second["route"] == first["route"]
    assert second["source_offset"] == first["source_offset"]
    assert gate.metrics.replays._value.get() == 1


async def test_exactly_once_replay_writes_state_again() -> None:
    gate, sent = make_gate()
    gate.settings = load_settings(None, kafka={"processing_guarantee": "exactly_once"})
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))
    agent_id = (key or b"").decode()
    stored = dict(gate.agents[agent_id])
    seen_keys = sorted(gate.seen)
    # An aborted transaction's writes stay in the store, but the changelog lacks them.
    gate.agents = RecordingTable(gate.agents)
    gate.seen = RecordingTable(gate.seen)
    gate.handled.forget([("assertions", 0)])
    await gate.handle_assertion(event(key, value, 0))

    assert gate.agents.written == [agent_id]
    assert gate.agents[agent_id] == stored
    assert sorted(gate.seen.written) == seen_keys
    assert len(sent) == 2


class RecordingTable(dict[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.written: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


class ChangingTable(dict[str, Any]):
    """A table whose iteration fails like a dict that a rebalance changed."""

    def items(self) -> Any:
        yield from list(super().items())[:1]
        raise RuntimeError("dictionary changed size during iteration")


async def test_sweep_interrupted_by_rebalance_returns() -> None:
    gate, _ = make_gate()
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))
    gate.agents = ChangingTable(gate.agents)
    gate.metrics.agents_tracked.set(7)

    await gate.sweep_agents()

    assert gate.metrics.agents_tracked._value.get() == 7


async def test_cancelled_handling_is_not_marked_handled() -> None:
    gate, _ = make_gate()
    (key, value), *_ = build_input(10, 3)[0]

    async def cancelled(*_: Any, **__: Any) -> None:
        raise asyncio.CancelledError

    gate.outputs["accepted"].send = cancelled
    with pytest.raises(asyncio.CancelledError):
        await gate.handle_assertion(event(key, value, 0))

    assert (("assertions", 0), 0) not in gate.handled


async def test_late_record_decided_not_replayed() -> None:
    gate, sent = make_gate()
    records = build_input(10, 3)[0]
    # The second and third records come from the same agent.
    (key, first), (_, second) = records[1], records[2]
    await gate.handle_assertion(event(key, second, 1))
    await gate.handle_assertion(event(key, first, 0))

    routed = [body for name, body in sent if name in ("accepted", "quarantine", "banned")]
    assert [body["verdict"]["source_offset"] for body in routed] == [1, 0]
    assert gate.metrics.replays._value.get() == 0
    agent_id = (key or b"").decode()
    assert gate.agents[agent_id]["last_offset"] == 1
    assert gate.agents[agent_id]["windows"]["submissions"] == 2


async def test_late_record_after_restart_decided() -> None:
    gate, sent = make_gate()
    records = build_input(10, 3)[0]
    (key, first), (_, second) = records[1], records[2]
    await gate.handle_assertion(event(key, second, 1))
    # A new process: nothing handled, only the stored state.
    gate.handled.forget([("assertions", 0)])
    await gate.handle_assertion(event(key, first, 0))

    routed = [body for name, body in sent if name in ("accepted", "quarantine", "banned")]
    assert [body["verdict"]["source_offset"] for body in routed] == [1, 0]
    agent_id = (key or b"").decode()
    assert gate.agents[agent_id]["windows"]["submissions"] == 2
    assert gate.agents[agent_id]["last_offset"] == 1


async def replay_after_lost_write(table: str) -> tuple[Gate, list[tuple[str, Any]], str]:
    """Handle a record, lose ``table``'s writes in a crash, then handle it again.

    Returns the gate, the routed outputs as (topic, body) pairs, and the agent id.
    """
    gate, sent = make_gate()
    (key, value), *_ = build_input(10, 3)[0]
    await gate.handle_assertion(event(key, value, 0))
    getattr(gate, table).clear()
    gate.handled.forget([("assertions", 0)])
    await gate.handle_assertion(event(key, value, 0))

    routed = [(name, body) for name, body in sent if name in ("accepted", "quarantine", "banned")]
    return gate, routed, (key or b"").decode()


async def test_lost_index_write_replays_verdict() -> None:
    # A crash kept the state write and lost the index writes.
    gate, routed, agent_id = await replay_after_lost_write("seen")

    assert len(routed) == 2
    assert routed[0][0] == routed[1][0]
    assert routed[0][1]["verdict"]["reasons"] == routed[1][1]["verdict"]["reasons"]
    assert gate.agents[agent_id]["windows"]["submissions"] == 1


async def test_lost_state_write_not_self_duplicate() -> None:
    # A crash kept the index writes and lost the state write.
    gate, routed, agent_id = await replay_after_lost_write("agents")

    assert "Duplicate" not in routed[1][1]["verdict"]["reasons"]
    assert routed[0][1]["verdict"]["reasons"] == routed[1][1]["verdict"]["reasons"]
    assert gate.agents[agent_id]["windows"]["submissions"] == 1


async def test_committed_record_without_verdict_skipped() -> None:
    gate, sent = make_gate()
    gate.committed_offset = lambda tp: 2
    records = build_input(10, 3)[0]
    (key, first), (_, second) = records[1], records[2]
    await gate.handle_assertion(event(key, second, 2))
    gate.seen.clear()
    gate.handled.forget([("assertions", 0)])
    # The state was written after the partition had committed past offset 1.
    await gate.handle_assertion(event(key, first, 1))

    routed = [body for name, body in sent if name in ("accepted", "quarantine", "banned")]
    assert [body["verdict"]["source_offset"] for body in routed] == [2]
