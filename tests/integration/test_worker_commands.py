"""Admin commands written straight to ``admin-commands``, applied by a real worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.admin import AdminCommand, AdminCommandKind
from schemas.quarantine import quarantine_item_id
from streams.settings import GateSettings
from streams.topics import (
    ACCEPTED,
    ADMIN_COMMANDS,
    ADMIN_EVENTS,
    ASSERTIONS,
    BANNED,
    CONFIG_STATE,
    QUARANTINE,
)
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import Agent, Received, consume, produce

pytestmark = pytest.mark.integration


def _command(kind: AdminCommandKind, agent: Agent | None, **fields: Any) -> AdminCommand:
    return AdminCommand(
        command_id=fields.pop("command_id", uuid.uuid4().hex),
        kind=kind,
        agent_id=agent.agent_id if agent else None,
        issued_by="test-operator",
        issued_at=datetime.now(UTC),
        **fields,
    )


async def _send(
    settings: GateSettings, *commands: AdminCommand, partition: int | None = None
) -> None:
    records = [
        ((c.agent_id or "thresholds").encode(), orjson.dumps(c.model_dump(mode="json")))
        for c in commands
    ]
    if partition is None:
        await produce(
            settings.kafka.bootstrap_servers, settings.kafka.topic(ADMIN_COMMANDS), records
        )
        return
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                settings.kafka.topic(ADMIN_COMMANDS), value=value, key=key, partition=partition
            )
    finally:
        await producer.stop()


def _results(received: list[Received], command_id: str) -> list[dict[str, Any]]:
    return [
        r.value
        for r in received
        if r.value.get("kind") == "command_result" and r.value.get("command_id") == command_id
    ]


async def _read(settings: GateSettings, topic: str, until: Any) -> list[Received]:
    return await consume(
        settings.kafka.bootstrap_servers, [settings.kafka.topic(topic)], until=until
    )


async def test_approve_once_then_conflict(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """An approved item reaches accepted once; the same id again is a duplicate, not a resend."""
    settings = await gate_settings_factory()
    await worker_factory(settings)
    agent = Agent("agent-q")
    fields = agent.assertion(confidence=0.97, sources=[])
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, orjson.dumps(fields))],
    )
    await _read(settings, QUARANTINE, lambda got: len(got) >= 1)
    item_id = quarantine_item_id(agent.agent_id, fields["id"])

    approve = _command(AdminCommandKind.APPROVE, agent, item_id=item_id, note="checked by hand")
    await _send(settings, approve, approve)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, approve.command_id)) >= 2
    )
    first, repeat = _results(events, approve.command_id)
    assert first["result"] == "applied"
    assert first["issued_by"] == "test-operator"
    assert repeat["result"] == "applied"
    assert repeat["detail"]["duplicate"] is True

    accepted = await consume(
        settings.kafka.bootstrap_servers,
        [settings.kafka.topic(ACCEPTED)],
        until=lambda got: len(got) >= 1,
        settle_seconds=2,
    )
    assert len(accepted) == 1
    verdict = accepted[0].value["verdict"]
    assert verdict["reasons"] == ["Approved"]
    assert verdict["review"]["decided_by"] == "test-operator"
    assert verdict["review"]["original_reasons"] == ["UntrustedHighConfidence"]

    reject = _command(AdminCommandKind.REJECT, agent, item_id=item_id)
    missing = _command(AdminCommandKind.APPROVE, agent, item_id="q" + "0" * 24)
    await _send(settings, reject, missing)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, missing.command_id)) >= 1
    )
    assert _results(events, reject.command_id)[0]["result"] == "conflict"
    assert _results(events, missing.command_id)[0]["result"] == "not_found"


async def test_breaker_open_then_reset(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """A manual open bans the agent's next record; a reset lets the one after through."""
    settings = await gate_settings_factory()
    await worker_factory(settings)
    agent = Agent("agent-x")
    open_command = _command(
        AdminCommandKind.BREAKER_OPEN,
        agent,
        reason="flooding_quarantine",
        parameters={"duration_seconds": 3600},
    )
    await _send(settings, open_command)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, open_command.command_id)) >= 1
    )
    result = _results(events, open_command.command_id)[0]
    assert result["detail"]["state"] == "OPEN"
    assert result["detail"]["until"] is not None

    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded())],
    )
    banned = await _read(settings, BANNED, lambda got: len(got) >= 1)
    assert banned[0].headers["x-circuit-breaker-state"] == "OPEN"

    reset = _command(AdminCommandKind.BREAKER_RESET, agent)
    await _send(settings, reset)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, reset.command_id)) >= 1
    )
    assert _results(events, reset.command_id)[0]["detail"]["state"] == "CLOSED"
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded())],
    )
    accepted = await _read(settings, ACCEPTED, lambda got: len(got) >= 1)
    assert accepted[0].value["assertion"]["id"] == "agent-x-2"


