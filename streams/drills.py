"""Drills: reproduce each cause of a quarantine overflow on a running gate.

Each drill writes signed assertions (and, where the cause needs them, admin commands)
to the gate's topics, the way the cause happens in production, and names the alert it
should fire:

- ``flood``: one agent in a retry loop resends a batch of 10 claims at ``rate``
  records a second. After 20 records its breaker opens on failure rate, and the agent
  goes on sending. Alert: StemeDBAgentFlooding.
- ``strict-thresholds``: ``untrusted_confidence_threshold`` is set to 0.5 at runtime,
  then 15 honest agents send 12 sourced claims each, all UntrustedHighConfidence.
  Reviewers approve 36 of the first 40 items and reject 4. Alerts:
  StemeDBHighFalsePositiveRate, then StemeDBQuarantineOverflow.
- ``low-quality``: 8 agents of a broken pipeline send 25 placeholder claims each,
  LowQuality until each breaker opens on failure rate. Alert: StemeDBQuarantineOverflow.
- ``surge``: 40 new backfill agents send 40 good claims each. Every 4th has no source
  and confidence 0.9 (UntrustedHighConfidence), a share below the failure rate, so no
  breaker opens. Alert: StemeDBQuarantineOverflow.

Admin commands go straight to ``admin-commands``, as the admin API would publish
them, so a drill needs only the broker and a worker. With a Prometheus URL the drill
waits until the alert fires and prints it with the values of the queries behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.admin import AdminCommand, AdminCommandKind
from schemas.quarantine import quarantine_item_id
from schemas.signing import sign
from streams.errors import GateError
from streams.kafka_security import aiokafka_security_options
from streams.sample_claims import Claim, load_claims
from streams.settings import GateSettings, current_thresholds
from streams.topics import ADMIN_COMMANDS, ASSERTIONS, QUARANTINE

logger = logging.getLogger(__name__)

DRILL_OPERATOR = "drill"
FLOOD_BATCH = 10
STRICT_THRESHOLD = {"untrusted_confidence_threshold": 0.5}
STRICT_AGENTS = 15
STRICT_PER_AGENT = 12
STRICT_REVIEWED = 40
STRICT_APPROVED = 36
LOW_QUALITY_AGENTS = 8
LOW_QUALITY_PER_AGENT = 25
SURGE_AGENTS = 40
SURGE_PER_AGENT = 40
SURGE_UNSOURCED_EVERY = 4
PLACEHOLDERS = ("n/a", "TODO", "unknown", "null", "placeholder", "TBD", "???", "-")

PROMETHEUS_POLL_SECONDS = 5.0
WAIT_FOR_ITEMS_SECONDS = 120.0


class Drill(StrEnum):
    FLOOD = "flood"
    STRICT_THRESHOLDS = "strict-thresholds"
    LOW_QUALITY = "low-quality"
    SURGE = "surge"


# The alert each drill is expected to fire; the first one is waited for.
EXPECTED_ALERTS: dict[Drill, tuple[str, ...]] = {
    Drill.FLOOD: ("StemeDBAgentFlooding",),
    Drill.STRICT_THRESHOLDS: ("StemeDBHighFalsePositiveRate", "StemeDBQuarantineOverflow"),
    Drill.LOW_QUALITY: ("StemeDBQuarantineOverflow",),
    Drill.SURGE: ("StemeDBQuarantineOverflow",),
}

_WORKER = 'job="stemedb-worker"'
# The queries an on-call engineer reads to tell the causes apart.
EVIDENCE_QUERIES: tuple[tuple[str, str], ...] = (
    ("pending items", f"sum(stemedb_quarantine_pending{{{_WORKER}}})"),
    ("read per minute", f"sum(stemedb_ingest_rate_per_minute{{{_WORKER}}})"),
    ("quarantined per minute", f"sum(stemedb_quarantine_rate_per_minute{{{_WORKER}}})"),
    (
        "top agents, submissions per minute",
        f'topk(3, stemedb_ingest_rate_per_agent{{{_WORKER}, agent_id!="other"}})',
    ),
    (
        "top agents, quarantined per minute",
        f'topk(3, stemedb_quarantine_rate_per_agent{{{_WORKER}, agent_id!="other"}})',
    ),
    ("quarantined by reason", f"sum by (reason) (stemedb_quarantine_total{{{_WORKER}}})"),
    ("breakers by state", f"sum by (state) (stemedb_breakers{{{_WORKER}}})"),
    (
        "breaker openings by reason",
        f'sum by (reason) (stemedb_breaker_transitions_total{{{_WORKER}, to_state="OPEN"}})',
    ),
    (
        "approved share of reviews (1h)",
        f"sum(rate(stemedb_quarantine_approved_total{{{_WORKER}}}[1h])) / "
        f"(sum(rate(stemedb_quarantine_approved_total{{{_WORKER}}}[1h])) + "
        f"sum(rate(stemedb_quarantine_rejected_total{{{_WORKER}}}[1h])))",
    ),
)


class DrillError(GateError, RuntimeError):
    """A drill could not write its traffic or read its results."""


@dataclass
class DrillRecord:
    key: bytes
    value: bytes
    agent_id: str
    assertion_id: str


@dataclass
class DrillReport:
    drill: Drill
    agents: list[str]
    records_sent: int
    commands_sent: int
    notes: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[tuple[str, list[tuple[dict[str, str], str]]]] = field(default_factory=list)


class _Claims:
    """Real GeoNames claims in a seeded order, each handed out once."""

    def __init__(self, seed: int) -> None:
        claims = list(load_claims())
        random.Random(seed).shuffle(claims)
        self._iter: Iterator[Claim] = iter(claims)

    def next(self) -> Claim:
        return next(self._iter)


def agent_key(seed: int, drill: Drill, index: int) -> Ed25519PrivateKey:
    # Derived from the seed so a drill can be replayed. These keys sign drill traffic
    # only and must never sign real assertions.
    material = hashlib.sha256(f"stemedb-gate drill {seed} {drill} {index}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(material)


def _record(
    key: Ed25519PrivateKey,
    claim: Claim,
    *,
    confidence: float,
    sources: Sequence[str],
    assertion_id: str | None = None,
    subject: str | None = None,
    obj: str | None = None,
) -> DrillRecord:
    fields = sign(
        {
            "schema_version": 1,
            "id": assertion_id or uuid.uuid4().hex,
            "subject": subject if subject is not None else claim.subject,
            "predicate": claim.predicate,
            "object": obj if obj is not None else claim.object,
            "confidence": confidence,
            "sources": list(sources),
            "created_at": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        },
        key,
    )
    agent_id = str(fields["agent_id"])
    return DrillRecord(agent_id.encode(), orjson.dumps(fields), agent_id, str(fields["id"]))


# -- traffic of each drill ---------------------------------------------------------------


def flood_records(seed: int, count: int) -> list[DrillRecord]:
    """Build ``count`` records of one agent resending the same batch of claims."""
    claims = _Claims(seed)
    key = agent_key(seed, Drill.FLOOD, 0)
    # A client that never receives its acknowledgements resends the batch byte for byte.
    batch = []
    for number in range(FLOOD_BATCH):
        claim = claims.next()
        batch.append(
            _record(
                key,
                claim,
                confidence=0.7,
                sources=claim.sources[:1],
                assertion_id=f"flood-{seed}-{number}",
            )
        )
    return [batch[i % FLOOD_BATCH] for i in range(count)]


def strict_records(seed: int) -> list[DrillRecord]:
    """Build sourced claims of honest agents, with confidence between 0.55 and 0.9."""
    claims = _Claims(seed)
    rng = random.Random(seed)
    records = []
    for index in range(STRICT_AGENTS):
        key = agent_key(seed, Drill.STRICT_THRESHOLDS, index)
        for _ in range(STRICT_PER_AGENT):
            claim = claims.next()
            confidence = round(rng.uniform(0.55, 0.9), 2)
            records.append(_record(key, claim, confidence=confidence, sources=claim.sources[:1]))
    return _round_robin(records, STRICT_PER_AGENT)


def low_quality_records(seed: int) -> list[DrillRecord]:
    """Build placeholder objects from a broken extraction pipeline, one agent per source."""
    claims = _Claims(seed)
    records = []
    for index in range(LOW_QUALITY_AGENTS):
        key = agent_key(seed, Drill.LOW_QUALITY, index)
        for number in range(LOW_QUALITY_PER_AGENT):
            claim = claims.next()
            placeholder = PLACEHOLDERS[number % len(PLACEHOLDERS)]
            records.append(
                _record(
                    key,
                    claim,
                    confidence=0.7,
                    sources=claim.sources[:1],
                    # The claim's subject keeps each record distinct, so no Duplicate.
                    obj=placeholder,
                )
            )
    return _round_robin(records, LOW_QUALITY_PER_AGENT)


def surge_records(seed: int) -> list[DrillRecord]:
    """Build a backfill: good claims, every 4th without a source at confidence 0.9.

    The unsourced records sit at positions 3, 7, 11, ... of each agent, so the
    quarantined share of an agent never exceeds 1/4 at any point and stays below the
    default ``failure_rate_threshold`` of 0.3.
    """
    claims = _Claims(seed)
    records = []
    for index in range(SURGE_AGENTS):
        key = agent_key(seed, Drill.SURGE, index)
        for number in range(SURGE_PER_AGENT):
            claim = claims.next()
            if number % SURGE_UNSOURCED_EVERY == SURGE_UNSOURCED_EVERY - 1:
                records.append(_record(key, claim, confidence=0.9, sources=()))
            else:
                records.append(_record(key, claim, confidence=0.75, sources=claim.sources[:1]))
    return _round_robin(records, SURGE_PER_AGENT)


def _round_robin(records: list[DrillRecord], per_agent: int) -> list[DrillRecord]:
    """Interleave per-agent runs of ``per_agent`` records, keeping each agent's order."""
    agents = [records[i : i + per_agent] for i in range(0, len(records), per_agent)]
    return [run[i] for i in range(per_agent) for run in agents if i < len(run)]


