"""The worker's side of operator commands on ``admin-commands``.

Each command is applied at most once per partition. Its result is stored under
``<command_id>@<partition>`` in the ``commands`` table before the result event is
published. A repeated ``command_id`` gets the stored result again, marked as a
duplicate, without touching any state. Commands about an agent are keyed by its id, so
they arrive on the partition that holds the agent's state, quarantine items and
duplicate index. ``set_thresholds`` arrives once on every partition, and each partition
keeps its own copy of the thresholds in the ``config`` table.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.admin import (
    AdminCommand,
    AdminCommandKind,
    AdminEvent,
    AdminEventKind,
    AllowlistEntry,
    CommandResult,
    ThresholdsState,
)
from schemas.quarantine import QuarantineItem, QuarantineStatus
from schemas.verdict import Reason, Review, Route
from streams.decision import AgentState, AllowEntry, reset_breaker, sweep
from streams.errors import ConfigError
from streams.gate import THRESHOLDS_KEY
from streams.settings import current_thresholds, with_thresholds
from streams.topics import ADMIN_EVENTS, CONFIG_STATE, QUARANTINE_STATE

logger = logging.getLogger(__name__)

MAX_BAN_SECONDS = 365 * 86400.0

Outcome = tuple[CommandResult, dict[str, Any]]


def _dumps(model: Any) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CommandProcessor:
    """Applies admin commands to the gate's tables and publishes results on ``admin-events``."""

    def __init__(self, gate: Any, commands_table: Any) -> None:
        # ``gate`` is a streams.gate.Gate; typed loosely to avoid an import cycle.
        self.gate = gate
        self.done = commands_table

    async def handle(self, event: Any) -> None:
        """Handle one ``admin-commands`` record; never raises except on cancellation."""
        message = event.message
        try:
            command = AdminCommand.model_validate_json(message.value or b"")
        except ValidationError as exc:
            self.gate.log_limited(
                "command",
                "ignoring invalid command at %s[%d] offset=%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            return
        try:
            await self._apply_once(command, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.gate.log_limited(
                "command",
                "failed to apply command %s (%s) at %s[%d] offset=%d: %r",
                command.command_id,
                command.kind.value,
                message.topic,
                message.partition,
                message.offset,
                exc,
                exc_info=True,
            )

    async def _apply_once(self, command: AdminCommand, message: Any) -> None:
        if command.kind is AdminCommandKind.EXPIRE_STATE:
            await self._expire_state(command, message)
            return

        done_key = f"{command.command_id}@{message.partition}"
        prior = self.done.get(done_key)
        if prior is not None:
            result = CommandResult(prior["result"])
            detail = {**prior["detail"], "duplicate": True}
            logger.info(
                "command %s seen again on partition %d; publishing its first result %s again",
                command.command_id,
                message.partition,
                result.value,
            )
        else:
            result, detail = await self._apply(command, message)
            self.done[done_key] = {"result": result.value, "detail": detail}
            logger.info(
                "command %s (%s) by %s for agent %s: %s",
                command.command_id,
                command.kind.value,
                command.issued_by,
                command.agent_id,
                result.value,
            )
        event = AdminEvent(
            kind=AdminEventKind.COMMAND_RESULT,
            agent_id=command.agent_id,
            command_id=command.command_id,
            result=result,
            issued_by=command.issued_by,
            detail={"kind": command.kind.value, **detail},
            at=datetime.now(UTC),
        )
        key = (command.agent_id or command.command_id).encode()
        await self.gate.outputs[ADMIN_EVENTS].send(key=key, value=_dumps(event))

    async def _apply(self, command: AdminCommand, message: Any) -> Outcome:
        kind = command.kind
        if kind is AdminCommandKind.SET_THRESHOLDS:
            return await self._set_thresholds(command, message)
        if not command.agent_id:
            return CommandResult.INVALID, {"error": f"{kind.value} needs agent_id"}
        if kind in (AdminCommandKind.APPROVE, AdminCommandKind.REJECT):
            return await self._review(command, message)
        if kind is AdminCommandKind.BREAKER_OPEN:
            return await self._breaker_open(command, message)
        if kind is AdminCommandKind.BREAKER_RESET:
            return await self._breaker_reset(command, message)
        if kind is AdminCommandKind.ALLOWLIST_ADD:
            return await self._allowlist_add(command, message)
        if kind is AdminCommandKind.ALLOWLIST_REMOVE:
            return await self._allowlist_remove(command, message)
        return CommandResult.INVALID, {"error": f"unsupported command kind {kind.value!r}"}

    # -- quarantine review ----------------------------------------------------------

    async def _review(self, command: AdminCommand, message: Any) -> Outcome:
        agent_id = str(command.agent_id)
        item_id = command.item_id
        if not item_id:
            return CommandResult.INVALID, {"error": "approve and reject need item_id"}
        data = self.gate.quarantine.get(item_id)
        if data is None:
            return CommandResult.NOT_FOUND, {"item_id": item_id}
        item = QuarantineItem.model_validate(data)
        if item.agent_id != agent_id:
            return CommandResult.INVALID, {
                "item_id": item_id,
                "error": f"item belongs to agent {item.agent_id}, not {agent_id}",
            }
        if item.status is not QuarantineStatus.PENDING:
            return CommandResult.CONFLICT, {"item_id": item_id, "status": item.status.value}

        approved = command.kind is AdminCommandKind.APPROVE
        now = datetime.now(UTC)
        status = QuarantineStatus.APPROVED if approved else QuarantineStatus.REJECTED
        notes = list(item.notes)
        for text in (command.reason, command.note):
            if text:
                notes.append(text)
        decided = item.model_copy(
            update={
                "status": status,
                "decided_at": now,
                "decided_by": command.issued_by,
                "notes": notes,
            }
        )

        # 1. The item, in the table and on the compacted topic the read model uses.
        payload = decided.model_dump(mode="json")
        self.gate.quarantine[item_id] = payload
        await self.gate.outputs[QUARANTINE_STATE].send(
            key=item_id.encode(), value=orjson.dumps(payload), partition=message.partition
        )

        # 2. The agent's review history, which decides whether it is trusted.
        state = self.gate.load_agent(agent_id)
        if approved:
            state = replace(state, approvals=state.approvals + 1)
        else:
            state = replace(state, rejections=state.rejections + 1)
        self.gate.agents[agent_id] = state.to_dict()

        # 3. An approved assertion goes downstream like any accepted one.
        if approved:
            review = Review(
                decision="approved",
                decided_by=command.issued_by,
                decided_at=now,
                command_id=command.command_id,
                note=command.note or command.reason,
                original_reasons=list(item.verdict.reasons),
            )
            verdict = item.verdict.model_copy(
                update={
                    "route": Route.ACCEPTED,
                    "reasons": [Reason.APPROVED],
                    "decided_at": now,
                    "review": review,
                }
            )
            await self.gate.route(item.assertion, agent_id, verdict)
            self.gate.metrics.approved.inc()
        else:
            self.gate.metrics.rejected.inc()

        decision = AdminEvent(
            kind=AdminEventKind.QUARANTINE_DECISION,
            agent_id=agent_id,
            command_id=command.command_id,
            issued_by=command.issued_by,
            detail={"item_id": item_id, "status": status.value, "decided_by": command.issued_by},
            at=now,
        )
        await self.gate.outputs[ADMIN_EVENTS].send(key=agent_id.encode(), value=_dumps(decision))
        return CommandResult.APPLIED, {"item_id": item_id, "status": status.value}

    # -- breaker ----------------------------------------------------------------------

    async def _breaker_open(self, command: AdminCommand, message: Any) -> Outcome:
        agent_id = str(command.agent_id)
        duration = command.parameters.get("duration_seconds")
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            return CommandResult.INVALID, {"error": "duration_seconds must be a number"}
        if not 0 < duration <= MAX_BAN_SECONDS:
            return CommandResult.INVALID, {
                "error": f"duration_seconds {duration} is outside (0, {MAX_BAN_SECONDS:.0f}]"
            }
        if not command.reason:
            return CommandResult.INVALID, {"error": "breaker_open needs a reason"}
        state = self.gate.load_agent(agent_id)
        now_ms = self.gate.broker_time_ms(message)
        step = state.breaker.manual_open(now_ms, command.reason, float(duration))
        state = replace(state, breaker=step.breaker)
        self.gate.agents[agent_id] = state.to_dict()
        await self.gate.publish_transitions(agent_id, state, step.transitions)
        return CommandResult.APPLIED, self._breaker_detail(agent_id, state)

    async def _breaker_reset(self, command: AdminCommand, message: Any) -> Outcome:
        agent_id = str(command.agent_id)
        state = self.gate.load_agent(agent_id)
        state, transitions = reset_breaker(state, self.gate.broker_time_ms(message))
        self.gate.agents[agent_id] = state.to_dict()
        # A reset of a CLOSED breaker changes nothing but is still published, so the
        # read model and the audit trail show the operator's action.
        await self.gate.publish_transitions(agent_id, state, transitions)
        return CommandResult.APPLIED, self._breaker_detail(agent_id, state)

    def _breaker_detail(self, agent_id: str, state: AgentState) -> dict[str, Any]:
        snapshot = self.gate.snapshot(agent_id, state)
        return {
            "state": snapshot.state.value,
            "until": snapshot.until.isoformat() if snapshot.until else None,
            "reason": snapshot.reason,
        }

    # -- allow-list -------------------------------------------------------------------

    async def _allowlist_add(self, command: AdminCommand, message: Any) -> Outcome:
        agent_id = str(command.agent_id)
        if not command.reason:
            return CommandResult.INVALID, {"error": "allowlist_add needs a reason"}
        raw_expiry = command.parameters.get("expires_at")
        expires_at: datetime | None = None
        if raw_expiry is not None:
            try:
                expires_at = datetime.fromisoformat(str(raw_expiry).replace("Z", "+00:00"))
            except ValueError:
                return CommandResult.INVALID, {
                    "error": f"expires_at {raw_expiry!r} is not RFC 3339"
                }
            if expires_at.tzinfo is None:
                return CommandResult.INVALID, {"error": "expires_at needs a UTC offset"}
        state = self.gate.load_agent(agent_id)
        entry = AllowEntry(
            reason=command.reason,
            expires_at_ms=_ms(expires_at) if expires_at else None,
            added_by=command.issued_by,
        )
        self.gate.agents[agent_id] = replace(state, allowlist=entry).to_dict()
        record = AllowlistEntry(
            agent_id=agent_id,
            reason=command.reason,
            expires_at=expires_at,
            added_by=command.issued_by,
            added_at=datetime.now(UTC),
        )
        await self.gate.outputs[CONFIG_STATE].send(
            key=f"allowlist/{agent_id}".encode(), value=_dumps(record)
        )
        return CommandResult.APPLIED, {
            "agent_id": agent_id,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }

    async def _allowlist_remove(self, command: AdminCommand, message: Any) -> Outcome:
        agent_id = str(command.agent_id)
        state = self.gate.load_agent(agent_id)
        if state.allowlist is None:
            return CommandResult.NOT_FOUND, {"agent_id": agent_id}
        self.gate.agents[agent_id] = replace(state, allowlist=None).to_dict()
        await self.gate.outputs[CONFIG_STATE].send(key=f"allowlist/{agent_id}".encode(), value=None)
        return CommandResult.APPLIED, {"agent_id": agent_id, "expires_at": None}

    # -- thresholds -------------------------------------------------------------------

    async def _set_thresholds(self, command: AdminCommand, message: Any) -> Outcome:
        current = self.gate.config.get(THRESHOLDS_KEY) or {}
        merged = {**current, **command.parameters}
        try:
            effective = with_thresholds(self.gate.settings, merged)
        except ConfigError as exc:
            return CommandResult.INVALID, {"error": str(exc), "partition": message.partition}
        self.gate.config[THRESHOLDS_KEY] = merged
        thresholds = current_thresholds(effective)
        state = ThresholdsState(
            thresholds=thresholds,
            updated_by=command.issued_by,
            updated_at=datetime.now(UTC),
            command_id=command.command_id,
        )
        await self.gate.outputs[CONFIG_STATE].send(key=THRESHOLDS_KEY.encode(), value=_dumps(state))
        return CommandResult.APPLIED, {"partition": message.partition, "thresholds": thresholds}

    # -- internal ---------------------------------------------------------------------

    async def _expire_state(self, command: AdminCommand, message: Any) -> None:
        agent_id = command.agent_id
        if not agent_id:
            return
        data = self.gate.agents.get(agent_id)
        if not data:
            return
        state = AgentState.from_dict(data)
        now_ms = self.gate.broker_time_ms(message)
        swept, transitions = sweep(
            state, now_ms, self.gate.settings_for(message.partition).circuit_breaker
        )
        if swept is None:
            del self.gate.agents[agent_id]
            return
        self.gate.agents[agent_id] = swept.to_dict()
        await self.gate.publish_transitions(agent_id, swept, transitions)
