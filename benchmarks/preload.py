"""Agent keys and table state written straight to the gate's changelog topics.

A scaling point needs a worker that keeps the state of many agents, but routing enough
records through the gate to build that state would take hours at 1,000,000 agents. So
this module writes the state records to the ``agents`` and ``seen`` changelogs before
the worker starts, and the worker restores its tables from them as after a lost RocksDB
folder.

The records are written as the worker writes them (checked against a running worker
with faust-streaming 0.15.3):

- the key is the table key as a JSON string: ``"<agent_id>"`` in ``agents``,
  ``"<agent_id>/id:<id>"`` and ``"<agent_id>/claim:<hash>"`` in ``seen``;
- the value is the compact JSON of ``AgentState.to_dict()`` or ``SeenEntry.to_dict()``;
- the partition is the one the default Kafka partitioner picks for the agent id's
  bytes (murmur2), which is the partition of the agent's ``assertions`` records and so
  the changelog partition of every write the worker makes for that agent.

Agent keys are derived from seeds, so an agent's signing key can be rebuilt from its
number without keeping a million keys in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign_seed_keypair

from streams.decision import AgentState, SeenEntry, claim_key, id_key

# Review history of every preloaded agent. An agent with no history, empty windows and
# a CLOSED breaker is idle, and the worker's periodic sweep would ask to delete it, so
# the preloaded state would shrink while the run measures it. Four reviews stay below
# the default trust_min_reviews (5), so the agents are not trusted.
PRELOADED_APPROVALS = 3
PRELOADED_REJECTIONS = 1
# Subject, predicate and object of earlier claims in the look-back index; routed
# duplicates repeat them.
EARLIER_SUBJECT = "Earlier town {agent} {number}"
PREDICATE = "located_in"
OBJECT = "Portugal"
# Age in milliseconds of the newest preloaded seen entry; older ones are one second apart.
NEWEST_ENTRY_AGE_MS = 3_600_000

BATCH_BYTES = 1024 * 1024
IN_FLIGHT_BATCHES = 32

StateRecord = tuple[int, bytes, bytes]
"""A changelog record: partition, key bytes, value bytes."""


def changelog_topic(app_id: str, table: str) -> str:
    """Return the name faust gives the changelog topic of ``table``."""
    return f"{app_id}-{table}-changelog"


def agent_seed(run_seed: int, number: int) -> bytes:
    """Return the 32-byte Ed25519 seed of agent ``number``."""
    return hashlib.blake2b(f"scaling:{run_seed}:{number}".encode(), digest_size=32).digest()


def agent_id(run_seed: int, number: int) -> str:
    """Return the agent id (public key hex) of agent ``number``."""
    # libsodium derived a public key in 18 us here, cryptography in 37 us, which adds up
    # over a million agents. Both follow RFC 8032, so the keys are the same.
    public, _ = crypto_sign_seed_keypair(agent_seed(run_seed, number))
    return bytes(public).hex()


def agent_signing_key(run_seed: int, number: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(agent_seed(run_seed, number))


def partition_of(agent: str, partitions: int) -> int:
    """Return the partition the default Kafka partitioner picks for key ``agent``."""
    return int(murmur2(agent.encode()) & 0x7FFFFFFF) % partitions


def preloaded_state() -> AgentState:
    """Return the state written for every preloaded agent (see PRELOADED_APPROVALS)."""
    return AgentState(approvals=PRELOADED_APPROVALS, rejections=PRELOADED_REJECTIONS)


def earlier_claim(agent_number: int, number: int) -> tuple[str, str, str]:
    """Return the subject, predicate and object of an agent's earlier claim ``number``."""
    return EARLIER_SUBJECT.format(agent=agent_number, number=number), PREDICATE, OBJECT


def agent_records(agent_ids: Iterable[str], partitions: int) -> Iterator[StateRecord]:
    """Yield one ``agents`` changelog record per agent id."""
    value = orjson.dumps(preloaded_state().to_dict())
    for agent in agent_ids:
        yield partition_of(agent, partitions), orjson.dumps(agent), value


def seen_records(
    agent_ids: list[str], entries: int, now_ms: int, partitions: int
) -> Iterator[StateRecord]:
    """Yield ``entries`` ``seen`` changelog records spread evenly over ``agent_ids``.

    Each earlier record of an agent gives two entries, as in the worker: one under its
    id (``old-<number>``) and one under its claim (:func:`earlier_claim`). The entries
    are dated within the look-back and come from before this run's input topic, so
    their offset is -1.
    """
    records_in_index = entries // 2
    per_agent, extra = divmod(records_in_index, len(agent_ids))
    values: dict[int, bytes] = {}
    for agent_number, agent in enumerate(agent_ids):
        partition = partition_of(agent, partitions)
        for number in range(per_agent + (1 if agent_number < extra else 0)):
            value = values.get(number)
            if value is None:
                entry = SeenEntry(
                    at_ms=now_ms - NEWEST_ENTRY_AGE_MS - number * 1000,
                    offset=-1,
                    route="accepted",
                    quality_score=1.0,
                )
                value = values[number] = orjson.dumps(entry.to_dict())
            claim = claim_key(*earlier_claim(agent_number, number))
            yield partition, orjson.dumps(f"{agent}/{id_key(f'old-{number}')}"), value
            yield partition, orjson.dumps(f"{agent}/{claim}"), value
    if entries % 2 and agent_ids:
        # An odd count: one more id entry, so the total is exact.
        agent = agent_ids[0]
        entry = SeenEntry(at_ms=now_ms - NEWEST_ENTRY_AGE_MS, offset=-1, route="accepted")
        yield (
            partition_of(agent, partitions),
            orjson.dumps(f"{agent}/{id_key('old-odd')}"),
            orjson.dumps(entry.to_dict()),
        )


@dataclass(frozen=True)
class PreloadResult:
    records: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def write_records(
    bootstrap_servers: str, topic: str, records: Iterable[StateRecord], partitions: int
) -> PreloadResult:
    """Write ``records`` to ``topic`` in full batches, one open batch per partition.

    Batches go out through ``send_batch`` with no compression and ``acks=1``, at most
    IN_FLIGHT_BATCHES at a time, so no delivery future is created per record. Raises
    the producer's KafkaError when a batch is not written.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks=1,
        linger_ms=50,
        max_batch_size=BATCH_BYTES,
        compression_type=None,
    )
    started = time.perf_counter()
    count = 0
    async with producer:
        open_batches = [producer.create_batch() for _ in range(partitions)]
        in_flight: list[asyncio.Future[object]] = []

        async def flush(partition: int) -> None:
            batch = open_batches[partition]
            batch.close()
            in_flight.append(await producer.send_batch(batch, topic, partition=partition))
            open_batches[partition] = producer.create_batch()
            if len(in_flight) >= IN_FLIGHT_BATCHES:
                await asyncio.gather(*in_flight)
                in_flight.clear()

        for partition, key, value in records:
            if open_batches[partition].append(key=key, value=value, timestamp=None) is None:
                await flush(partition)
                open_batches[partition].append(key=key, value=value, timestamp=None)
            count += 1
        for partition in range(partitions):
            if open_batches[partition].record_count():
                await flush(partition)
        await asyncio.gather(*in_flight)
    return PreloadResult(count, time.perf_counter() - started)
