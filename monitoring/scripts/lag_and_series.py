"""Measure the lag metric against Kafka's consumer-groups tool, and the series count.

Usage, from the repository root with the local broker running and port 18181 free:

    .venv/bin/python monitoring/scripts/lag_and_series.py --agents 10000 --per-agent 3

1. Creates topics under a new prefix and writes ``agents * per_agent`` signed records
   (every agent a new Ed25519 key) while no worker runs, so a backlog waits.
2. Starts a worker and, until the backlog is gone, samples its
   ``stemedb_consumer_lag`` and the LAG column of ``ConsumerGroupCommand --describe``
   for the same group, each with the time it was read.
3. Prints each pair of readings, the worker's decision rate, and the number of series
   on ``/metrics`` once every agent was decided.

It stops the worker it started by PID. The topics stay (delete them with the broker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.signing import sign
from streams.localbroker import LocalBroker
from streams.settings import load_settings
from streams.topics import ASSERTIONS
from streams.topicsetup import ensure_topics

WORKER_URL = "http://127.0.0.1:18181"
TOOL_CLASS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
LAG_LINE = re.compile(r'^stemedb_consumer_lag\{partition="(\d+)",topic="([^"]+)"\} (\S+)$')


def build_records(agents: int, per_agent: int) -> list[tuple[bytes, bytes]]:
    records = []
    for agent in range(agents):
        key = Ed25519PrivateKey.generate()
        for number in range(per_agent):
            fields = sign(
                {
                    "schema_version": 1,
                    "id": f"a{agent}-{number}",
                    "subject": f"Station {agent} sensor {number}",
                    "predicate": "located_in",
                    "object": "Portugal",
                    "confidence": 0.7,
                    "sources": ["https://www.geonames.org/2264397"],
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                key,
            )
            records.append((str(fields["agent_id"]).encode(), orjson.dumps(fields)))
    return records


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def scrape() -> str:
    with urllib.request.urlopen(f"{WORKER_URL}/metrics", timeout=10) as response:
        return str(response.read().decode())


def worker_lag(text: str, topic: str) -> tuple[float, dict[int, int]]:
    polled_at = 0.0
    lag: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("stemedb_consumer_lag_poll_timestamp_seconds "):
            polled_at = float(line.split()[1])
        match = LAG_LINE.match(line)
        if match and match.group(2) == topic:
            lag[int(match.group(1))] = int(float(match.group(3)))
    return polled_at, lag


def tool_lag(libs: Path, bootstrap: str, group: str, topic: str) -> tuple[float, dict[int, int]]:
    """Run the consumer-groups tool; return the middle of its run time and LAG by partition."""
    started = time.time()
    output = subprocess.run(
        [
            "java",
            "-cp",
            f"{libs}/*",
            TOOL_CLASS,
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    ended = time.time()
    lag: dict[int, int] = {}
    for line in output.splitlines():
        columns = line.split()
        if len(columns) >= 6 and columns[1] == topic and columns[5].isdigit():
            lag[int(columns[2])] = int(columns[5])
    return (started + ended) / 2, lag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--per-agent", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(".cache/measure"))
    args = parser.parse_args()

    unique = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "STEMEDB_TOPIC_PREFIX": f"measure-{unique}.",
        "STEMEDB_APP_ID": f"measure-{unique}",
        "STEMEDB_DATA_DIR": str(args.out / f"worker-{unique}"),
    }
    os.environ.update(env)
    settings = load_settings()
    topic = settings.kafka.topic(ASSERTIONS)
    libs = LocalBroker().libs_dir
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Topics and a backlog.
    asyncio.run(ensure_topics(settings))
    records = build_records(args.agents, args.per_agent)
    asyncio.run(produce(settings.kafka.bootstrap_servers, topic, records))
    print(f"produced {len(records)} records from {args.agents} agents to {topic}", flush=True)

    # 2. A worker, and paired readings until the backlog is gone.
    log = (args.out / f"worker-{unique}.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    samples = []
    try:
        started = time.time()
        drained_since: float | None = None
        while time.time() - started < 900:
            try:
                text = scrape()
            except OSError:
                time.sleep(1)
                continue
            polled_at, metric = worker_lag(text, topic)
            if not metric:
                time.sleep(1)
                continue
            tool_at, tool = tool_lag(
                libs, settings.kafka.bootstrap_servers, settings.kafka.app_id, topic
            )
            decided = next(
                (
                    float(line.split()[1])
                    for line in text.splitlines()
                    if line.startswith("stemedb_decision_seconds_count ")
                ),
                0.0,
            )
            sample = {
                "metric_polled_at": polled_at,
                "metric": metric,
                "tool_at": tool_at,
                "tool": tool,
                "decided": decided,
                "scraped_at": time.time(),
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            if sum(metric.values()) == 0 and sum(tool.values()) == 0:
                drained_since = drained_since or time.time()
                if time.time() - drained_since > 15:
                    break
            time.sleep(2)

        # 3. Series on /metrics once every agent was decided.
        text = scrape()
        series = [line for line in text.splitlines() if line and not line.startswith("#")]
        families = Counter(re.split(r"[{ ]", line, maxsplit=1)[0] for line in series)
        print(f"series on /metrics: {len(series)}")
        for name, count in sorted(families.items()):
            print(f"  {count:4d} {name}")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.close()
    (args.out / f"samples-{unique}.json").write_text(json.dumps(samples, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
