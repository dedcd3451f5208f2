"""Fault harness: crash, rebalance and broker-restart the gate, then audit what came out.

The harness runs its own single-node broker (``.cache/faults/kafka``, port 19192) so it
can restart it without disturbing anything else, and its own topics and consumer group.

1. Produce N signed records from many agents, each with a per-agent sequence in its
   id, plus a few malformed ones. Some agents flood, some send junk, some repeat ids.
2. While worker 1 consumes: kill -9 a worker K times at random points of progress and
   start it again, add a second worker and later stop it, restart the broker once.
3. When every input is consumed, read every output topic with ``read_committed`` and
   count the outputs of each input record (by source partition and offset): none is
   lost, more than one is duplicated.
4. Recompute every agent's state by running the decision functions over the input in
   partition order, with the broker timestamps of the records, and compare it with the
   worker's state as stored in the ``agents`` changelog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.signing import sign
from streams.decision import AgentState, SeenEntry, decide
from streams.decode import DecodeFailure, decode
from streams.errors import GateError
from streams.localbroker import LocalBroker
from streams.settings import SECTIONS, GateSettings, load_settings
from streams.topics import ACCEPTED, ASSERTIONS, BANNED, INVALID, QUARANTINE
from streams.topicsetup import admin_client, ensure_topics

logger = logging.getLogger(__name__)

FAULTS_ROOT = Path(".cache/faults")
BROKER_PORT = 19192
CONTROLLER_PORT = 19193
OUTPUT_TOPICS = (ACCEPTED, QUARANTINE, BANNED, INVALID)
READY_TIMEOUT_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 900.0
RECORDS_PER_HONEST_AGENT = 50


class FaultHarnessError(GateError, RuntimeError):
    """The harness could not run a step (broker, worker or topics)."""


@dataclass
class FaultReport:
    guarantee: str
    records: int
    agents: int
    kills: int = 0
    worker_restarts: int = 0
    unexpected_exits: int = 0
    rebalances_forced: int = 0
    broker_restarts: int = 0
    outputs: int = 0
    lost: int = 0
    duplicated: int = 0
    inputs_seen_twice_or_more: int = 0
    state_mismatches: int = 0
    agents_compared: int = 0
    mismatch_examples: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.state_mismatches == 0
            and (self.guarantee != "exactly_once" or self.duplicated == 0)
        )

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2)

    def format(self) -> str:
        lines = [
            f"fault report ({self.guarantee}): {'PASS' if self.passed else 'FAIL'}",
            f"  records produced      {self.records} from {self.agents} agents",
            f"  kill -9               {self.kills} (worker restarts {self.worker_restarts})",
            f"  unexpected exits      {self.unexpected_exits} (restarted)",
            f"  rebalances forced     {self.rebalances_forced} (second worker added and removed)",
            f"  broker restarts       {self.broker_restarts}",
            f"  output records        {self.outputs}",
            f"  lost                  {self.lost}",
            f"  duplicated            {self.duplicated} extra copies "
            f"({self.inputs_seen_twice_or_more} inputs)",
            f"  state mismatches      {self.state_mismatches} of {self.agents_compared} agents",
            f"  wall time             {self.wall_seconds:.0f} s",
        ]
        return "\n".join(lines)


# -- input ----------------------------------------------------------------------------


def _claim(
    prefix: str, label: str, agent: int, obj: str, repeat_every: int | None, seq: int
) -> dict[str, Any]:
    number = seq % repeat_every if repeat_every else seq
    return {
        "id": f"{prefix}{agent}-{number}",
        "subject": f"{label} {agent} {number}",
        "object": obj,
    }


def build_input(records: int, seed: int) -> tuple[list[tuple[bytes | None, bytes | None]], int]:
    """Return the input records in production order and the number of agents.

    About 95% of the records come from honest agents sending 50 distinct claims each,
    which stays at the default flood limit. The rest come from flooders (200 records
    each), junk senders (40 records of placeholder text) and retry loops (10 ids sent
    4 times each), plus malformed records: about one in 1,000.
    """
    rng = random.Random(seed)
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    streams: list[list[tuple[bytes | None, bytes | None]]] = []
    agents = 0

    def stream(
        count: int, make: Callable[[int], dict[str, Any]]
    ) -> list[tuple[bytes | None, bytes | None]]:
        nonlocal agents
        key = Ed25519PrivateKey.from_private_bytes(rng.getrandbits(256).to_bytes(32, "big"))
        agents += 1
        out: list[tuple[bytes | None, bytes | None]] = []
        for seq in range(count):
            fields = sign(
                {
                    "schema_version": 1,
                    "confidence": 0.7,
                    "sources": ["https://www.geonames.org/2267057"],
                    "created_at": created_at,
                    "predicate": "located_in",
                    **make(seq),
                },
                key,
            )
            out.append((fields["agent_id"].encode(), orjson.dumps(fields)))
        return out

    special = max(records // 20, 1)
    flood_agents = max(special // 2 // 200, 1)
    junk_agents = max(special // 4 // 40, 1)
    retry_agents = max(special // 4 // 40, 1)
    for i in range(flood_agents):
        streams.append(stream(200, partial(_claim, "f", "Flood", i, "Portugal", None)))
    for i in range(junk_agents):
        streams.append(stream(40, partial(_claim, "j", "Junk", i, "n/a", None)))
    for i in range(retry_agents):
        streams.append(stream(40, partial(_claim, "r", "Retry", i, "Spain", 10)))
    remaining = records - sum(len(s) for s in streams)
    honest_agents = max(remaining // RECORDS_PER_HONEST_AGENT, 1)
    for i in range(honest_agents):
        count = min(RECORDS_PER_HONEST_AGENT, remaining - i * RECORDS_PER_HONEST_AGENT)
        if count <= 0:
            break
        streams.append(stream(count, partial(_claim, "h", "Town", i, "Portugal", None)))

    # Interleave agents at random, keeping each agent's own order.
    ordered: list[tuple[bytes | None, bytes | None]] = []
    cursors = [0] * len(streams)
    live = list(range(len(streams)))
    while live:
        pick = rng.randrange(len(live))
        index = live[pick]
        ordered.append(streams[index][cursors[index]])
        cursors[index] += 1
        if cursors[index] == len(streams[index]):
            live[pick] = live[-1]
            live.pop()
    for position in sorted(rng.sample(range(len(ordered)), max(records // 1000, 1))):
        key = ordered[position][0]
        ordered.insert(position, (key, b"not-json"))
    return ordered, agents


# -- processes ------------------------------------------------------------------------


def _settings_env(settings: GateSettings) -> dict[str, str]:
    env: dict[str, str] = {}
    for section in SECTIONS:
        for key, value in getattr(settings, section).model_dump(mode="json").items():
            if value is None:  # unset optional keys stay unset
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[f"STEMEDB_{section.upper()}__{key.upper()}"] = text
    return env


class Worker:
    def __init__(self, name: str, settings: GateSettings, folder: Path) -> None:
        self.name = name
        self.settings = settings
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **_settings_env(self.settings)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


# -- checks ---------------------------------------------------------------------------


async def _committed_total(settings: GateSettings) -> int:
    topic = settings.kafka.topic(ASSERTIONS)
    async with admin_client(settings.kafka.bootstrap_servers) as client:
        offsets = await client.list_consumer_group_offsets(settings.kafka.app_id)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def _read_all(
    bootstrap: str, topics: list[str], *, with_timestamps: bool = False
) -> list[tuple[str, int, int, int, bytes | None, bytes | None]]:
    """Read every record of ``topics`` up to their current end, committed records only."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        async with admin_client(bootstrap) as client:
            described = await client.describe_topics(topics)
        partitions = sorted(
            TopicPartition(str(topic["topic"]), int(partition["partition"]))
            for topic in described
            for partition in topic["partitions"]
        )
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out = []
        done = {tp for tp in partitions if ends[tp] == 0}
        while len(done) < len(partitions):
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, messages in batches.items():
                for m in messages:
                    out.append((tp.topic, tp.partition, m.offset, m.timestamp, m.key, m.value))
            for tp in partitions:
                if tp not in done and await consumer.position(tp) >= ends[tp]:
                    done.add(tp)
        return out
    finally:
        await consumer.stop()


