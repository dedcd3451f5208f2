"""Routing summary of a sample run: what the gate did with each role's records.

:func:`read_summary` reads the gate's output topics from the beginning and counts the
records of the agents in a sample :class:`~streams.sample.Manifest`, so older runs on
the same topics do not mix in. :func:`summarize` turns those counts into a
:class:`RoutingSummary` with a pass or fail line for each role's expected outcome, and
:func:`format_summary` renders it as plain text.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.admin import AdminEvent, AdminEventKind
from schemas.breaker import BreakerState
from schemas.invalid import InvalidRecord
from schemas.verdict import Reason, Route, RoutedAssertion
from streams.decision import REASON_FLOODING
from streams.errors import GateError
from streams.kafka_security import aiokafka_security_options
from streams.sample import Manifest, Role
from streams.settings import GateSettings
from streams.topics import ACCEPTED, ADMIN_EVENTS, BANNED, INVALID, QUARANTINE

logger = logging.getLogger(__name__)

INVALID_ROUTE = "invalid"
"""Pseudo-route of dead letters in the per-route counts."""

HONEST_MIN_ACCEPTED_PERCENT = 99.0
POLL_TIMEOUT_MS = 500
CLIENT_ID = "stemedb-gate-summary"
SUMMARY_TOPICS = (ACCEPTED, QUARANTINE, BANNED, INVALID, ADMIN_EVENTS)

# Reasons a record gets when its agent's breaker is open or probing. Any role whose
# breaker trips may show them besides its intended reason.
BREAKER_REASONS = frozenset({Reason.CIRCUIT_OPEN.value, Reason.HALF_OPEN_PROBES_EXHAUSTED.value})


class SummaryError(GateError, RuntimeError):
    """The gate's output topics could not be read."""


class Check(NamedTuple):
    """One expected outcome of the sample run and whether the gate met it."""

    description: str
    passed: bool


@dataclass
class RoleCounts:
    """Records of one role: how many were sent, and where and why they were routed."""

    agents: int
    sent: int
    routes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class BreakerOpening:
    """A ``breaker_transition`` event that opened the breaker of a sample agent."""

    agent_id: str
    role: Role
    from_state: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RoutingSummary:
    seed: int
    expected_total: int
    seen_total: int
    routes: Counter[str]
    """Records per route, with dead letters under ``invalid``."""
    reasons: Counter[str]
    """Reason counts over all routed records; a record with two reasons counts twice."""
    by_role: dict[Role, RoleCounts]
    invalid_by_kind: Counter[str]
    breakers_opened: list[BreakerOpening]
    honest_accepted_percent: float
    redelivered: int
    """Records seen twice for one input offset (at-least-once redelivery), counted once."""
    unreadable: int
    """Records on the output topics that did not parse as the gate's schemas."""
    checks: list[Check]

    @property
    def complete(self) -> bool:
        return self.seen_total >= self.expected_total

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


