"""Throughput benchmark of the gate worker against a plain aiokafka passthrough.

Run with a Kafka broker at ``--bootstrap-servers``, or with none: the local broker is
then started with ``stemedb-gate broker start`` and stopped again at the end::

    python -m benchmarks.gate_bench --records 50000 --out gate-bench.json

What it does, on topics with a fresh uuid prefix that it deletes at the end:

1. Creates the gate's topics, and switches the four output topics (accepted,
   quarantine, banned, invalid) to ``LogAppendTime`` so that both ends of a latency
   are broker timestamps.
2. Builds about ``--records`` signed assertions with the fault harness's mix
   (:func:`streams.faults.build_input`): mostly honest agents with 50 claims each,
   plus flooders, junk senders, retry loops and about one malformed record in 1,000.
   It produces them all to ``assertions`` before any consumer runs, so the load is a
   backlog.
3. Starts ``stemedb-gate worker`` as a child process and waits until the worker's
   group has committed every input offset. Before stopping the worker it reads its CPU
   time and peak resident memory (``VmHWM``) from ``/proc``.
4. Reads every output, pairs it with its input by the source partition and offset in
   the verdict, and computes latency as the output's broker timestamp minus the
   input's.
5. Does the same with ``benchmarks.passthrough``: the same records produced to a
   copy topic just before it starts, copied unchanged by a plain aiokafka consumer
   and producer with the gate's batching and commit settings.

Throughput is the number of inputs divided by the seconds from the child's start to
the last output's broker timestamp, so it includes the process start. The drain rate
leaves the start out: inputs divided by the seconds between the first and last output.
Because the whole load waits in the topic, a record's latency is mostly the time it
queued behind earlier records and behind the process start, not the time to decide it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from benchmarks.admin_api_bench import _free_port, _settings_env, summarize
from benchmarks.passthrough import SOURCE_HEADER
from streams.errors import BrokerError
from streams.faults import build_input
from streams.settings import GateSettings, load_settings
from streams.topics import ACCEPTED, ASSERTIONS, BANNED, INVALID, QUARANTINE, topic_specs
from streams.topicsetup import admin_client, ensure_topics, wait_for_broker

logger = logging.getLogger(__name__)

OUTPUT_TOPICS = (ACCEPTED, QUARANTINE, BANNED, INVALID)
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
DRAIN_TIMEOUT_SECONDS = 1800.0
POLL_INTERVAL_SECONDS = 0.5
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}

Record = tuple[bytes | None, bytes | None]


@dataclass(frozen=True)
class Options:
    bootstrap_servers: str
    records: int
    guarantee: str
    seed: int
    out: Path | None
    workdir: Path | None = None


class MeasuredProcess:
    """A Python module run as a child process, stopped by its PID, with /proc figures."""

    def __init__(self, module_args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.module_args = module_args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at_ms = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.started_at_ms = int(time.time() * 1000)
            self.process = subprocess.Popen(
                [sys.executable, "-m", *self.module_args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        """Raise RuntimeError when the child has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"'{' '.join(self.module_args)}' exited with {self.process.returncode}; "
                f"see {self.log_path}"
            )

    def usage(self) -> dict[str, float]:
        """Return CPU seconds (user and system) and peak resident memory in MiB."""
        if self.process is None:
            raise RuntimeError("the process was not started")
        pid = self.process.pid
        # Fields 14 and 15 of /proc/PID/stat are utime and stime in clock ticks. The
        # command name in field 2 may contain spaces, so the split starts after its ")".
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(stat[11]) + int(stat[12])
        peak_kib = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kib = int(line.split()[1])
        return {
            "cpu_seconds": round(ticks / os.sysconf("SC_CLK_TCK"), 2),
            "peak_rss_mib": round(peak_kib / 1024, 1),
        }

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


# -- topics and records ---------------------------------------------------------------


async def prepare_gate_topics(settings: GateSettings) -> None:
    """Create the gate's topics and switch its four output topics to LogAppendTime."""
    await ensure_topics(settings)
    kafka = settings.kafka
    async with admin_client(kafka.bootstrap_servers) as client:
        await client.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, kafka.topic(name), LOG_APPEND_TIME)
                for name in OUTPUT_TOPICS
            ]
        )


async def prepare_topics(settings: GateSettings, passthrough: tuple[str, str]) -> None:
    """Create the gate's and the passthrough's topics, every output on LogAppendTime."""
    await prepare_gate_topics(settings)
    kafka = settings.kafka
    async with admin_client(kafka.bootstrap_servers) as client:
        await client.create_topics(
            [
                NewTopic(
                    name,
                    kafka.partitions,
                    kafka.replication_factor,
                    topic_configs=dict(LOG_APPEND_TIME),
                )
                for name in passthrough
            ]
        )


