"""Fixtures that run the admin API in-process on a read model filled by hand.

No Kafka: commands go to a :class:`FakeWorker`, which records them and replies to
each one the way the gate worker does, with a result event on ``admin-events`` and
the changed item on ``quarantine-state``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin_api.app import create_app
from admin_api.read_model import ReadModel
from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, AdminEventKind
from schemas.breaker import BreakerSnapshot, BreakerState
from schemas.quarantine import QuarantineItem, QuarantineStatus, quarantine_item_id
from schemas.verdict import Reason, Route, Verdict
from streams.settings import ENV_PREFIX, GateSettings, load_settings
from streams.topics import ADMIN_EVENTS, BREAKER_STATE, QUARANTINE_STATE

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef00"
ALICE = {"Authorization": f"Bearer {ALICE_TOKEN}"}
BASE_TIME = datetime(2026, 2, 11, 10, 0, 0, tzinfo=UTC)

_serial = itertools.count(1)


def agent_id(n: int) -> str:
    """Return a well-formed agent id (64 hex digits) numbered ``n``."""
    return f"{n:064x}"


def make_item(
    agent: int = 1,
    *,
    reasons: Sequence[Reason] = (Reason.LOW_QUALITY,),
    status: QuarantineStatus = QuarantineStatus.PENDING,
    at: datetime | None = None,
    assertion_id: str | None = None,
) -> QuarantineItem:
    """Return a quarantine item of agent ``agent``; each call gets a new assertion id."""
    serial = next(_serial)
    aid = agent_id(agent)
    assertion_id = assertion_id or f"claim-{serial}"
    quarantined_at = at or BASE_TIME + timedelta(seconds=serial)
    assertion = {
        "schema_version": 1,
        "id": assertion_id,
        "agent_id": aid,
        "subject": f"Town {serial}",
        "predicate": "located_in",
        "object": "n/a",
        "confidence": 0.9,
        "sources": [],
        "created_at": quarantined_at.isoformat(),
        "signature": "0" * 128,
    }
    verdict = Verdict(
        route=Route.QUARANTINE,
        reasons=list(reasons),
        quality_score=0.4,
        score_breakdown={"placeholder": 0.6},
        breaker_state=BreakerState.CLOSED,
        decided_at=quarantined_at,
        gate_version="test",
    )
    return QuarantineItem(
        id=quarantine_item_id(aid, assertion_id),
        agent_id=aid,
        assertion=assertion,
        verdict=verdict,
        status=status,
        quarantined_at=quarantined_at,
    )


def add_items(read_model: ReadModel, items: Sequence[QuarantineItem]) -> None:
    for item in items:
        read_model.apply(
            QUARANTINE_STATE, item.id.encode(), orjson.dumps(item.model_dump(mode="json"))
        )


def add_breaker(read_model: ReadModel, snapshot: BreakerSnapshot) -> None:
    read_model.apply(
        BREAKER_STATE, snapshot.agent_id.encode(), orjson.dumps(snapshot.model_dump(mode="json"))
    )


Responder = Callable[[AdminCommand], tuple[str, dict[str, Any]] | None]


@dataclass
class FakeWorker:
    """A command sink that records commands and replies to them through the read model.

    ``respond`` returns ``(result, detail)`` for a command, or ``None`` to stay
    silent (a worker that is down). By default approve and reject of a pending item
    apply, of a decided one conflict, and of an unknown one are not found; every other
    kind applies. A command id seen before is answered with the first result again.
    """

    read_model: ReadModel
    partition_count: int = 3
    commands: list[AdminCommand] = field(default_factory=list)
    respond: Responder | None = None
    results: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    failure: Exception | None = None

    async def send(self, commands: Sequence[AdminCommand]) -> None:
        if self.failure is not None:
            raise self.failure
        for command in commands:
            self.commands.append(command)
            asyncio.get_running_loop().call_soon(self._answer, command, None)

    async def partitions(self) -> list[int]:
        return list(range(self.partition_count))

    async def send_to_partitions(self, command: AdminCommand, partitions: Sequence[int]) -> None:
        for partition in partitions:
            self.commands.append(command)
            asyncio.get_running_loop().call_soon(self._answer, command, partition)

    def _answer(self, command: AdminCommand, partition: int | None) -> None:
        key = f"{command.command_id}/{partition}"
        if key in self.results:
            result, detail = self.results[key]
            detail = {**detail, "duplicate": True}
        else:
            answer = (self.respond or self.default_answer)(command)
            if answer is None:
                return
            result, detail = answer
            if partition is not None:
                detail = {**detail, "partition": partition}
            self.results[key] = (result, detail)
        event = AdminEvent(
            kind=AdminEventKind.COMMAND_RESULT,
            agent_id=command.agent_id,
            command_id=command.command_id,
            result=result,
            issued_by=command.issued_by,
            detail=detail,
            at=datetime.now(UTC),
        )
        self.read_model.apply(
            ADMIN_EVENTS,
            (command.agent_id or "").encode(),
            orjson.dumps(event.model_dump(mode="json")),
        )

    def default_answer(self, command: AdminCommand) -> tuple[str, dict[str, Any]]:
        kind = command.kind
        if kind in (AdminCommandKind.APPROVE, AdminCommandKind.REJECT):
            return self._decide(command)
        if kind is AdminCommandKind.BREAKER_OPEN:
            until = datetime.now(UTC) + timedelta(seconds=command.parameters["duration_seconds"])
            return "applied", {
                "state": "OPEN",
                "until": until.isoformat().replace("+00:00", "Z"),
                "reason": command.reason,
            }
        if kind is AdminCommandKind.BREAKER_RESET:
            return "applied", {"state": "CLOSED", "until": None, "reason": command.reason}
        if kind is AdminCommandKind.SET_THRESHOLDS:
            return "applied", {"thresholds": dict(command.parameters)}
        return "applied", {
            "agent_id": command.agent_id,
            "expires_at": command.parameters.get("expires_at"),
        }

    def _decide(self, command: AdminCommand) -> tuple[str, dict[str, Any]]:
        stored = self.read_model.quarantine.get(command.item_id or "")
        if stored is None:
            return "not_found", {"item_id": command.item_id, "error": "unknown item"}
        if stored.status != "pending":
            return "conflict", {"item_id": command.item_id, "status": stored.status}
        status = "approved" if command.kind is AdminCommandKind.APPROVE else "rejected"
        item = QuarantineItem.model_validate(
            {
                "id": stored.id,
                "agent_id": stored.agent_id,
                "assertion": stored.view["assertion"],
                "verdict": self._verdict_of(stored.id),
                "status": status,
                "quarantined_at": stored.view["quarantined_at"],
                "decided_at": datetime.now(UTC),
                "decided_by": command.issued_by,
            }
        )
        add_items(self.read_model, [item])
        return "applied", {"item_id": command.item_id, "status": status}

    def _verdict_of(self, item_id: str) -> dict[str, Any]:
        view = self.read_model.quarantine.items[item_id].view
        return {
            "route": "quarantine",
            "reasons": view["reasons"],
            "quality_score": view["quality_score"],
            "score_breakdown": view["score_breakdown"],
            "breaker_state": "CLOSED",
            "decided_at": view["quarantined_at"],
            "gate_version": "test",
        }


@pytest.fixture
def api_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GateSettings:
    """Settings with two operators' tokens and a one-second command timeout."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# operators\nalice {ALICE_TOKEN}\nbob {BOB_TOKEN}  # on call\n")
    tokens.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text("")
    return load_settings(
        config,
        admin_api={
            "tokens_file": tokens,
            "command_timeout_seconds": 1.0,
            "max_request_bytes": 16384,
        },
        kafka={"partitions": 3},
    )


@pytest.fixture
def read_model(api_settings: GateSettings) -> ReadModel:
    model = ReadModel(api_settings)
    model.commands.partitions = 3
    model.ready = True
    return model


@pytest.fixture
def worker(read_model: ReadModel) -> FakeWorker:
    return FakeWorker(read_model)


@dataclass
class Api:
    """An in-process admin API and a client that sends Alice's token unless ``auth`` is off."""

    client: TestClient[Any, Any]
    read_model: ReadModel
    worker: FakeWorker

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        sent = {**(ALICE if auth else {}), **(headers or {})}
        if json is not None:
            data = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, headers=sent) as response:
            body = await response.read()
            content_type = response.headers.get("Content-Type", "")
            parsed = orjson.loads(body) if content_type.startswith("application/json") else body
            return response.status, parsed


@pytest.fixture
async def api(
    api_settings: GateSettings, read_model: ReadModel, worker: FakeWorker
) -> AsyncIterator[Api]:
    app = create_app(api_settings, sink=worker, read_model=read_model)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, read_model, worker)
