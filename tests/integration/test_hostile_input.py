"""The hostile input catalogue through the real worker: dead-lettered or quarantined, none lost."""

from __future__ import annotations

import logging

import pytest

from streams.topics import ACCEPTED, ASSERTIONS, BANNED, INVALID, QUARANTINE
from tests.hostile_catalogue import CASES
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import Agent, consume, produce, wait_committed

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)


async def test_hostile_catalogue_through_worker(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    # One partition keeps every record's offset, and so its outcome, easy to match.
    settings = await gate_settings_factory(kafka={"partitions": 1})
    worker = await worker_factory(settings)
    topic = settings.kafka.topic
    agent = Agent("agent-h")
    records = [case.build(agent) for case in CASES]

    placed = await produce(settings.kafka.bootstrap_servers, topic(ASSERTIONS), records)
    received = await consume(
        settings.kafka.bootstrap_servers,
        [topic(t) for t in (ACCEPTED, QUARANTINE, BANNED, INVALID)],
        until=lambda got: len(got) >= len(CASES),
        timeout_seconds=60,
    )

    outcomes: dict[int, tuple[str, str]] = {}
    for record in received:
        if record.topic == topic(INVALID):
            outcomes[record.value["source_offset"]] = ("invalid", record.value["kind"])
        else:
            verdict = record.value["verdict"]
            route = verdict["route"]
            outcomes[verdict["source_offset"]] = (route, ",".join(verdict["reasons"]))
    rows = []
    for case, (_, offset) in zip(CASES, placed, strict=True):
        expected = case.expected
        want = (
            ("invalid", expected.invalid_kind)
            if expected.invalid_kind
            else (expected.route, ",".join(expected.reasons))
        )
        got = outcomes.get(offset, ("missing", ""))
        rows.append((case.name, got, want))
    logger.info(
        "hostile input outcomes:\n%s",
        "\n".join(f"{name:40} {got[0]:10} {got[1]}" for name, got, _ in rows),
    )
    assert [(name, got) for name, got, want in rows if got != want] == []

    assert await worker.get_status("/readyz") == 200
    assert await worker.metric("stemedb_invalid_total", {"kind": "internal_error"}) == 0.0
    await wait_committed(
        settings.kafka.bootstrap_servers,
        settings.kafka.app_id,
        topic(ASSERTIONS),
        0,
        at_least=placed[-1][1] + 1,
    )