async def produce(bootstrap_servers: str, topic: str, records: list[Record]) -> float:
    """Produce ``records`` in order to ``topic``; return the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    started = time.perf_counter()
    async with producer:
        deliveries = []
        for key, value in records:
            deliveries.append(await producer.send(topic, key=key, value=value))
            if len(deliveries) >= 10_000:
                await asyncio.gather(*deliveries)
                deliveries.clear()
        await asyncio.gather(*deliveries)
    return time.perf_counter() - started


async def read_topics(bootstrap_servers: str, topics: list[str]) -> list[Any]:
    """Return every committed record of ``topics`` up to their current end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    async with admin_client(bootstrap_servers) as client:
        described = await client.describe_topics(topics)
    partitions = sorted(
        TopicPartition(str(topic["topic"]), int(partition["partition"]))
        for topic in described
        for partition in topic["partitions"]
    )
    async with consumer:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Any] = []
        done = {tp for tp in partitions if ends[tp] == 0}
        while len(done) < len(partitions):
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                out.extend(messages)
            for tp in partitions:
                if tp not in done and await consumer.position(tp) >= ends[tp]:
                    done.add(tp)
        return out


async def committed_total(client: Any, group: str, topic: str) -> int:
    """Return the sum of ``group``'s committed offsets over the partitions of ``topic``."""
    offsets = await client.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def wait_committed(
    bootstrap_servers: str, group: str, topic: str, total: int, child: MeasuredProcess
) -> None:
    """Wait until ``group`` has committed ``total`` offsets of ``topic`` in all."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    async with admin_client(bootstrap_servers) as client:
        while time.monotonic() < deadline:
            child.check_alive()
            if await committed_total(client, group, topic) >= total:
                return
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
    raise RuntimeError(
        f"group {group!r} did not commit all {total} offsets of {topic!r} within "
        f"{DRAIN_TIMEOUT_SECONDS:g} s; see {child.log_path}"
    )


# -- figures ---------------------------------------------------------------------------


def gate_source(message: Any) -> tuple[int, int]:
    """Return the input partition and offset named in a gate output record."""
    body = orjson.loads(message.value)
    if "verdict" in body:
        body = body["verdict"]
    return int(body["source_partition"]), int(body["source_offset"])


def passthrough_source(message: Any) -> tuple[int, int]:
    """Return the input partition and offset named in a passthrough output's header."""
    for name, value in message.headers:
        if name == SOURCE_HEADER:
            partition, _, offset = value.decode().partition(":")
            return int(partition), int(offset)
    raise RuntimeError(f"output at offset {message.offset} has no {SOURCE_HEADER!r} header")


def first_output_ms(outputs: list[Any], source_of: Any) -> dict[tuple[int, int], int]:
    """Map each input (partition, offset) to the broker timestamp of its first output."""
    out_ms: dict[tuple[int, int], int] = {}
    for message in outputs:
        source = source_of(message)
        out_ms[source] = min(message.timestamp, out_ms.get(source, message.timestamp))
    return out_ms


def figures(
    inputs: list[Any],
    outputs: list[Any],
    source_of: Any,
    started_at_ms: int,
) -> dict[str, Any]:
    """Pair each input with its first output and return wall time, rates and latency."""
    in_ms = {(m.partition, m.offset): m.timestamp for m in inputs}
    out_ms = first_output_ms(outputs, source_of)
    missing = len(in_ms.keys() - out_ms.keys())
    if missing:
        raise RuntimeError(f"{missing} of {len(in_ms)} inputs have no output")
    first_ms = min(out_ms.values())
    last_ms = max(out_ms.values())
    total_seconds = (last_ms - started_at_ms) / 1000
    drain_seconds = max(last_ms - first_ms, 1) / 1000
    return {
        "inputs": len(in_ms),
        "outputs": len(outputs),
        "duplicated_outputs": len(outputs) - len(out_ms),
        "seconds_from_start_to_last_output": round(total_seconds, 3),
        "seconds_from_first_to_last_output": round(drain_seconds, 3),
        "records_per_second": round(len(in_ms) / total_seconds, 1),
        "drain_records_per_second": round(len(in_ms) / drain_seconds, 1),
        "latency": summarize([(out_ms[key] - in_ms[key]) / 1000 for key in in_ms]),
    }


# -- the run ---------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
    }


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