class RoutingTally:
    """Counts of the gate's output records of one sample run, fed one record at a time.

    Records of agents outside the manifest are skipped. A routed or dead-lettered
    record that repeats an input offset already counted is a redelivery and is not
    counted again.
    """

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.routes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.role_routes: dict[Role, Counter[str]] = {role: Counter() for role in Role}
        self.role_reasons: dict[Role, Counter[str]] = {role: Counter() for role in Role}
        self.invalid_by_kind: Counter[str] = Counter()
        self.openings: list[BreakerOpening] = []
        self.redelivered = 0
        self.unreadable = 0
        self._inputs_seen: set[tuple[str, int, int]] = set()
        self._events_seen: set[tuple[str, str, str, str, datetime]] = set()

    @property
    def seen(self) -> int:
        """Routed and dead-lettered records of the manifest's agents counted so far."""
        return self.routes.total()

    def add(self, topic: str, value: bytes | None) -> None:
        """Count one record of ``topic``, given by its unprefixed name such as ``accepted``."""
        if value is None:
            return
        try:
            if topic in (ACCEPTED, QUARANTINE, BANNED):
                self._add_routed(topic, RoutedAssertion.model_validate_json(value))
            elif topic == INVALID:
                self._add_invalid(InvalidRecord.model_validate_json(value))
            elif topic == ADMIN_EVENTS:
                self._add_event(AdminEvent.model_validate_json(value))
        except ValidationError as exc:
            self.unreadable += 1
            logger.debug("skipping a record on %s that does not parse: %s", topic, exc)

    def _is_redelivery(self, kind: str, partition: int | None, offset: int | None) -> bool:
        if partition is None or offset is None:
            return False
        marker = (kind, partition, offset)
        if marker in self._inputs_seen:
            self.redelivered += 1
            return True
        self._inputs_seen.add(marker)
        return False

    def _add_routed(self, route: str, record: RoutedAssertion) -> None:
        role = self.manifest.roles.get(str(record.assertion.get("agent_id")))
        if role is None:
            return
        verdict = record.verdict
        if self._is_redelivery("routed", verdict.source_partition, verdict.source_offset):
            return
        reasons = [reason.value for reason in verdict.reasons]
        self.routes[route] += 1
        self.reasons.update(reasons)
        self.role_routes[role][route] += 1
        self.role_reasons[role].update(reasons)

    def _add_invalid(self, record: InvalidRecord) -> None:
        # Malformed sample records carry an honest agent's key. Anyone can write garbage
        # under any key, so the key ties a dead letter to the run but not to a role.
        if record.key is None or record.key not in self.manifest.roles:
            return
        if self._is_redelivery("invalid", record.source_partition, record.source_offset):
            return
        self.routes[INVALID_ROUTE] += 1
        self.invalid_by_kind[record.kind.value] += 1
        self.role_routes[Role.MALFORMED][INVALID_ROUTE] += 1

    def _add_event(self, event: AdminEvent) -> None:
        if event.kind is not AdminEventKind.BREAKER_TRANSITION or event.agent_id is None:
            return
        role = self.manifest.roles.get(event.agent_id)
        if role is None or event.detail.get("to") != BreakerState.OPEN.value:
            return
        from_state = str(event.detail.get("from", "?"))
        reason = str(event.detail.get("reason", "?"))
        marker = (event.agent_id, from_state, BreakerState.OPEN.value, reason, event.at)
        if marker in self._events_seen:
            return
        self._events_seen.add(marker)
        self.openings.append(BreakerOpening(event.agent_id, role, from_state, reason, event.at))


def summarize(tally: RoutingTally, manifest: Manifest) -> RoutingSummary:
    """Build the summary of ``tally`` and check each role's outcome against ``manifest``."""
    by_role = {
        role: RoleCounts(
            agents=len(manifest.agents(role)),
            sent=manifest.sent_by_role.get(role, 0),
            routes=Counter(tally.role_routes[role]),
            reasons=Counter(tally.role_reasons[role]),
        )
        for role in Role
    }
    honest = by_role[Role.HONEST]
    # Honest records still missing count as not accepted, so an incomplete read cannot
    # pass the acceptance check.
    honest_percent = 100.0 * honest.routes[Route.ACCEPTED.value] / max(honest.sent, 1)
    summary = RoutingSummary(
        seed=manifest.seed,
        expected_total=manifest.expected_total,
        seen_total=tally.seen,
        routes=Counter(tally.routes),
        reasons=Counter(tally.reasons),
        by_role=by_role,
        invalid_by_kind=Counter(tally.invalid_by_kind),
        breakers_opened=sorted(tally.openings, key=lambda opening: opening.at),
        honest_accepted_percent=honest_percent,
        redelivered=tally.redelivered,
        unreadable=tally.unreadable,
        checks=[],
    )
    summary.checks.extend(_checks(summary, manifest))
    return summary


def _only_reasons(counts: RoleCounts, intended: str) -> bool:
    """Return whether every quarantined record has ``intended`` and no other content reason."""
    allowed = BREAKER_REASONS | {intended}
    return (
        set(counts.reasons) <= allowed
        and counts.reasons[intended] == counts.routes[Route.QUARANTINE.value]
    )