# -- Kafka ---------------------------------------------------------------------------------


class DrillClient:
    """Writes drill traffic and admin commands to the gate's topics."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> DrillClient:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            client_id="stemedb-gate-drill",
            acks="all",
            linger_ms=5,
            **aiokafka_security_options(self.settings.kafka),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise DrillError(
                f"cannot connect to Kafka at {self.settings.kafka.bootstrap_servers}: {exc}; "
                "start the broker (stemedb-gate broker start) or set kafka.bootstrap_servers"
            ) from exc
        self._producer = producer
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("DrillClient used outside 'async with'")
        return self._producer

    async def send(self, records: Sequence[DrillRecord], per_second: float | None = None) -> None:
        """Produce ``records`` in order, at most ``per_second`` a second when given."""
        topic = self.settings.kafka.topic(ASSERTIONS)
        started = time.monotonic()
        futures = []
        for sent, record in enumerate(records):
            if per_second is not None:
                due = started + sent / per_second
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            futures.append(await self.producer.send(topic, value=record.value, key=record.key))
        await asyncio.gather(*futures)

    async def command(
        self, kind: AdminCommandKind, *, agent_id: str | None = None, **fields: Any
    ) -> AdminCommand:
        """Publish one command keyed by its agent, as the admin API does."""
        command = AdminCommand(
            command_id=f"drill-{uuid.uuid4().hex}",
            kind=kind,
            agent_id=agent_id,
            issued_by=DRILL_OPERATOR,
            issued_at=datetime.now(UTC),
            **fields,
        )
        await self.producer.send_and_wait(
            self.settings.kafka.topic(ADMIN_COMMANDS),
            key=(agent_id or command.command_id).encode(),
            value=orjson.dumps(command.model_dump(mode="json")),
        )
        return command

    async def set_thresholds(self, thresholds: dict[str, float]) -> None:
        """Publish one ``set_thresholds`` command to every partition of admin-commands.

        Each partition keeps its own copy of the thresholds, so the same command id goes
        to all of them, as the admin API sends it.
        """
        topic = self.settings.kafka.topic(ADMIN_COMMANDS)
        partitions = await self.producer.partitions_for(topic)
        if not partitions:
            raise DrillError(f"topic {topic!r} has no partitions; run 'stemedb-gate topics setup'")
        command = AdminCommand(
            command_id=f"drill-{uuid.uuid4().hex}",
            kind=AdminCommandKind.SET_THRESHOLDS,
            parameters=dict(thresholds),
            issued_by=DRILL_OPERATOR,
            issued_at=datetime.now(UTC),
        )
        value = orjson.dumps(command.model_dump(mode="json"))
        for partition in sorted(partitions):
            await self.producer.send_and_wait(
                topic, key=b"thresholds", value=value, partition=partition
            )

    async def quarantine_end_offsets(self) -> dict[TopicPartition, int]:
        topic = self.settings.kafka.topic(QUARANTINE)
        # The producer fetches the topic's metadata when asked; a consumer without a
        # subscription does not.
        partitions = await self.producer.partitions_for(topic)
        if not partitions:
            raise DrillError(f"topic {topic!r} has no partitions; run 'stemedb-gate topics setup'")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        async with _OffsetConsumer(self.settings) as consumer:
            return dict(await consumer.end_offsets(tps))

    async def wait_quarantined(
        self, start: dict[TopicPartition, int], count: int, timeout_seconds: float
    ) -> list[tuple[str, str]]:
        """Read ``quarantine`` from ``start`` until ``count`` records arrived.

        Returns (agent id, assertion id) in arrival order. Raises :class:`DrillError`
        when fewer arrive in time, which means the worker is not running or is behind.
        """
        found: list[tuple[str, str]] = []
        async with _OffsetConsumer(self.settings) as consumer:
            consumer.assign(list(start))
            for tp, offset in start.items():
                consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout_seconds
            while len(found) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        routed = orjson.loads(message.value)
                        assertion = routed["assertion"]
                        found.append((str(assertion["agent_id"]), str(assertion["id"])))
        if len(found) < count:
            raise DrillError(
                f"only {len(found)} of {count} records reached the quarantine topic within "
                f"{timeout_seconds:.0f}s; check that a worker runs (curl its /readyz)"
            )
        return found


class _OffsetConsumer:
    """A consumer without a group, started and stopped around one use."""

    def __init__(self, settings: GateSettings) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            client_id="stemedb-gate-drill",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **aiokafka_security_options(settings.kafka),
        )

    async def __aenter__(self) -> AIOKafkaConsumer:
        await self.consumer.start()
        return self.consumer

    async def __aexit__(self, *exc_info: object) -> None:
        await self.consumer.stop()


# -- running a drill -------------------------------------------------------------------------


async def run_drill(
    settings: GateSettings,
    drill: Drill,
    *,
    seed: int,
    flood_rate: float = 3.0,
    flood_seconds: float = 120.0,
    say: Callable[[str], None] = print,
) -> DrillReport:
    """Write one drill's traffic and commands; return what was sent."""
    async with DrillClient(settings) as client:
        if drill is Drill.FLOOD:
            records = flood_records(seed, int(flood_rate * flood_seconds))
            say(
                f"flood: 1 agent, {len(records)} records at {flood_rate:g}/s "
                f"for {flood_seconds:.0f}s"
            )
            await client.send(records, per_second=flood_rate)
            return DrillReport(drill, _agents(records), len(records), 0)

        if drill is Drill.STRICT_THRESHOLDS:
            return await _strict_thresholds(client, seed, say)

        records = low_quality_records(seed) if drill is Drill.LOW_QUALITY else surge_records(seed)
        say(f"{drill}: {len(_agents(records))} agents, {len(records)} records")
        await client.send(records)
        return DrillReport(drill, _agents(records), len(records), 0)