async def run_gate(settings: GateSettings, records: list[Record], workdir: Path) -> dict[str, Any]:
    """Preload ``records``, run one gate worker until it committed all, and measure it."""
    kafka = settings.kafka
    produce_seconds = await produce(kafka.bootstrap_servers, kafka.topic(ASSERTIONS), records)
    worker = MeasuredProcess(
        ["streams.cli", "worker"], _settings_env(settings), workdir / "worker.log"
    )
    worker.start()
    try:
        await wait_committed(
            kafka.bootstrap_servers, kafka.app_id, kafka.topic(ASSERTIONS), len(records), worker
        )
        usage = worker.usage()
    finally:
        worker.stop()

    inputs = await read_topics(kafka.bootstrap_servers, [kafka.topic(ASSERTIONS)])
    outputs = await read_topics(
        kafka.bootstrap_servers, [kafka.topic(name) for name in OUTPUT_TOPICS]
    )
    routes = Counter(message.topic.removeprefix(kafka.topic_prefix) for message in outputs)
    return {
        "produce_seconds": round(produce_seconds, 3),
        **figures(inputs, outputs, gate_source, worker.started_at_ms),
        **usage,
        "outputs_by_topic": dict(sorted(routes.items())),
    }


async def run_passthrough(
    settings: GateSettings, records: list[Record], topics: tuple[str, str], workdir: Path
) -> dict[str, Any]:
    """Preload ``records`` to the copy topic, run the passthrough, and measure it."""
    bootstrap = settings.kafka.bootstrap_servers
    input_topic, output_topic = topics
    group = f"{settings.kafka.app_id}-passthrough"
    produce_seconds = await produce(bootstrap, input_topic, records)
    child = MeasuredProcess(
        [
            "benchmarks.passthrough",
            "--bootstrap-servers",
            bootstrap,
            "--input",
            input_topic,
            "--output",
            output_topic,
            "--group",
            group,
        ],
        {},
        workdir / "passthrough.log",
    )
    child.start()
    try:
        await wait_committed(bootstrap, group, input_topic, len(records), child)
        usage = child.usage()
    finally:
        child.stop()

    inputs = await read_topics(bootstrap, [input_topic])
    outputs = await read_topics(bootstrap, [output_topic])
    return {
        "produce_seconds": round(produce_seconds, 3),
        **figures(inputs, outputs, passthrough_source, child.started_at_ms),
        **usage,
    }


def bench_settings(workdir: Path, bootstrap_servers: str, name: str, **kafka: Any) -> GateSettings:
    """Return settings for one run: topics and group named ``name`` plus a fresh uuid.

    An empty config file in ``workdir`` keeps /etc/stemedb/config.toml out of the run.
    """
    config = workdir / "config.toml"
    config.write_text("")
    unique = uuid.uuid4().hex[:12]
    return load_settings(
        config,
        kafka={
            "bootstrap_servers": bootstrap_servers,
            "topic_prefix": f"{name}-{unique}.",
            "app_id": f"{name}-{unique}",
            **kafka,
        },
        worker={"data_dir": workdir / "worker", "web_port": _free_port()},
    )


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark and return its report; every child and topic is cleaned up."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="gate-bench-"))
    settings = bench_settings(
        workdir, options.bootstrap_servers, "gate-bench", processing_guarantee=options.guarantee
    )
    passthrough_topics = (
        settings.kafka.topic("passthrough-in"),
        settings.kafka.topic("passthrough-out"),
    )
    report: dict[str, Any] = {
        "machine": _machine(),
        "load_average_at_start": _load_average(),
        "started_at": datetime.now(UTC).isoformat(),
    }

    generate_started = time.perf_counter()
    records, agents = build_input(options.records, options.seed)
    report["parameters"] = {
        "records_requested": options.records,
        "records": len(records),
        "agents": agents,
        "seed": options.seed,
        "processing_guarantee": options.guarantee,
        "partitions": settings.kafka.partitions,
    }
    report["generate_seconds"] = round(time.perf_counter() - generate_started, 3)

    try:
        await prepare_topics(settings, passthrough_topics)
        report["gate"] = await run_gate(settings, records, workdir)
        report["load_average_after_gate"] = _load_average()
        report["passthrough"] = await run_passthrough(
            settings, records, passthrough_topics, workdir
        )
    finally:
        await _delete_topics(settings, passthrough_topics)
    report["load_average_at_end"] = _load_average()
    gate, baseline = report["gate"], report["passthrough"]
    report["ratio_gate_to_passthrough"] = {
        "records_per_second": round(gate["records_per_second"] / baseline["records_per_second"], 3),
        "drain_records_per_second": round(
            gate["drain_records_per_second"] / baseline["drain_records_per_second"], 3
        ),
        "cpu_seconds": round(gate["cpu_seconds"] / max(baseline["cpu_seconds"], 0.01), 3),
    }
    report["logs"] = str(workdir)
    return report


