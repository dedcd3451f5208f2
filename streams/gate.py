"""The worker's per-record loop: decode, read state, decide, write state, route.

:class:`Gate` contains no decision logic of its own, which is in :mod:`streams.decision`.
It moves data between Kafka, the faust tables and the pure functions. One record never
stops the stream: any exception while handling a record dead-letters that
record with kind ``internal_error`` and the worker goes on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, AdminEventKind
from schemas.breaker import BreakerSnapshot
from schemas.invalid import InvalidKind, InvalidRecord
from schemas.quarantine import QuarantineItem, quarantine_item_id
from schemas.verdict import Reason, Route, Verdict
from streams import __version__
from streams.breaker import Transition
from streams.decision import AgentState, Decision, SeenEntry, claim_key, decide, id_key, sweep
from streams.decode import DecodeFailure, decode
from streams.errors import ConfigError
from streams.metrics import AgentTotals, GateMetrics
from streams.redelivery import HandledOffsets
from streams.settings import GateSettings, with_thresholds
from streams.topics import (
    ADMIN_COMMANDS,
    ADMIN_EVENTS,
    BREAKER_STATE,
    INVALID,
    QUARANTINE_STATE,
)

logger = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
LOG_APPEND_TIME = 1
SWEEPER = "gate-sweeper"
THRESHOLDS_KEY = "thresholds"
SWEEP_CHUNK = 1000
SWEEP_DUTY = 0.2


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def _dumps(model: Any) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"))


class _RateLimitedLog:
    """Logs the first occurrence of each error kind, then at most one line per interval."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval_seconds) < self.interval_seconds:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        suppressed = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        if suppressed:
            msg += " (%d similar suppressed)"
            args = (*args, suppressed)
        logger.warning(msg, *args, exc_info=exc_info)