async def _strict_thresholds(
    client: DrillClient, seed: int, say: Callable[[str], None]
) -> DrillReport:
    # 1. Tighten the threshold on every partition, as an over-eager tuning would.
    say(f"strict-thresholds: setting {STRICT_THRESHOLD} at runtime")
    await client.set_thresholds(STRICT_THRESHOLD)
    # The command and the records travel on different topics, so give the worker a
    # moment to apply the thresholds before the first record.
    await asyncio.sleep(3.0)

    # 2. Honest traffic, which the strict threshold quarantines.
    start = await client.quarantine_end_offsets()
    records = strict_records(seed)
    say(f"strict-thresholds: {STRICT_AGENTS} agents, {len(records)} records")
    await client.send(records)

    # 3. Reviewers find the first items fine: approve most, reject a few.
    quarantined = await client.wait_quarantined(start, STRICT_REVIEWED, WAIT_FOR_ITEMS_SECONDS)
    commands = 1
    for number, (agent_id, assertion_id) in enumerate(quarantined[:STRICT_REVIEWED]):
        kind = AdminCommandKind.APPROVE if number < STRICT_APPROVED else AdminCommandKind.REJECT
        await client.command(
            kind,
            agent_id=agent_id,
            item_id=quarantine_item_id(agent_id, assertion_id),
            reason="drill review",
        )
        commands += 1
    say(
        f"strict-thresholds: approved {STRICT_APPROVED} and rejected "
        f"{STRICT_REVIEWED - STRICT_APPROVED} of the first {STRICT_REVIEWED} items"
    )
    report = DrillReport(Drill.STRICT_THRESHOLDS, _agents(records), len(records), commands)
    report.notes.append(
        "the strict threshold stays in force; restore it with "
        "'stemedb-gate drill restore-thresholds' or the runbook's threshold step"
    )
    return report