async def _delete_topics(settings: GateSettings, extra: tuple[str, ...] = ()) -> None:
    # A failure here is logged, not raised, so that it does not hide the error of a
    # failed run (a broker that went away, for example).
    names = {spec.name for spec in topic_specs(settings)} | set(extra)
    try:
        async with admin_client(settings.kafka.bootstrap_servers) as client:
            doomed = [
                name
                for name in await client.list_topics()
                if name in names or name.startswith(f"{settings.kafka.app_id}-")
            ]
            if doomed:
                await client.delete_topics(doomed)
    except KafkaError as exc:
        logger.error(
            "failed to delete the topics with prefix %r on %s: %s; delete them by hand",
            settings.kafka.topic_prefix,
            settings.kafka.bootstrap_servers,
            exc,
        )


def format_table(report: dict[str, Any]) -> str:
    params = report["parameters"]
    lines = [
        f"{params['records']} records from {params['agents']} agents, "
        f"{params['processing_guarantee']}, {params['partitions']} partitions; load average "
        f"{report['load_average_at_start']} at start, {report['load_average_at_end']} at end",
        f"{'':<12} {'total s':>8} {'rec/s':>9} {'drain rec/s':>12} {'p50 ms':>9} "
        f"{'p99 ms':>9} {'CPU s':>7} {'peak MiB':>9}",
    ]
    for name in ("gate", "passthrough"):
        row = report[name]
        lines.append(
            f"{name:<12} {row['seconds_from_start_to_last_output']:>8.2f} "
            f"{row['records_per_second']:>9.0f} {row['drain_records_per_second']:>12.0f} "
            f"{row['latency']['p50_ms']:>9.0f} {row['latency']['p99_ms']:>9.0f} "
            f"{row['cpu_seconds']:>7.1f} {row['peak_rss_mib']:>9.1f}"
        )
    ratio = report["ratio_gate_to_passthrough"]
    lines.append(
        f"gate/passthrough throughput: {ratio['records_per_second']:.3f} from start, "
        f"{ratio['drain_records_per_second']:.3f} while draining"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gate_bench",
        description="Measure the gate worker on a backlog of signed assertions against a "
        "plain aiokafka passthrough, on uuid topics that are deleted afterwards.",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help=f"Kafka to use (default: $KAFKA_BOOTSTRAP_SERVERS or {DEFAULT_BOOTSTRAP}); "
        "the local broker is started when this is its address and it is not running",
    )
    parser.add_argument(
        "--records", type=int, default=50_000, help="assertions to generate (default 50000)"
    )
    parser.add_argument(
        "--guarantee",
        choices=("at_least_once", "exactly_once"),
        default="at_least_once",
        help="processing guarantee of the gate worker (default at_least_once)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated records")
    parser.add_argument("--out", type=Path, help="write the JSON report to this file")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    return Options(
        bootstrap_servers=args.bootstrap_servers,
        records=args.records,
        guarantee=args.guarantee,
        seed=args.seed,
        out=args.out,
    )


def _broker_command(action: str) -> None:
    subprocess.run([sys.executable, "-m", "streams.cli", "broker", action], check=True)


def _local_broker_needed(bootstrap_servers: str) -> bool:
    """Return True when ``bootstrap_servers`` is the local broker's address and it is down."""
    if bootstrap_servers != DEFAULT_BOOTSTRAP:
        return False
    try:
        asyncio.run(wait_for_broker(bootstrap_servers, timeout_seconds=2.0))
    except BrokerError:
        return True
    return False


def run_with_local_broker(
    bootstrap_servers: str, run_report: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
) -> dict[str, Any]:
    """Run ``run_report``, with the local broker started and stopped around it if needed.

    The report gets ``broker_started_by_benchmark``. A broker that was already running
    is left alone.
    """
    started_broker = _local_broker_needed(bootstrap_servers)
    if started_broker:
        logger.info("starting the local broker at %s", bootstrap_servers)
        _broker_command("start")
    try:
        report = asyncio.run(run_report())
    finally:
        if started_broker:
            logger.info("stopping the local broker that this run started")
            _broker_command("stop")
    report["broker_started_by_benchmark"] = started_broker
    return report


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = parse_args(argv)
    report = run_with_local_broker(options.bootstrap_servers, lambda: run(options))
    text = json.dumps(report, indent=2)
    if options.out is not None:
        options.out.write_text(text + "\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