async def test_thresholds_change_without_restart(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """Raising quality_threshold to 0.95 quarantines a record that scored 0.9 before."""
    settings = await gate_settings_factory()
    await worker_factory(settings)
    agent = Agent("agent-t")
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded(sources=[]))],
    )
    await _read(settings, ACCEPTED, lambda got: len(got) >= 1)

    change = _command(AdminCommandKind.SET_THRESHOLDS, None, parameters={"quality_threshold": 0.95})
    for partition in range(settings.kafka.partitions):
        await _send(settings, change, partition=partition)
    events = await _read(
        settings,
        ADMIN_EVENTS,
        lambda got: len(_results(got, change.command_id)) >= settings.kafka.partitions,
    )
    results = _results(events, change.command_id)
    assert {r["detail"]["partition"] for r in results} == set(range(settings.kafka.partitions))
    assert all(r["detail"]["thresholds"]["quality_threshold"] == 0.95 for r in results)

    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded(sources=[]))],
    )
    quarantined = await _read(settings, QUARANTINE, lambda got: len(got) >= 1)
    assert quarantined[0].value["verdict"]["reasons"] == ["LowQuality"]
    assert quarantined[0].value["verdict"]["quality_score"] == 0.9

    config = await _read(settings, CONFIG_STATE, lambda got: len(got) >= 1)
    assert config[0].value["thresholds"]["quality_threshold"] == 0.95

    invalid = _command(AdminCommandKind.SET_THRESHOLDS, None, parameters={"quality_threshold": 7})
    await _send(settings, invalid, partition=0)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, invalid.command_id)) >= 1
    )
    result = _results(events, invalid.command_id)[0]
    assert result["result"] == "invalid"
    assert "quality_threshold" in result["detail"]["error"]


async def test_allowlist_skips_content_defense(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory
) -> None:
    """An allow-listed agent's very confident, unsourced claim is accepted; removal ends it."""
    settings = await gate_settings_factory()
    await worker_factory(settings)
    agent = Agent("agent-w")
    add = _command(
        AdminCommandKind.ALLOWLIST_ADD,
        agent,
        reason="backfill_operation",
        parameters={"expires_at": "2099-01-01T00:00:00Z"},
    )
    await _send(settings, add)
    await _read(settings, ADMIN_EVENTS, lambda got: len(_results(got, add.command_id)) >= 1)
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded(confidence=0.99, sources=[]))],
    )
    accepted = await _read(settings, ACCEPTED, lambda got: len(got) >= 1)
    assert accepted[0].value["assertion"]["id"] == "agent-w-1"

    remove = _command(AdminCommandKind.ALLOWLIST_REMOVE, agent)
    await _send(settings, remove)
    events = await _read(
        settings, ADMIN_EVENTS, lambda got: len(_results(got, remove.command_id)) >= 1
    )
    assert _results(events, remove.command_id)[0]["result"] == "applied"
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(agent.record_key, agent.encoded(confidence=0.99, sources=[]))],
    )
    quarantined = await _read(settings, QUARANTINE, lambda got: len(got) >= 1)
    assert quarantined[0].value["verdict"]["reasons"] == ["UntrustedHighConfidence"]