def _checks(summary: RoutingSummary, manifest: Manifest) -> Iterable[Check]:
    accepted, quarantine, banned = Route.ACCEPTED.value, Route.QUARANTINE.value, Route.BANNED.value
    openings_by_role = Counter(opening.role for opening in summary.breakers_opened)

    yield Check(
        f"all {summary.expected_total} records routed or dead-lettered ({summary.seen_total} seen)",
        summary.seen_total == summary.expected_total,
    )

    honest = summary.by_role[Role.HONEST]
    yield Check(
        f"honest: {summary.honest_accepted_percent:.1f}% of {honest.sent} accepted "
        f"(at least {HONEST_MIN_ACCEPTED_PERCENT:g}% expected)",
        summary.honest_accepted_percent >= HONEST_MIN_ACCEPTED_PERCENT,
    )
    yield Check(
        f"honest: no breaker opened ({openings_by_role[Role.HONEST]} opened)",
        openings_by_role[Role.HONEST] == 0,
    )

    flooder = summary.by_role[Role.FLOODER]
    flood_reasons = {o.reason for o in summary.breakers_opened if o.role is Role.FLOODER}
    yield Check(
        f"flooder: breaker opened on {REASON_FLOODING} "
        f"(opened on: {', '.join(sorted(flood_reasons)) or 'none'}), "
        f"{flooder.routes[banned]} of {flooder.sent} banned",
        REASON_FLOODING in flood_reasons and 2 * flooder.routes[banned] >= flooder.sent,
    )

    low = summary.by_role[Role.LOW_QUALITY]
    yield Check(
        f"low_quality: none accepted ({low.routes[accepted]}), "
        f"{low.reasons[Reason.LOW_QUALITY.value]} quarantined as LowQuality and for no "
        "other content reason",
        low.routes[accepted] == 0
        and low.reasons[Reason.LOW_QUALITY.value] > 0
        and _only_reasons(low, Reason.LOW_QUALITY.value),
    )

    retry = summary.by_role[Role.RETRY_LOOP]
    distinct = manifest.distinct_claims_by_role.get(Role.RETRY_LOOP, 0)
    yield Check(
        f"retry_loop: at most the {distinct} first copies accepted ({retry.routes[accepted]}), "
        f"{retry.reasons[Reason.DUPLICATE.value]} repeats quarantined as Duplicate only",
        retry.routes[accepted] <= distinct
        and retry.reasons[Reason.DUPLICATE.value] > 0
        and _only_reasons(retry, Reason.DUPLICATE.value),
    )

    new_agent = summary.by_role[Role.NEW_HIGH_CONFIDENCE]
    intended = Reason.UNTRUSTED_HIGH_CONFIDENCE.value
    yield Check(
        f"new_high_confidence: {new_agent.reasons[intended]} of {new_agent.sent} quarantined "
        "as UntrustedHighConfidence only",
        new_agent.routes[quarantine] == new_agent.sent
        and new_agent.reasons[intended] == new_agent.sent
        and set(new_agent.reasons) == {intended},
    )

    invalid_total = summary.routes[INVALID_ROUTE]
    yield Check(
        f"malformed: {invalid_total} of {manifest.expected_invalid} dead-lettered",
        invalid_total == manifest.expected_invalid,
    )
    expected_kinds = Counter(manifest.expected_invalid_kinds)
    kinds_match = summary.invalid_by_kind == expected_kinds
    kinds_text = (
        f"as expected ({_format_counts(expected_kinds)})"
        if kinds_match
        else f"{_format_counts(summary.invalid_by_kind)}, expected {_format_counts(expected_kinds)}"
    )
    yield Check(f"malformed: dead-letter kinds {kinds_text}", kinds_match)


async def read_summary(
    settings: GateSettings,
    manifest: Manifest,
    timeout_seconds: float,
    progress: Callable[[int, int], None] | None = None,
) -> RoutingSummary:
    """Read the gate's output topics and summarize what it did with a sample run.

    Reads ``accepted``, ``quarantine``, ``banned``, ``invalid`` and ``admin-events``
    from the beginning with ``read_committed``, up to their end offsets at the start,
    and on until every record of ``manifest`` is routed or dead-lettered. It stops at
    ``timeout_seconds`` even when records are missing; the summary then shows the run
    as incomplete. ``progress(seen, expected)`` is called after each poll.
    """
    names = {settings.kafka.topic(name): name for name in SUMMARY_TOPICS}
    bootstrap = settings.kafka.bootstrap_servers
    security = aiokafka_security_options(settings.kafka)
    tally = RoutingTally(manifest)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security,
    )
    try:
        try:
            partitions = await _find_partitions(bootstrap, names, security)
            await consumer.start()
        except KafkaError as exc:
            raise SummaryError(
                f"cannot read the gate's topics on Kafka at {bootstrap}: {exc}; start the "
                "broker or set kafka.bootstrap_servers"
            ) from exc
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            await _consume(consumer, partitions, names, tally, timeout_seconds, progress)
    finally:
        await consumer.stop()
    return summarize(tally, manifest)


