"""Decision latency of a gate worker, which this script starts, at fixed input rates.

The throughput benchmark loads a backlog, so its latency is queueing time. This one
starts the worker first and waits until it is ready. It sends records at the first
rate for ``--warmup-seconds``, which the figures leave out, and then produces signed
records at each of ``--rates`` per second for ``--seconds``, one rate after the other. Each
record's latency runs from its broker timestamp on ``assertions`` to the broker
timestamp of its output, both ``LogAppendTime``::

    python -m benchmarks.latency --rates 200,450,700 --seconds 30 --out latency.json

It needs a running broker at ``--bootstrap-servers`` (``$KAFKA_BOOTSTRAP_SERVERS`` or
127.0.0.1:19092, where ``stemedb-gate broker start`` runs one).
Topics get a fresh uuid prefix and are deleted at the end. A rate the producer cannot
keep up with is reported with the rate it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.admin_api_bench import _settings_env, summarize
from benchmarks.gate_bench import (
    DEFAULT_BOOTSTRAP,
    OUTPUT_TOPICS,
    MeasuredProcess,
    Record,
    _delete_topics,
    _load_average,
    _machine,
    bench_settings,
    first_output_ms,
    gate_source,
    prepare_gate_topics,
    read_topics,
    wait_committed,
)
from benchmarks.scaling import wait_ready
from streams.faults import build_input
from streams.topics import ASSERTIONS

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.01


async def produce_at_rate(
    producer: AIOKafkaProducer, topic: str, records: Sequence[Record], rate: float
) -> float:
    """Send ``records`` spread evenly at ``rate`` per second, and return the rate reached."""
    started = time.monotonic()
    deliveries = []
    for index, (key, value) in enumerate(records):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > TICK_SECONDS:
            await asyncio.sleep(delay)
        deliveries.append(await producer.send(topic, key=key, value=value))
    await asyncio.gather(*deliveries)
    return len(records) / max(time.monotonic() - started, 1e-9)


async def run(options: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="gate-latency-"))
    settings = bench_settings(workdir, options.bootstrap_servers, "gate-latency")
    kafka = settings.kafka
    rates = [float(rate) for rate in options.rates.split(",")]
    warmup = int(rates[0] * options.warmup_seconds)
    total = warmup + int(sum(rate * options.seconds for rate in rates))
    records, agents = build_input(total, options.seed)
    report: dict[str, Any] = {
        "machine": _machine(),
        "load_average_at_start": _load_average(),
        "parameters": {
            "rates": rates,
            "seconds_per_rate": options.seconds,
            "warmup_seconds": options.warmup_seconds,
            "records": len(records),
            "agents": agents,
            "processing_guarantee": kafka.processing_guarantee,
        },
        "points": [],
    }

    await prepare_gate_topics(settings)
    worker = MeasuredProcess(
        ["streams.cli", "worker"], _settings_env(settings), workdir / "worker.log"
    )
    try:
        worker.start()
        await wait_ready(f"http://127.0.0.1:{settings.worker.web_port}/readyz", worker)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        sent = warmup
        spans: list[tuple[float, int]] = []
        async with producer:
            if warmup:
                print(f"latency: warming up with {warmup} records at {rates[0]:g}/s", flush=True)
                await produce_at_rate(producer, kafka.topic(ASSERTIONS), records[:warmup], rates[0])
            for rate in rates:
                batch = records[sent : sent + int(rate * options.seconds)]
                print(f"latency: {len(batch)} records at {rate:g}/s", flush=True)
                started_ms = int(time.time() * 1000)
                reached = await produce_at_rate(producer, kafka.topic(ASSERTIONS), batch, rate)
                spans.append((reached, started_ms))
                sent += len(batch)
        await wait_committed(
            kafka.bootstrap_servers, kafka.app_id, kafka.topic(ASSERTIONS), sent, worker
        )
        report["worker"] = worker.usage()
    finally:
        worker.stop()

    try:
        inputs = await read_topics(kafka.bootstrap_servers, [kafka.topic(ASSERTIONS)])
        outputs = await read_topics(
            kafka.bootstrap_servers, [kafka.topic(name) for name in OUTPUT_TOPICS]
        )
    finally:
        await _delete_topics(settings)
    report["points"] = latency_points(inputs, outputs, rates, spans)
    report["load_average_at_end"] = _load_average()
    return report


def latency_points(
    inputs: list[Any],
    outputs: list[Any],
    rates: list[float],
    spans: list[tuple[float, int]],
) -> list[dict[str, Any]]:
    """Split the inputs by the rate they were sent at, by their broker timestamps.

    Each rate's records were sent from its start time on, until the next rate's start.
    The broker runs on the same machine, so its timestamps and the start times share
    one clock.
    """
    out_ms = first_output_ms(outputs, gate_source)
    points = []
    ends = [started for _, started in spans[1:]] + [2**63]
    for rate, (reached, started), end in zip(rates, spans, ends, strict=True):
        sent = [m for m in inputs if started <= m.timestamp < end]
        latencies = [
            (out_ms[(m.partition, m.offset)] - m.timestamp) / 1000
            for m in sent
            if (m.partition, m.offset) in out_ms
        ]
        points.append(
            {
                "rate_requested": rate,
                "rate_reached": round(reached, 1),
                "records": len(sent),
                "without_output": len(sent) - len(latencies),
                "latency": summarize(latencies),
            }
        )
    return points


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="250,500,750", help="records per second, in order (default 250,500,750)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds at each rate")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=10.0,
        help="seconds at the first rate before measuring, left out of the figures",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of agent keys and records")
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help="Kafka to use (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:19092)",
    )
    parser.add_argument("--out", type=Path, help="file for the JSON report")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    options = parse_args(argv)
    report = asyncio.run(run(options))
    for point in report["points"]:
        latency = point["latency"]
        print(
            f"{point['rate_requested']:>8g}/s requested, {point['rate_reached']:>8g}/s sent: "
            f"p50 {latency.get('p50_ms', 0):.1f} ms, p99 {latency.get('p99_ms', 0):.1f} ms, "
            f"max {latency.get('max_ms', 0):.1f} ms"
        )
    if options.out is not None:
        options.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