class Gate:
    def __init__(
        self,
        settings: GateSettings,
        tables: Mapping[str, Any],
        outputs: Mapping[str, Any],
        metrics: GateMetrics,
        committed_offset: Callable[[Any], int | None] = lambda tp: None,
    ) -> None:
        self.settings = settings
        self.committed_offset = committed_offset
        self.agents = tables["agents"]
        self.seen = tables["seen"]
        self.quarantine = tables["quarantine"]
        self.outputs = outputs
        self.metrics = metrics
        self.config = tables["config"]
        self._log = _RateLimitedLog(LOG_EVERY_SECONDS)
        self._warned_timestamp_type = False
        self._partition_settings: dict[int, tuple[dict[str, Any], GateSettings]] = {}
        # Offset of the first record handled per partition, logged once for audits of
        # where a restarted worker resumed.
        self._first_offsets: dict[int, int] = {}
        self.handled = HandledOffsets()

    def log_limited(self, kind: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        """Log a warning, at most once per interval for each ``kind``."""
        self._log.warning(kind, msg, *args, exc_info=exc_info)

    # -- per record ---------------------------------------------------------------

    async def handle_assertion(self, event: Any) -> None:
        """Handle one ``assertions`` record; never raises except on cancellation."""
        message = event.message
        if (message.tp, message.offset) in self.handled:
            # Fetched again after a repair seek, and this process already routed it.
            return
        started = time.perf_counter()
        if message.partition not in self._first_offsets:
            self._first_offsets[message.partition] = message.offset
            logger.info(
                "first record of %s[%d] since start: offset %d",
                message.topic,
                message.partition,
                message.offset,
            )
        try:
            await self._handle_assertion(message.key, message.value, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.warning(
                "internal",
                "failed to handle %s[%d] offset=%d, dead-lettering it: %r",
                message.topic,
                message.partition,
                message.offset,
                exc,
                exc_info=True,
            )
            failure = DecodeFailure(InvalidKind.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            await self._dead_letter(message, failure)
        finally:
            self.metrics.record_handled(time.perf_counter() - started)
        # Only now: a handling cancelled half way, in a rebalance for example, must not
        # make a later delivery of the record look already routed.
        self.handled.add(message.tp, message.offset)

    async def _handle_assertion(self, key: bytes | None, value: bytes | None, message: Any) -> None:
        # 1. Decode and validate; dead letters never touch any agent's state.
        settings = self.settings_for(message.partition)
        decoded = decode(
            key,
            value,
            max_bytes=settings.kafka.max_record_bytes,
            require_signatures=settings.content_defense.require_signatures,
        )
        if isinstance(decoded, DecodeFailure):
            await self._dead_letter(message, decoded)
            return

        assertion = decoded.assertion
        agent_id = assertion.agent_id
        now_ms = self.broker_time_ms(message)
        state = self.load_agent(agent_id)

        # 2. A record at or below the last applied offset comes again after a restart,
        # a rebalance or a repair seek. If it was applied, its verdict is sent again and
        # no state changes. If it was not (faust dropped it while later records of its
        # partition went on), it is decided now.
        if message.offset <= state.last_offset:
            stored = state.applied(message.offset)
            if stored is None and message.offset < state.recent_from:
                stored = self._seen_entry(agent_id, id_key(assertion.id))
                if stored is None:
                    # The partition had committed past it when the state was written, so
                    # it was handled before, and its index entry has expired.
                    logger.info(
                        "skipping %s[%d] offset=%d for agent %s: handled before, and its "
                        "stored verdict has expired",
                        message.topic,
                        message.partition,
                        message.offset,
                        agent_id,
                    )
                    return
            if stored is not None:
                await self._replay(decoded.fields, agent_id, message, state, stored)
                return
            logger.info(
                "%s[%d] offset=%d of agent %s was not decided before; deciding it now",
                message.topic,
                message.partition,
                message.offset,
                agent_id,
            )

        # 3. Decide, then store state before routing, so a crash in between replays the
        # record as above instead of counting it twice.
        decision = decide(
            assertion,
            state,
            lambda local_key: self._earlier_entry(agent_id, local_key, message.offset),
            now_ms,
            message.offset,
            settings.content_defense,
            settings.circuit_breaker,
        )
        decided = decision.state.remember(
            SeenEntry(
                now_ms,
                message.offset,
                decision.route.value,
                tuple(reason.value for reason in decision.reasons),
                decision.score.value if decision.score else None,
                scored=decision.score is not None,
            ),
            self.committed_offset(message.tp),
        )
        decision = replace(decision, state=decided)
        self.agents[agent_id] = decision.state.to_dict()
        for local_key, entry in decision.seen_writes.items():
            self.seen[f"{agent_id}/{local_key}"] = entry.to_dict()

        # 4. Route, then publish what changed.
        verdict = self._verdict(decision, message)
        await self.route(decoded.fields, agent_id, verdict)
        self.metrics.record_decision(agent_id, decision.route)
        if decision.route is Route.QUARANTINE:
            await self._quarantine(decoded.fields, agent_id, verdict, message.partition)
        await self.publish_transitions(agent_id, decision.state, decision.transitions)

    def broker_time_ms(self, message: Any) -> int:
        if message.timestamp_type != LOG_APPEND_TIME and not self._warned_timestamp_type:
            self._warned_timestamp_type = True
            logger.warning(
                "topic %r carries producer timestamps (type %s); create it with "
                "message.timestamp.type=LogAppendTime so producers cannot move windows",
                message.topic,
                message.timestamp_type,
            )
        return int(message.timestamp * 1000 + 0.5)

    def settings_for(self, partition: int) -> GateSettings:
        """Return the settings with this partition's runtime thresholds applied.

        Must run while an event of ``partition`` is current: the ``config`` table keeps
        one copy of the thresholds per partition and reads the current event's copy.
        """
        overrides = self.config.get(THRESHOLDS_KEY)
        if not overrides:
            return self.settings
        cached = self._partition_settings.get(partition)
        if cached is not None and cached[0] == overrides:
            return cached[1]
        try:
            effective = with_thresholds(self.settings, overrides)
        except ConfigError as exc:
            # Stored overrides were validated when set; bounds may have changed since.
            self.log_limited(
                "thresholds", "ignoring stored thresholds of partition %d: %s", partition, exc
            )
            effective = self.settings
        self._partition_settings[partition] = (dict(overrides), effective)
        return effective

    def load_agent(self, agent_id: str) -> AgentState:
        data = self.agents.get(agent_id)
        return AgentState.from_dict(data) if data else AgentState()

    def _seen_entry(self, agent_id: str, local_key: str) -> SeenEntry | None:
        data = self.seen.get(f"{agent_id}/{local_key}")
        return SeenEntry.from_dict(data) if data else None

    def _earlier_entry(self, agent_id: str, local_key: str, offset: int) -> SeenEntry | None:
        """Return the index entry of ``local_key`` unless the record at ``offset`` wrote it.

        A crash can keep a record's index entries while its state write is lost. The
        record then comes again as new and must not count as its own duplicate.
        """
        entry = self._seen_entry(agent_id, local_key)
        return None if entry is not None and entry.offset == offset else entry

    def _verdict(self, decision: Decision, message: Any) -> Verdict:
        return Verdict(
            route=decision.route,
            reasons=list(decision.reasons),
            quality_score=decision.score.value if decision.score else None,
            score_breakdown=dict(decision.score.penalties) if decision.score else {},
            breaker_state=decision.state.breaker.state,
            decided_at=datetime.now(UTC),
            gate_version=__version__,
            source_partition=message.partition,
            source_offset=message.offset,
        )

    async def route(self, fields: dict[str, Any], agent_id: str, verdict: Verdict) -> None:
        # The same JSON as RoutedAssertion(...).model_dump(mode="json"), without validating
        # a copy of the already validated assertion for every output.
        value = orjson.dumps(
            {"schema_version": 1, "assertion": fields, "verdict": verdict.model_dump(mode="json")}
        )
        headers = [
            ("x-stemedb-route", verdict.route.value.encode()),
            ("x-circuit-breaker-state", verdict.breaker_state.value.encode()),
            ("x-stemedb-reasons", ",".join(verdict.reasons).encode()),
            ("x-stemedb-assertion-id", str(fields.get("id", "")).encode()),
        ]
        await self.outputs[verdict.route.value].send(
            key=agent_id.encode(), value=value, headers=headers
        )
        self.metrics.routed.labels(verdict.route.value).inc()
        for reason in verdict.reasons:
            if verdict.route is Route.QUARANTINE:
                self.metrics.quarantined.labels(reason.value).inc()

    async def _replay(
        self,
        fields: dict[str, Any],
        agent_id: str,
        message: Any,
        state: AgentState,
        entry: SeenEntry,
    ) -> None:
        self.metrics.replays.inc()
        if self.settings.kafka.processing_guarantee == "exactly_once":
            self._rewrite_state(fields, agent_id, message.offset, state, entry)
        if entry.offset == message.offset:
            route, reasons, quality_score = Route(entry.route), entry.reasons, entry.quality_score
        else:
            # Only a banned record leaves an earlier scored copy's entry in place.
            route, reasons, quality_score = Route.BANNED, (Reason.CIRCUIT_OPEN.value,), None
        verdict = Verdict(
            route=route,
            reasons=[Reason(r) for r in reasons],
            quality_score=quality_score,
            breaker_state=state.breaker.state,
            decided_at=datetime.now(UTC),
            gate_version=__version__,
            source_partition=message.partition,
            source_offset=message.offset,
        )
        await self.route(fields, agent_id, verdict)

    def _rewrite_state(
        self,
        fields: dict[str, Any],
        agent_id: str,
        offset: int,
        state: AgentState,
        entry: SeenEntry,
    ) -> None:
        """Write the agent's stored state again, inside the current transaction.

        faust writes table values to RocksDB at once, and an aborted transaction does not
        take them back. A replay can therefore find state that its changelog never got,
        and would otherwise leave that changelog behind the store for good.
        """
        self.agents[agent_id] = state.to_dict()
        if entry.offset == offset:
            self.seen[f"{agent_id}/{id_key(str(fields['id']))}"] = entry.to_dict()
        claim = claim_key(
            str(fields.get("subject", "")),
            str(fields.get("predicate", "")),
            str(fields.get("object", "")),
        )
        claim_entry = self._seen_entry(agent_id, claim)
        if claim_entry is not None and claim_entry.offset == offset:
            self.seen[f"{agent_id}/{claim}"] = claim_entry.to_dict()

    async def _quarantine(
        self, fields: dict[str, Any], agent_id: str, verdict: Verdict, partition: int
    ) -> None:
        item_key = quarantine_item_id(agent_id, str(fields["id"]))
        item = QuarantineItem(
            id=item_key,
            agent_id=agent_id,
            assertion=fields,
            verdict=verdict,
            quarantined_at=verdict.decided_at,
        )
        payload = item.model_dump(mode="json")
        self.quarantine[item_key] = payload
        # quarantine-state is compacted, so each item needs its own key; the explicit
        # partition keeps it beside the agent's other records.
        await self.outputs[QUARANTINE_STATE].send(
            key=item_key.encode(), value=orjson.dumps(payload), partition=partition
        )

    async def publish_transitions(
        self, agent_id: str, state: AgentState, transitions: tuple[Transition, ...]
    ) -> None:
        if not transitions:
            return
        key = agent_id.encode()
        for transition in transitions:
            self.metrics.breaker_transitions.labels(
                transition.to_state.value, transition.reason
            ).inc()
            logger.info(
                "breaker of agent %s: %s -> %s (%s)",
                agent_id,
                transition.from_state.value,
                transition.to_state.value,
                transition.reason,
            )
            event = AdminEvent(
                kind=AdminEventKind.BREAKER_TRANSITION,
                agent_id=agent_id,
                detail={
                    "from": transition.from_state.value,
                    "to": transition.to_state.value,
                    "reason": transition.reason,
                    "trips": state.breaker.trips,
                },
                at=_ms_to_datetime(transition.at_ms),
            )
            await self.outputs[ADMIN_EVENTS].send(key=key, value=_dumps(event))
        await self.outputs[BREAKER_STATE].send(
            key=key, value=_dumps(self.snapshot(agent_id, state))
        )

    @staticmethod
    def snapshot(agent_id: str, state: AgentState) -> BreakerSnapshot:
        breaker = state.breaker
        return BreakerSnapshot(
            agent_id=agent_id,
            state=breaker.state,
            reason=breaker.reason,
            opened_at=_ms_to_datetime(breaker.opened_at_ms) if breaker.opened_at_ms else None,
            until=_ms_to_datetime(breaker.until_ms) if breaker.until_ms else None,
            trips=breaker.trips,
            manual=breaker.manual,
        )

    async def _dead_letter(self, message: Any, failure: DecodeFailure) -> None:
        key = message.key
        value = message.value
        record = InvalidRecord(
            kind=failure.kind,
            message=failure.message,
            field=failure.field,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key=key.decode("utf-8", errors="replace") if key is not None else None,
            original_base64=base64.b64encode(value).decode() if value is not None else None,
            detected_at=datetime.now(UTC),
        )
        # The source partition, not one picked from the key: a record without a key would
        # otherwise go to any partition, outside the exactly-once transaction of its source.
        await self.outputs[INVALID].send(key=key, value=_dumps(record), partition=message.partition)
        self.metrics.invalid.labels(failure.kind.value).inc()
        self._log.warning(
            failure.kind.value,
            "dead-lettered %s[%d] offset=%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            failure.kind.value,
            failure.message[:200],
        )

    # -- periodic -----------------------------------------------------------------

    async def sweep_agents(self) -> None:
        """Expire quiet agents' windows, time out breakers, drop idle agents' entries.

        No record arrives to tell broker time for a quiet agent, so the sweep uses this
        worker's wall clock. That clock differs from broker time by the clock skew
        between this host and the broker. The sweep only reads. A table write must go to
        the changelog partition of the agent's records, and faust picks that partition
        from the current event, which a timer does not have. So an agent whose state
        changes with time (an OPEN breaker that ended, expired windows, nothing left to
        keep) gets an ``expire_state`` command on ``admin-commands``, keyed by the agent.
        The command agent then applies the change, or deletes the entry, on the agent's
        partition.
        """
        now_ms = int(time.time() * 1000)
        cb = self.settings.circuit_breaker
        totals = AgentTotals()
        dropped = 0
        ticked = 0
        # The table is read one entry at a time, never as a list: with a million agents a
        # list of their states alone took gigabytes. Every SWEEP_CHUNK agents the sweep
        # sleeps, so it takes at most SWEEP_DUTY of the event loop's time from records.
        chunk_started = time.perf_counter()
        index = 0
        try:
            for index, (agent_id, data) in enumerate(self.agents.items(), start=1):
                state = AgentState.from_dict(data)
                swept, _ = sweep(state, now_ms, cb)
                if swept is None:
                    await self._request_expiry(agent_id, now_ms)
                    dropped += 1
                else:
                    totals.add(swept)
                    if swept != state:
                        await self._request_expiry(agent_id, now_ms)
                        ticked += 1
                if index % SWEEP_CHUNK == 0:
                    busy = time.perf_counter() - chunk_started
                    await asyncio.sleep(busy * (1.0 - SWEEP_DUTY) / SWEEP_DUTY)
                    chunk_started = time.perf_counter()
        except Exception as exc:
            # faust iterates its dict of partition stores, which a rebalance can change or
            # close while the sweep sleeps. The gauges keep their values until next time.
            logger.warning(
                "sweep stopped after %d agent(s), the next one starts over: %r", index, exc
            )
            return
        self.metrics.record_agent_totals(totals, self.quarantine.values(), _ms_to_datetime(now_ms))
        if dropped or ticked:
            logger.info(
                "sweep: %d idle agent(s) to drop, %d to expire, %d tracked",
                dropped,
                ticked,
                totals.tracked,
            )

    async def _request_expiry(self, agent_id: str, now_ms: int) -> None:
        command = AdminCommand(
            command_id=f"expire/{agent_id}/{now_ms}",
            kind=AdminCommandKind.EXPIRE_STATE,
            agent_id=agent_id,
            issued_by=SWEEPER,
            issued_at=_ms_to_datetime(now_ms),
        )
        await self.outputs[ADMIN_COMMANDS].send(key=agent_id.encode(), value=_dumps(command))

    # -- inspection ---------------------------------------------------------------

    def describe_agent(self, agent_id: str) -> dict[str, Any]:
        data = self.agents.get(agent_id)
        return {"agent_id": agent_id, "known": data is not None, "state": data}
