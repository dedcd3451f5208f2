"""Sample traffic for the gate: signed assertions from real GeoNames facts, played by agents.

Each agent behaves like one of the common causes of a quarantine overflow, so a run
shows every defense of the gate at work. With the default settings the gate should
route them as follows:

=====================  ======  =========================================================
role                   agents  records and expected outcome
=====================  ======  =========================================================
honest                 8       40 distinct sourced claims each, confidence 0.55-0.90:
                               accepted. 40 stays below the flood limit of 50 a minute.
flooder                1       300 distinct sourced claims in one burst: the first ~50
                               accepted, then the breaker opens on rate and the rest
                               are banned.
low_quality            1       30 real claims with a placeholder or junk subject or
                               object, or the subject repeated as the object:
                               LowQuality. After 20 the breaker opens on failure rate
                               and the rest are banned.
retry_loop             1       a batch of 10 claims sent 4 times with the same ids: the
                               first copies accepted, repeats Duplicate, and after 20
                               records the breaker opens on failure rate.
new_high_confidence    1       15 claims with confidence 0.96-0.99 and no sources:
                               UntrustedHighConfidence.
malformed              (none)  6 dead letters sent under the first honest agent's key:
                               not JSON, a string confidence, a missing field, a
                               corrupted signature, a key that is not the agent_id, and
                               a null value.
=====================  ======  =========================================================

Plans are deterministic: the seed fixes the agents' keys, the claims, the ids and the
order, and ``now`` fixes ``created_at``. Playing one seed twice against the same topics
within ``duplicate_lookback_hours`` therefore turns the second run into duplicates and
banned records, so each run should use a new seed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.invalid import InvalidKind
from schemas.signing import public_key_hex, sign
from streams.errors import GateError
from streams.kafka_security import aiokafka_security_options
from streams.sample_claims import Claim, load_claims
from streams.settings import GateSettings
from streams.topics import ASSERTIONS

logger = logging.getLogger(__name__)

MAX_HONEST_PER_AGENT = 40
MAX_HONEST_AGENTS = 100
FLOOD_RECORDS = 300
LOW_QUALITY_RECORDS = 30
RETRY_CLAIMS = 10
RETRY_SENDS = 4
NEW_AGENT_RECORDS = 15

HONEST_CONFIDENCE = (0.55, 0.90)
LOW_QUALITY_CONFIDENCE = (0.60, 0.80)
HIGH_CONFIDENCE = (0.96, 0.99)

# Placeholder and junk text of a broken extraction pipeline. Each value on its own is
# a placeholder or junk under the gate's quality rules, whose penalty alone takes a
# claim below the default quality_threshold.
JUNK_VALUES = (
    "n/a",
    "N/A",
    "TODO",
    "TBD",
    "???",
    "-",
    "null",
    "unknown",
    "placeholder",
    "lorem ipsum",
    "xxxxxxxxxx",
    "###",
)


class Role(StrEnum):
    """The behaviour an agent of the sample plays."""

    HONEST = "honest"
    FLOODER = "flooder"
    LOW_QUALITY = "low_quality"
    RETRY_LOOP = "retry_loop"
    NEW_HIGH_CONFIDENCE = "new_high_confidence"
    MALFORMED = "malformed"


class SampleError(GateError, RuntimeError):
    """Sample traffic could not be built or produced."""


@dataclass(frozen=True)
class SampleRecord:
    """One record to produce to ``assertions``: key and value bytes as they go on the wire."""

    key: bytes | None
    value: bytes | None
    role: Role
    expected_invalid: InvalidKind | None = None


@dataclass(frozen=True)
class Manifest:
    """Role of each agent of a plan, and the records the plan sends.

    Malformed records go out under an honest agent's key, so no agent has the role
    ``malformed``. Their count is in ``sent_by_role`` and their expected dead-letter
    kinds in ``expected_invalid_kinds``.
    """

    seed: int
    roles: Mapping[str, Role]
    sent_by_role: Mapping[Role, int]
    distinct_claims_by_role: Mapping[Role, int]
    expected_invalid_kinds: Mapping[str, int]

    @property
    def expected_routed(self) -> int:
        """Records that should reach ``accepted``, ``quarantine`` or ``banned``."""
        return sum(n for role, n in self.sent_by_role.items() if role is not Role.MALFORMED)

    @property
    def expected_invalid(self) -> int:
        return sum(self.expected_invalid_kinds.values())

    @property
    def expected_total(self) -> int:
        return self.expected_routed + self.expected_invalid

    def agents(self, role: Role) -> list[str]:
        """Return the ids of the agents that play ``role``, in plan order."""
        return [agent_id for agent_id, played in self.roles.items() if played is role]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "seed": self.seed,
                "roles": {agent_id: role.value for agent_id, role in self.roles.items()},
                "sent_by_role": {role.value: n for role, n in self.sent_by_role.items()},
                "distinct_claims_by_role": {
                    role.value: n for role, n in self.distinct_claims_by_role.items()
                },
                "expected_invalid_kinds": dict(self.expected_invalid_kinds),
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        raw: dict[str, Any] = orjson.loads(data)
        return cls(
            seed=int(raw["seed"]),
            roles={str(agent): Role(role) for agent, role in raw["roles"].items()},
            sent_by_role={Role(role): int(n) for role, n in raw["sent_by_role"].items()},
            distinct_claims_by_role={
                Role(role): int(n) for role, n in raw["distinct_claims_by_role"].items()
            },
            expected_invalid_kinds={
                str(kind): int(n) for kind, n in raw["expected_invalid_kinds"].items()
            },
        )


@dataclass(frozen=True)
class SamplePlan:
    """The records to produce, in order, and the manifest that explains them."""

    records: Sequence[SampleRecord]
    manifest: Manifest


@dataclass
class _PlanContext:
    seed: int
    rng: random.Random
    created_at: str
    claims: Iterator[Claim]
    roles: dict[str, Role] = field(default_factory=dict)

    def new_agent(self, role: Role, index: int) -> Ed25519PrivateKey:
        key = _agent_key(self.seed, role, index)
        self.roles[public_key_hex(key)] = role
        return key

    def next_claim(self) -> Claim:
        return next(self.claims)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def confidence(self, bounds: tuple[float, float]) -> float:
        return round(self.rng.uniform(*bounds), 2)


def build_plan(
    seed: int,
    honest_agents: int = 8,
    per_agent: int = MAX_HONEST_PER_AGENT,
    *,
    now: datetime | None = None,
) -> SamplePlan:
    """Build the records of every role, interleaved, with their manifest.

    The result depends only on the arguments: ``now`` (default: the current time)
    becomes every record's ``created_at``. Raises :class:`ValueError` when
    ``honest_agents`` is outside 2..100 or ``per_agent`` outside 1..40. The bound of 40
    keeps every honest agent well below the default flood limit
    (``max_submissions_per_minute`` = 50), even when its records straddle two windows.
    """
    if not 2 <= honest_agents <= MAX_HONEST_AGENTS:
        raise ValueError(
            f"honest_agents={honest_agents} is out of range; use 2 to {MAX_HONEST_AGENTS} "
            "(the malformed records need two honest keys)"
        )
    if not 1 <= per_agent <= MAX_HONEST_PER_AGENT:
        raise ValueError(
            f"per_agent={per_agent} is out of range; use 1 to {MAX_HONEST_PER_AGENT} so "
            "that no honest agent comes near the default flood limit of 50 records a minute"
        )
    created = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(seed)
    claims = list(load_claims())
    rng.shuffle(claims)
    context = _PlanContext(
        seed=seed,
        rng=rng,
        created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        claims=iter(claims),
    )

    # 1. Build each agent's records in the order that agent sends them.
    honest_keys = [context.new_agent(Role.HONEST, i) for i in range(honest_agents)]
    per_agent_records = [_honest_records(context, key, per_agent) for key in honest_keys]
    per_agent_records.append(_low_quality_records(context))
    per_agent_records.append(_retry_loop_records(context))
    per_agent_records.append(_new_agent_records(context))
    per_agent_records.append(_malformed_records(context, honest_keys[0], honest_keys[1]))
    flood = _flood_records(context)

    # 2. Interleave the agents at random, then drop the flood in as one burst a third of
    # the way in, as a misconfigured agent would send it.
    records = _interleave(per_agent_records, rng)
    burst_at = len(records) // 3
    records[burst_at:burst_at] = flood

    sent = Counter(record.role for record in records)
    invalid_kinds = Counter(
        str(record.expected_invalid) for record in records if record.expected_invalid
    )
    manifest = Manifest(
        seed=seed,
        roles=context.roles,
        sent_by_role={role: sent[role] for role in Role},
        distinct_claims_by_role={
            Role.HONEST: honest_agents * per_agent,
            Role.FLOODER: FLOOD_RECORDS,
            Role.LOW_QUALITY: LOW_QUALITY_RECORDS,
            Role.RETRY_LOOP: RETRY_CLAIMS,
            Role.NEW_HIGH_CONFIDENCE: NEW_AGENT_RECORDS,
        },
        expected_invalid_kinds=dict(sorted(invalid_kinds.items())),
    )
    return SamplePlan(records=records, manifest=manifest)


def _agent_key(seed: int, role: Role, index: int) -> Ed25519PrivateKey:
    # Derived from the seed so a plan can be rebuilt. These keys sign sample traffic
    # only and must never sign real assertions.
    material = hashlib.sha256(f"stemedb-gate sample {seed} {role} {index}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(material)


def _assertion(
    context: _PlanContext,
    key: Ed25519PrivateKey,
    claim: Claim,
    confidence: float,
    sources: Sequence[str],
) -> dict[str, Any]:
    fields = {
        "schema_version": 1,
        "id": context.new_id(),
        "subject": claim.subject,
        "predicate": claim.predicate,
        "object": claim.object,
        "confidence": confidence,
        "sources": list(sources),
        "created_at": context.created_at,
    }
    return sign(fields, key)


def _record(role: Role, fields: Mapping[str, Any]) -> SampleRecord:
    return SampleRecord(key=str(fields["agent_id"]).encode(), value=orjson.dumps(fields), role=role)


def _sources(context: _PlanContext, claim: Claim) -> tuple[str, ...]:
    return claim.sources[: context.rng.randint(1, len(claim.sources))]


def _good_record(context: _PlanContext, key: Ed25519PrivateKey, role: Role) -> SampleRecord:
    claim = context.next_claim()
    fields = _assertion(
        context, key, claim, context.confidence(HONEST_CONFIDENCE), _sources(context, claim)
    )
    return _record(role, fields)


def _honest_records(
    context: _PlanContext, key: Ed25519PrivateKey, count: int
) -> list[SampleRecord]:
    return [_good_record(context, key, Role.HONEST) for _ in range(count)]


def _flood_records(context: _PlanContext) -> list[SampleRecord]:
    key = context.new_agent(Role.FLOODER, 0)
    return [_good_record(context, key, Role.FLOODER) for _ in range(FLOOD_RECORDS)]


def _low_quality_records(context: _PlanContext) -> list[SampleRecord]:
    """Build the output of a broken extraction pipeline from real claims.

    The records cycle through three defects, each of which a quality rule catches on
    its own: a junk or placeholder object, a junk or placeholder subject, and the
    subject repeated as the object.
    """
    key = context.new_agent(Role.LOW_QUALITY, 0)
    records: list[SampleRecord] = []
    seen: set[str] = set()
    while len(records) < LOW_QUALITY_RECORDS:
        claim = context.next_claim()
        junk = context.rng.choice(JUNK_VALUES)
        defect = len(records) % 3
        if defect == 0:
            broken = replace(claim, object=junk)
        elif defect == 1:
            broken = replace(claim, subject=junk)
        else:
            broken = replace(claim, object=claim.subject)

        # "???" and "-" lose all their text when punctuation is stripped, so two broken
        # claims can collide. A collision would add Duplicate to LowQuality.
        if broken.key() in seen:
            continue
        seen.add(broken.key())
        confidence = context.confidence(LOW_QUALITY_CONFIDENCE)
        fields = _assertion(context, key, broken, confidence, claim.sources[:1])
        records.append(_record(Role.LOW_QUALITY, fields))
    return records


def _retry_loop_records(context: _PlanContext) -> list[SampleRecord]:
    # An agent that never receives its acknowledgements resends the whole batch, byte for
    # byte, so every copy carries the id of the first.
    key = context.new_agent(Role.RETRY_LOOP, 0)
    batch = [_good_record(context, key, Role.RETRY_LOOP) for _ in range(RETRY_CLAIMS)]
    return batch * RETRY_SENDS


def _new_agent_records(context: _PlanContext) -> list[SampleRecord]:
    key = context.new_agent(Role.NEW_HIGH_CONFIDENCE, 0)
    records = []
    for _ in range(NEW_AGENT_RECORDS):
        confidence = context.confidence(HIGH_CONFIDENCE)
        fields = _assertion(context, key, context.next_claim(), confidence, ())
        records.append(_record(Role.NEW_HIGH_CONFIDENCE, fields))
    return records


def _malformed_records(
    context: _PlanContext, carrier: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> list[SampleRecord]:
    """Build one record of each way a record can fail before it is scored.

    All of them carry the key of the ``carrier`` agent, an honest agent whose record
    count must not change because of them.
    """
    carrier_key = public_key_hex(carrier).encode()

    def well_formed(key: Ed25519PrivateKey) -> dict[str, Any]:
        claim = context.next_claim()
        confidence = context.confidence(HONEST_CONFIDENCE)
        return _assertion(context, key, claim, confidence, claim.sources[:1])

    string_confidence = dict(well_formed(carrier), confidence="high")
    missing_subject = {k: v for k, v in well_formed(carrier).items() if k != "subject"}
    bad_signature = well_formed(carrier)
    flipped = "0" if bad_signature["signature"][0] != "0" else "1"
    bad_signature["signature"] = flipped + bad_signature["signature"][1:]

    cases: list[tuple[bytes | None, InvalidKind]] = [
        (b"not-json", InvalidKind.DECODE_ERROR),
        (orjson.dumps(sign(string_confidence, carrier)), InvalidKind.SCHEMA_ERROR),
        (orjson.dumps(sign(missing_subject, carrier)), InvalidKind.SCHEMA_ERROR),
        (orjson.dumps(bad_signature), InvalidKind.BAD_SIGNATURE),
        # Signed correctly by another agent, but sent under the carrier's key.
        (orjson.dumps(well_formed(other)), InvalidKind.KEY_MISMATCH),
        (None, InvalidKind.NULL_VALUE),
    ]
    return [
        SampleRecord(key=carrier_key, value=value, role=Role.MALFORMED, expected_invalid=kind)
        for value, kind in cases
    ]


def _interleave(
    streams: Sequence[Sequence[SampleRecord]], rng: random.Random
) -> list[SampleRecord]:
    """Merge ``streams`` in a uniformly random order that keeps each stream's own order."""
    positions = [0] * len(streams)
    remaining = [len(stream) for stream in streams]
    merged: list[SampleRecord] = []
    while any(remaining):
        # Picking a stream with weight equal to its remaining length makes every
        # merged order equally likely.
        (index,) = rng.choices(range(len(streams)), weights=remaining)
        merged.append(streams[index][positions[index]])
        positions[index] += 1
        remaining[index] -= 1
    return merged