def recompute_states(
    settings: GateSettings, inputs: list[tuple[str, int, int, int, bytes | None, bytes | None]]
) -> dict[str, dict[str, Any]]:
    """Run the decision functions over the input, in offset order within each partition."""
    states: dict[str, AgentState] = {}
    seen: dict[str, SeenEntry] = {}
    cd = settings.content_defense
    cb = settings.circuit_breaker
    for _topic, _partition, offset, timestamp_ms, key, value in sorted(
        inputs, key=lambda r: (r[1], r[2])
    ):
        decoded = decode(
            key,
            value,
            max_bytes=settings.kafka.max_record_bytes,
            require_signatures=cd.require_signatures,
        )
        if isinstance(decoded, DecodeFailure):
            continue
        agent_id = decoded.assertion.agent_id
        state = states.get(agent_id, AgentState())
        prefix = f"{agent_id}/"

        def lookup(local: str, prefix: str = prefix) -> SeenEntry | None:
            return seen.get(prefix + local)

        decision = decide(
            decoded.assertion,
            state,
            lookup,
            timestamp_ms,
            offset,
            cd,
            cb,
        )
        states[agent_id] = decision.state
        for local, entry in decision.seen_writes.items():
            seen[f"{agent_id}/{local}"] = entry
    return {agent: state.to_dict() for agent, state in states.items()}