async def restore_thresholds(settings: GateSettings) -> dict[str, float]:
    """Set the thresholds a drill changes back to the values of ``settings``."""
    configured = current_thresholds(settings)
    values = {key: float(configured[key]) for key in STRICT_THRESHOLD}
    async with DrillClient(settings) as client:
        await client.set_thresholds(values)
    return values


def _agents(records: Sequence[DrillRecord]) -> list[str]:
    return list(dict.fromkeys(record.agent_id for record in records))


# -- Prometheus ------------------------------------------------------------------------------


async def wait_for_alert(
    prometheus_url: str, alert: str, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Poll Prometheus until ``alert`` is firing; return its firing instances.

    Raises :class:`DrillError` when it is not firing within ``timeout_seconds``, with
    the state it reached (inactive, pending).
    """
    deadline = time.monotonic() + timeout_seconds
    state = "inactive"
    async with aiohttp.ClientSession() as session:
        while True:
            alerts = await _prometheus_get(session, prometheus_url, "/api/v1/alerts", {})
            mine = [a for a in alerts["alerts"] if a["labels"].get("alertname") == alert]
            firing = [a for a in mine if a["state"] == "firing"]
            if firing:
                return firing
            if mine:
                state = mine[0]["state"]
            if time.monotonic() >= deadline:
                raise DrillError(
                    f"alert {alert} is {state}, not firing, after {timeout_seconds:.0f}s; "
                    f"check the rules Prometheus at {prometheus_url} loaded (/rules)"
                )
            await asyncio.sleep(PROMETHEUS_POLL_SECONDS)


async def query_evidence(
    prometheus_url: str,
) -> list[tuple[str, list[tuple[dict[str, str], str]]]]:
    """Return each evidence query's result: (labels, value) for every series."""
    results = []
    async with aiohttp.ClientSession() as session:
        for title, expr in EVIDENCE_QUERIES:
            data = await _prometheus_get(session, prometheus_url, "/api/v1/query", {"query": expr})
            series = [
                ({k: v for k, v in item["metric"].items() if k != "__name__"}, item["value"][1])
                for item in data["result"]
            ]
            results.append((f"{title}: {expr}", series))
    return results


async def _prometheus_get(
    session: aiohttp.ClientSession, base_url: str, path: str, params: dict[str, str]
) -> dict[str, Any]:
    url = base_url.rstrip("/") + path
    try:
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(10)) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise DrillError(f"request to Prometheus {url} failed: {exc!r}") from exc
    if body.get("status") != "success":
        raise DrillError(f"Prometheus {url} returned an error: {body.get('error')}")
    data: dict[str, Any] = body["data"]
    return data


