"""Exactly-once sends to topics the worker does not consume."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
import pytest

from streams.transactions import send_in_source_transaction


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def send(self, topic: str, *args: Any, transactional_id: str | None = None) -> str:
        self.calls.append((topic, transactional_id))
        return "sent"


def make_app() -> tuple[Any, Recorder, Recorder]:
    producer, faust_send = Recorder(), Recorder()
    transactions = SimpleNamespace(producer=producer, send=faust_send.send)
    consumed = {"gate.assertions", "gate-agents-changelog"}
    consumer = SimpleNamespace(
        transactions=transactions,
        key_partition=lambda topic, key, partition: 3 if topic in consumed else None,
    )
    assignor = SimpleNamespace(group_for_topic=lambda topic: 1)
    app = SimpleNamespace(consumer=consumer, assignor=assignor, conf=SimpleNamespace(id="gate"))
    return app, producer, faust_send


def during(monkeypatch: pytest.MonkeyPatch, partition: int | None) -> None:
    event = None
    if partition is not None:
        tp = SimpleNamespace(topic="gate.assertions", partition=partition)
        event = SimpleNamespace(message=SimpleNamespace(tp=tp))
    monkeypatch.setattr(faust, "current_event", lambda: event)


async def test_output_goes_to_source_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    app, producer, faust_send = make_app()
    send_in_source_transaction(app)
    send_in_source_transaction(app)
    during(monkeypatch, 4)

    await app.consumer.transactions.send("gate.accepted", b"k", b"v", None, None, None)

    assert producer.calls == [("gate.accepted", "gate-1-4")]
    assert faust_send.calls == []


async def test_consumed_topic_keeps_faust_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    app, producer, faust_send = make_app()
    send_in_source_transaction(app)
    during(monkeypatch, 4)

    await app.consumer.transactions.send("gate-agents-changelog", b"k", b"v", 4, None, None)

    assert faust_send.calls == [("gate-agents-changelog", None)]
    assert producer.calls == []


async def test_send_outside_record_keeps_faust_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    app, producer, faust_send = make_app()
    send_in_source_transaction(app)
    during(monkeypatch, None)

    await app.consumer.transactions.send("gate.breaker-state", b"k", b"v", None, None, None)

    assert faust_send.calls == [("gate.breaker-state", None)]
    assert producer.calls == []