def counted_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a stored agent state without the verdicts kept for records fetched again.

    Which verdicts a worker still keeps depends on when it committed, so only the
    counts, the breaker and the other fields are compared.
    """
    if state is None:
        return None
    return {key: value for key, value in state.items() if key not in ("recent", "recent_from")}


async def _worker_states(settings: GateSettings) -> dict[str, dict[str, Any]]:
    changelog = f"{settings.kafka.app_id}-agents-changelog"
    records = await _read_all(settings.kafka.bootstrap_servers, [changelog])
    states: dict[str, dict[str, Any]] = {}
    for _t, _p, _o, _ts, key, value in sorted(records, key=lambda r: (r[1], r[2])):
        agent = json.loads(key or b'""')  # faust writes table keys as JSON
        if value is None:
            states.pop(agent, None)
        else:
            states[agent] = json.loads(value)
    return states


# -- the run --------------------------------------------------------------------------


async def run_faults(
    records: int,
    kills: int,
    guarantee: str,
    seed: int,
    progress: Callable[[str], None],
) -> FaultReport:
    started = time.monotonic()
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    folder = FAULTS_ROOT / run
    folder.mkdir(parents=True, exist_ok=True)
    report = FaultReport(guarantee=guarantee, records=0, agents=0)

    broker = LocalBroker(FAULTS_ROOT / "kafka", port=BROKER_PORT, controller_port=CONTROLLER_PORT)
    # LocalBroker's methods block and run their own event loop, so they get a thread.
    await asyncio.to_thread(broker.ensure_installed)
    await asyncio.to_thread(broker.start)
    settings = load_settings(
        None,
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "topic_prefix": f"faults-{run}.",
            "app_id": f"faults-{run}",
            "partitions": 6,
            "processing_guarantee": guarantee,
            "session_timeout_seconds": 10,
        },
        # Windows keep their counts for a week, so the sweep changes nothing during the
        # run and the recomputation from the input computes the same state.
        circuit_breaker={"window_retention_seconds": 7 * 86400},
        # A stalled partition stops its worker within seconds, and the harness restarts it.
        worker={
            "data_dir": str(folder / "w1"),
            "web_port": _free_port(),
            "lag_poll_interval_seconds": 2,
            "stall_timeout_seconds": 20,
        },
    )
    second = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(
                update={"data_dir": folder / "w2", "web_port": _free_port()}
            )
        }
    )
    await ensure_topics(settings)
    workers = [Worker("w1", settings, folder)]
    try:
        # 1. Input.
        progress(f"building {records} records")
        inputs, report.agents = build_input(records, seed)
        report.records = len(inputs)
        workers[0].start()
        progress("producing")
        await _produce(settings, inputs)

        # 2. Faults at random points of progress.
        total = len(inputs)
        plan = sorted(
            [(rng.uniform(0.05, 0.9), "kill") for _ in range(kills)]
            + [(rng.uniform(0.1, 0.4), "add_worker"), (rng.uniform(0.5, 0.7), "remove_worker")]
            + [(rng.uniform(0.3, 0.8), "restart_broker")]
        )
        for fraction, action in plan:
            await _wait_progress(settings, report, workers, int(total * fraction), progress)
            progress(f"{action} at {fraction:.0%}")
            report.events.append(f"{action} at {fraction:.0%}")
            if action == "kill":
                victim = rng.choice([w for w in workers if w.alive()] or workers)
                victim.kill()
                report.kills += 1
                victim.start()
                report.worker_restarts += 1
            elif action == "add_worker":
                extra = Worker("w2", second, folder)
                extra.start()
                workers.append(extra)
                report.rebalances_forced += 1
            elif action == "remove_worker" and len(workers) > 1:
                workers.pop().stop()
                report.rebalances_forced += 1
            elif action == "restart_broker":
                await asyncio.to_thread(broker.stop)
                await asyncio.to_thread(broker.start)
                report.broker_restarts += 1

        # 3. Drain.
        await _wait_progress(
            settings, report, workers, total, progress, timeout_seconds=DRAIN_TIMEOUT_SECONDS
        )
        for worker in workers:
            worker.stop()

        # 4. Audit outputs and state.
        progress("auditing outputs")
        outputs = await _read_all(
            settings.kafka.bootstrap_servers, [settings.kafka.topic(t) for t in OUTPUT_TOPICS]
        )
        report.outputs = len(outputs)
        copies: Counter[tuple[int, int]] = Counter()
        for topic, _p, _o, _ts, _key, value in outputs:
            body = orjson.loads(value or b"{}")
            if topic.endswith(INVALID):
                copies[(body["source_partition"], body["source_offset"])] += 1
            else:
                verdict = body["verdict"]
                copies[(verdict["source_partition"], verdict["source_offset"])] += 1
        sources = await _read_all(
            settings.kafka.bootstrap_servers, [settings.kafka.topic(ASSERTIONS)]
        )
        input_ids = {(p, o) for _t, p, o, _ts, _k, _v in sources}
        report.lost = sum(1 for source in input_ids if copies[source] == 0)
        report.duplicated = sum(n - 1 for n in copies.values() if n > 1)
        report.inputs_seen_twice_or_more = sum(1 for n in copies.values() if n > 1)

        progress("recomputing state from the input")
        expected = recompute_states(settings, sources)
        actual = await _worker_states(settings)
        report.agents_compared = len(expected)
        for agent, state in expected.items():
            if counted_state(actual.get(agent)) != counted_state(state):
                report.state_mismatches += 1
                if len(report.mismatch_examples) < 5:
                    report.mismatch_examples.append(
                        {"agent_id": agent, "expected": state, "actual": actual.get(agent)}
                    )
    finally:
        for worker in workers:
            worker.kill()
        await asyncio.to_thread(broker.stop)
        report.wall_seconds = time.monotonic() - started
    shutil.rmtree(folder / "w1", ignore_errors=True)
    shutil.rmtree(folder / "w2", ignore_errors=True)
    return report


async def _produce(settings: GateSettings, inputs: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        topic = settings.kafka.topic(ASSERTIONS)
        pending = []
        for key, value in inputs:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _wait_progress(
    settings: GateSettings,
    report: FaultReport,
    workers: list[Worker],
    target: int,
    progress: Callable[[str], None],
    timeout_seconds: float = 600.0,
) -> None:
    """Wait until the group committed ``target`` records; restart a worker that died."""
    deadline = time.monotonic() + timeout_seconds
    last_report = 0.0
    while time.monotonic() < deadline:
        try:
            committed = await _committed_total(settings)
        except Exception as exc:  # the broker may be restarting
            logger.info("reading committed offsets failed, retrying: %r", exc)
            committed = -1
        if committed >= target:
            return
        for worker in workers:
            if not worker.alive():
                logger.warning(
                    "worker %s exited; starting it again (log %s)", worker.name, worker.log_path
                )
                report.unexpected_exits += 1
                worker.start()
        if time.monotonic() - last_report > 5:
            progress(f"committed {max(committed, 0)}/{target}")
            last_report = time.monotonic()
        await asyncio.sleep(0.5)
    raise FaultHarnessError(
        f"group committed fewer than {target} records in {timeout_seconds:.0f}s"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