def format_report(report: DrillReport) -> str:
    lines = [
        f"drill {report.drill}: {report.records_sent} records from {len(report.agents)} "
        f"agent(s), {report.commands_sent} admin command(s)",
    ]
    lines += [f"  note: {note}" for note in report.notes]
    for alert in report.alerts:
        labels = {k: v for k, v in alert["labels"].items() if k not in ("alertname", "severity")}
        lines.append(
            f"  FIRING {alert['labels']['alertname']} {labels or ''} value={alert['value']} "
            f"since {alert.get('activeAt', '?')}"
        )
    for title, series in report.evidence:
        lines.append(f"  {title}")
        if not series:
            lines.append("      (no data)")
        for labels, value in series:
            text = ", ".join(
                f"{k}={_short(v)}"
                for k, v in sorted(labels.items())
                if k not in ("job", "instance")
            )
            lines.append(f"      {text or '-'}: {value}")
    return "\n".join(lines)


def _short(value: str) -> str:
    return value[:12] + "..." if re.fullmatch(r"[0-9a-f]{64}", value) else value


# -- Prometheus config for drills ------------------------------------------------------------

_FOR_LINE = re.compile(r"^(\s*for:\s*)\S+\s*$", re.MULTILINE)


def write_prometheus_config(source_dir: Path, out_dir: Path, for_seconds: int | None) -> Path:
    """Copy the local Prometheus config and rules to ``out_dir``; return the config path.

    With ``for_seconds`` every alert's ``for:`` becomes that many seconds, so a drill
    shows its alert firing in seconds. The expressions are not changed.
    """
    rules_out = out_dir / "rules"
    rules_out.mkdir(parents=True, exist_ok=True)
    for rules_file in sorted((source_dir / "rules").glob("*.yml")):
        text = rules_file.read_text(encoding="utf-8")
        if for_seconds is not None:
            text = _FOR_LINE.sub(lambda m: f"{m.group(1)}{for_seconds}s", text)
        (rules_out / rules_file.name).write_text(text, encoding="utf-8")
    config = out_dir / "prometheus.yml"
    config.write_text((source_dir / "local.yml").read_text(encoding="utf-8"), encoding="utf-8")
    return config