async def play(
    settings: GateSettings,
    plan: SamplePlan,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Produce every record of ``plan`` to the ``assertions`` topic, in plan order.

    ``progress(delivered, total)`` is called after each acknowledged record. Raises
    :class:`SampleError` when the broker cannot be reached, the topic does not exist,
    or a record is not acknowledged.
    """
    topic = settings.kafka.topic(ASSERTIONS)
    bootstrap = settings.kafka.bootstrap_servers
    security = aiokafka_security_options(settings.kafka)
    await _require_topic(bootstrap, topic, security)

    total = len(plan.records)
    delivered = 0

    def on_delivered(future: asyncio.Future[Any]) -> None:
        nonlocal delivered
        if future.cancelled() or future.exception() is not None:
            return
        delivered += 1
        if progress is not None:
            progress(delivered, total)

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="stemedb-gate-sample",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **security,
    )
    logger.info("producing %d sample records to %s on %s", total, topic, bootstrap)
    try:
        try:
            await producer.start()
        except KafkaError as exc:
            raise SampleError(
                f"cannot connect to Kafka at {bootstrap}: {exc}; start the broker or set "
                "kafka.bootstrap_servers"
            ) from exc

        futures = []
        for record in plan.records:
            future = await producer.send(topic, value=record.value, key=record.key)
            future.add_done_callback(on_delivered)
            futures.append(future)
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise SampleError(
            f"producing to {topic!r} failed after {delivered} of {total} records: {exc}"
        ) from exc
    finally:
        await producer.stop()
    logger.info("produced %d sample records to %s", delivered, topic)


async def _require_topic(bootstrap: str, topic: str, security: Mapping[str, Any]) -> None:
    # Producing to a missing topic could auto-create it without LogAppendTime, and the
    # gate's windows would then run on the producer's clock.
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="stemedb-gate-sample", **security
    )
    try:
        await admin.start()
        topics = await admin.list_topics()
    except KafkaError as exc:
        raise SampleError(
            f"cannot list topics on Kafka at {bootstrap}: {exc}; start the broker or set "
            "kafka.bootstrap_servers"
        ) from exc
    finally:
        await admin.close()
    if topic not in topics:
        raise SampleError(
            f"topic {topic!r} does not exist on {bootstrap}; create the gate's topics "
            "with 'stemedb-gate topics setup' before playing sample traffic"
        )


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[int, int], None]:
    """Return a ``progress`` callback for :func:`play` that writes ``sent N/TOTAL``.

    On a terminal it rewrites one line in place. Elsewhere, such as a log file, it
    writes a line at each tenth of the total, so the output stays short.
    """
    interactive = stream.isatty()
    last_step = -1

    def report(done: int, total: int) -> None:
        nonlocal last_step
        if interactive:
            end = "\n" if done == total else ""
            stream.write(f"\rsent {done}/{total}{end}")
            stream.flush()
            return
        step = done * 10 // max(total, 1)
        if step != last_step:
            last_step = step
            stream.write(f"sent {done}/{total}\n")
            stream.flush()

    return report