async def _find_partitions(
    bootstrap: str, topics: Iterable[str], security: Mapping[str, Any]
) -> list[TopicPartition]:
    """Return the partitions of those of ``topics`` that exist, skipping missing ones.

    Only topics that ``list_topics`` returns are described, because a metadata request
    for a missing topic makes a broker with ``auto.create.topics.enable`` create it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT_ID, **security)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        present = [topic for topic in topics if topic in existing]
        for topic in topics:
            if topic not in existing:
                logger.warning("topic %s does not exist; its records count as missing", topic)
        described = await admin.describe_topics(present) if present else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(str(topic["topic"]), int(partition["partition"]))
        for topic in described
        for partition in topic["partitions"]
    ]
    return sorted(partitions)


async def _consume(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    names: Mapping[str, str],
    tally: RoutingTally,
    timeout_seconds: float,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Poll until every partition reached its target and every expected record was seen.

    The first targets are the end offsets when reading starts. Once all expected
    records are seen, the targets move to the end offsets of that moment, because the
    breaker transition that banned an agent's last records can land on
    ``admin-events`` after them.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    expected = tally.manifest.expected_total
    targets: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
    targets_moved = False
    while True:
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
        for messages in batches.values():
            for message in messages:
                tally.add(names[message.topic], message.value)
        if progress is not None:
            progress(tally.seen, expected)

        if tally.seen >= expected and not targets_moved:
            targets = await consumer.end_offsets(list(partitions))
            targets_moved = True
        if tally.seen >= expected and await _reached(consumer, targets):
            return
        if loop.time() >= deadline:
            logger.warning(
                "stopped reading after %.0f s with %d of %d sample records routed",
                timeout_seconds,
                tally.seen,
                expected,
            )
            return


async def _reached(consumer: AIOKafkaConsumer, targets: Mapping[TopicPartition, int]) -> bool:
    for partition, end in targets.items():
        if await consumer.position(partition) < end:
            return False
    return True


def _format_counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Render rows under headers in aligned columns: numbers (and "-") right, text left."""
    numeric = [
        any(isinstance(row[i], int) for row in rows)
        and all(isinstance(row[i], int) or row[i] == "-" for row in rows)
        for i in range(len(headers))
    ]
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def _short_agent(agent_id: str) -> str:
    return f"{agent_id[:12]}..."


def format_summary(summary: RoutingSummary) -> str:
    """Render ``summary`` as plain-text tables followed by one PASS or FAIL line per check."""
    headline = (
        f"Routing summary of sample seed {summary.seed}: {summary.seen_total} of "
        f"{summary.expected_total} records seen"
    )
    missing = summary.expected_total - summary.seen_total
    if missing > 0:
        headline += f" (INCOMPLETE: {missing} not routed yet)"
    elif missing < 0:
        headline += f" ({-missing} more than sent: the topics hold an earlier play of this seed)"
    lines = [headline, ""]

    route_names = [route.value for route in Route] + [INVALID_ROUTE]
    lines += _table(["route", "records"], [[r, summary.routes[r]] for r in route_names])
    lines.append("")

    reason_rows = [[reason, n] for reason, n in summary.reasons.most_common()]
    lines += _table(["reason", "records"], reason_rows or [["(none)", 0]])
    lines.append("")

    role_rows = []
    for role, counts in summary.by_role.items():
        role_rows.append(
            [
                role.value,
                counts.agents if role is not Role.MALFORMED else "-",
                counts.sent,
                *(counts.routes[name] for name in route_names),
                _format_counts(counts.reasons) if counts.reasons else "-",
            ]
        )
    lines += _table(["role", "agents", "sent", *route_names, "reasons"], role_rows)
    lines.append("")

    kind_rows = [[kind, n] for kind, n in sorted(summary.invalid_by_kind.items())]
    lines += _table(["invalid kind", "records"], kind_rows or [["(none)", 0]])
    lines.append("")

    lines.append(f"breakers opened: {len(summary.breakers_opened)}")
    if summary.breakers_opened:
        opening_rows = [
            [
                _short_agent(o.agent_id),
                o.role.value,
                o.from_state,
                o.reason,
                o.at.isoformat(timespec="seconds"),
            ]
            for o in summary.breakers_opened
        ]
        lines += _table(["agent", "role", "from", "reason", "at"], opening_rows)
    lines.append("")

    if summary.redelivered or summary.unreadable:
        lines.append(
            f"skipped: {summary.redelivered} redelivered records, "
            f"{summary.unreadable} records that do not parse"
        )
        lines.append("")

    lines.append("checks:")
    lines += [f"  {'PASS' if c.passed else 'FAIL'}  {c.description}" for c in summary.checks]
    return "\n".join(lines) + "\n"
