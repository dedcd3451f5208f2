"""Benchmark of the admin API: command round trips and list latency at 100,000 items.

Run against a running Kafka broker (``stemedb-gate broker start``)::

    python -m benchmarks.admin_api_bench --out admin-api-bench.json

What it does, on topics with a fresh uuid prefix that it deletes at the end:

1. Creates the topics and starts a gate worker (``stemedb-gate worker``) as a child
   process.
2. Writes ``--items`` pending quarantine items straight to ``quarantine-state`` with
   one producer, spread over ``--agents`` agents and the three quarantine reasons.
   This skips the worker, which would take far longer to quarantine that many
   records. The worker does not know these items, so they are only read, never
   decided.
3. Starts ``stemedb-gate admin-api`` as a child process, so the load generator does
   not share its event loop, and times how long its read model takes to become ready.
4. Sends ``--list-requests`` GET requests of each kind one after another and records
   each latency: the first page, a page filtered by agent, by reason, by both, a page
   500 pages deep (by cursor), and the summary.
5. Produces ``--round-trips`` low-quality assertions, ten per agent so that no
   breaker opens, and waits until the worker has quarantined them. Then it approves
   each with ``?wait=true``, one request after another, and records the latency. It
   does the same for manual breaker opens and, ``--threshold-changes`` times, for a
   threshold change, which waits for the result of every partition.

The JSON written to ``--out`` contains every figure with p50, p99, mean and count in
milliseconds, the parameters and the machine; a table goes to standard output. Each
latency is measured by the client and includes the HTTP round trip on the loopback
interface.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.breaker import BreakerState
from schemas.quarantine import QuarantineItem, quarantine_item_id
from schemas.signing import sign
from schemas.verdict import Reason, Route, Verdict
from streams.settings import SECTIONS, GateSettings, load_settings
from streams.topics import ASSERTIONS, QUARANTINE_STATE, topic_specs
from streams.topicsetup import admin_client, ensure_topics

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 600.0
QUARANTINE_REASONS = (Reason.LOW_QUALITY, Reason.DUPLICATE, Reason.UNTRUSTED_HIGH_CONFIDENCE)
DEEP_PAGE_NUMBER = 500
PAGE_LIMIT = 100
# Numbers of the agents banned in the round trips, far from those owning the items.
BAN_AGENTS_FIRST = 10_000_000
# Records each round-trip agent sends; below the breaker's default min_requests (20).
RECORDS_PER_AGENT = 10


@dataclass(frozen=True)
class Options:
    bootstrap_servers: str
    items: int
    agents: int
    list_requests: int
    round_trips: int
    threshold_changes: int
    out: Path | None
    workdir: Path | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings_env(settings: GateSettings) -> dict[str, str]:
    """Return ``STEMEDB_<SECTION>__<KEY>`` variables that reproduce ``settings``."""
    env: dict[str, str] = {}
    for section in SECTIONS:
        for key, value in getattr(settings, section).model_dump(mode="json").items():
            if value is None:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[f"STEMEDB_{section.upper()}__{key.upper()}"] = text
    return env


def summarize(latencies_seconds: Sequence[float]) -> dict[str, float]:
    """Return p50, p99, mean and max in milliseconds, and the count."""
    ms = sorted(value * 1000.0 for value in latencies_seconds)
    if not ms:
        return {"count": 0}
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 3),
    }


class ChildProcess:
    """A ``stemedb-gate`` subcommand in a child process, stopped by its PID."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *self.args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def rss_mib(self) -> float | None:
        """Return the child's resident memory in MiB, or None where /proc is missing."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return None

    async def wait_ready(self, url: str, session: aiohttp.ClientSession) -> float:
        """Return seconds until ``url`` returns 200; raise RuntimeError if the child exits."""
        started = time.perf_counter()
        while time.perf_counter() - started < READY_TIMEOUT_SECONDS:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"'stemedb-gate {' '.join(self.args)}' exited with "
                    f"{self.process.returncode}; see {self.log_path}"
                )
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_SECONDS:g} s")


def _agent_ids(count: int, first: int = 1) -> list[str]:
    """Return ``count`` well-formed agent ids (64 hex digits) numbered from ``first``."""
    return [uuid.UUID(int=number).hex * 2 for number in range(first, first + count)]


async def feed_items(settings: GateSettings, count: int, agents: list[str]) -> float:
    """Write ``count`` pending items to quarantine-state; return the seconds it took."""
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks=1,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    started = time.perf_counter()
    async with producer:
        deliveries = []
        for number in range(count):
            agent_id = agents[number % len(agents)]
            assertion_id = f"bench-{number}"
            # Oldest first by number, one second apart, ending a minute ago.
            at = now - timedelta(seconds=count - number + 60)
            item = QuarantineItem(
                id=quarantine_item_id(agent_id, assertion_id),
                agent_id=agent_id,
                assertion={
                    "schema_version": 1,
                    "id": assertion_id,
                    "agent_id": agent_id,
                    "subject": f"Town {number}",
                    "predicate": "located_in",
                    "object": "n/a",
                    "confidence": 0.7,
                    "sources": ["https://www.geonames.org/2264397"],
                    "created_at": at.isoformat(),
                    "signature": "0" * 128,
                },
                verdict=Verdict(
                    route=Route.QUARANTINE,
                    reasons=[QUARANTINE_REASONS[number % len(QUARANTINE_REASONS)]],
                    quality_score=0.5,
                    score_breakdown={"placeholder": 0.5},
                    breaker_state=BreakerState.CLOSED,
                    decided_at=at,
                    gate_version="bench",
                ),
                quarantined_at=at,
            )
            deliveries.append(
                await producer.send(
                    settings.kafka.topic(QUARANTINE_STATE),
                    key=item.id.encode(),
                    value=orjson.dumps(item.model_dump(mode="json")),
                )
            )
            if len(deliveries) >= 10_000:
                await asyncio.gather(*deliveries)
                deliveries.clear()
        await asyncio.gather(*deliveries)
    return time.perf_counter() - started


class Bench:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        data = orjson.dumps(body) if body is not None else None
        headers = {**self.headers, "Content-Type": "application/json"}
        started = time.perf_counter()
        async with self.session.request(
            method, self.base_url + path, data=data, headers=headers
        ) as response:
            raw = await response.read()
        elapsed = time.perf_counter() - started
        return response.status, orjson.loads(raw), elapsed

    async def timed(
        self, count: int, request: Callable[[int], Awaitable[tuple[int, Any, float]]]
    ) -> list[float]:
        latencies = []
        for number in range(count):
            status, body, elapsed = await request(number)
            if status != 200:
                raise RuntimeError(f"request {number} returned {status}: {body}")
            latencies.append(elapsed)
        return latencies


async def list_latencies(
    bench: Bench, agents: list[str], items: int, requests: int
) -> dict[str, Any]:
    """Time each kind of list request ``requests`` times, one request at a time.

    Raises RuntimeError when the API does not list all ``items`` as pending, since
    the figures would then describe a smaller read model.
    """
    q = "/v1/admin/quarantine"
    _, first, _ = await bench.call("GET", f"{q}?limit=1")
    if first["total"] != items:
        raise RuntimeError(f"the API lists {first['total']} pending items, expected {items}")

    # A cursor 500 pages deep, found by walking there once.
    cursor = None
    for _ in range(DEEP_PAGE_NUMBER - 1):
        suffix = f"&cursor={cursor}" if cursor else ""
        _, page, _ = await bench.call("GET", f"{q}?limit={PAGE_LIMIT}{suffix}")
        cursor = page["next_cursor"]
        if cursor is None:
            break

    kinds: dict[str, Callable[[int], str]] = {
        "first_page": lambda n: f"{q}?limit={PAGE_LIMIT}",
        "page_by_agent": lambda n: f"{q}?limit={PAGE_LIMIT}&agent_id={agents[n % len(agents)]}",
        "page_by_reason": lambda n: (
            f"{q}?limit={PAGE_LIMIT}&reason={QUARANTINE_REASONS[n % 3].value}"
        ),
        "page_by_agent_and_reason": lambda n: (
            f"{q}?limit={PAGE_LIMIT}&agent_id={agents[n % len(agents)]}"
            f"&reason={QUARANTINE_REASONS[n % 3].value}"
        ),
        "summary": lambda n: f"{q}/summary",
    }
    if cursor is not None:
        kinds[f"page_{DEEP_PAGE_NUMBER}_by_cursor"] = lambda n: (
            f"{q}?limit={PAGE_LIMIT}&cursor={cursor}"
        )
    results: dict[str, Any] = {}
    for name, path_of in kinds.items():
        results[name] = summarize(await bench.timed(requests, _getter(bench, path_of)))
    return results


def _getter(
    bench: Bench, path_of: Callable[[int], str]
) -> Callable[[int], Awaitable[tuple[int, Any, float]]]:
    return lambda n: bench.call("GET", path_of(n))


async def round_trips(
    bench: Bench, settings: GateSettings, count: int, threshold_changes: int
) -> dict[str, Any]:
    """Time approve, breaker open and threshold change requests that wait for results."""
    # 1. Quarantine ``count`` records through the worker and wait for the API to list
    # them. Each agent sends a few, below the breaker's min_requests, so that no
    # breaker opens and sends the rest to banned.
    keys = [Ed25519PrivateKey.generate() for _ in range(-(-count // RECORDS_PER_AGENT))]
    records: list[tuple[bytes, bytes]] = []
    for number in range(count):
        key = keys[number // RECORDS_PER_AGENT]
        fields = {
            "schema_version": 1,
            "id": f"round-trip-{number}",
            "subject": f"Town {number}",
            "predicate": "located_in",
            "object": "n/a",
            "confidence": 0.7,
            "sources": ["https://www.geonames.org/2264397"],
            "created_at": datetime.now(UTC).isoformat(),
        }
        signed = sign(fields, key)
        records.append((signed["agent_id"].encode(), orjson.dumps(signed)))
    async with AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers) as producer:
        deliveries = [
            await producer.send(settings.kafka.topic(ASSERTIONS), key=record_key, value=value)
            for record_key, value in records
        ]
        await asyncio.gather(*deliveries)
    agent_ids = sorted({record_key.decode() for record_key, _ in records})
    ids: list[str] = []
    deadline = time.monotonic() + 120
    while len(ids) < count and time.monotonic() < deadline:
        ids = []
        for agent_id in agent_ids:
            _, page, _ = await bench.call(
                "GET", f"/v1/admin/quarantine?agent_id={agent_id}&limit=1000"
            )
            ids.extend(item["id"] for item in page["items"])
        await asyncio.sleep(0.2)
    if len(ids) < count:
        raise RuntimeError(f"only {len(ids)} of {count} records were quarantined in time")

    # 2. One waiting request at a time, so each latency is a full round trip.
    approve = await bench.timed(
        count,
        lambda n: bench.call("POST", f"/v1/admin/quarantine/{ids[n]}/approve?wait=true"),
    )
    ban_agents = _agent_ids(count, first=BAN_AGENTS_FIRST)
    ban = await bench.timed(
        count,
        lambda n: bench.call(
            "POST",
            f"/v1/admin/circuit_breakers/{ban_agents[n]}/open?wait=true",
            {"reason": "benchmark", "duration_seconds": 60},
        ),
    )
    thresholds = await bench.timed(
        threshold_changes,
        lambda n: bench.call(
            "PUT",
            "/v1/admin/content_defense/thresholds?wait=true",
            {"quality_threshold": 0.6 if n % 2 else 0.59},
        ),
    )
    return {
        "approve_wait": summarize(approve),
        "breaker_open_wait": summarize(ban),
        "set_thresholds_wait_all_partitions": summarize(thresholds),
    }


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark and return its report; every child and topic is cleaned up."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="admin-api-bench-"))
    token = uuid.uuid4().hex + uuid.uuid4().hex
    tokens_file = workdir / "tokens"
    tokens_file.write_text(f"bench {token}\n")
    tokens_file.chmod(0o600)
    config = workdir / "config.toml"
    config.write_text("")
    unique = uuid.uuid4().hex[:12]
    settings = load_settings(
        config,
        kafka={
            "bootstrap_servers": options.bootstrap_servers,
            "topic_prefix": f"bench-{unique}.",
            "app_id": f"bench-{unique}",
        },
        worker={"data_dir": workdir / "worker", "web_port": _free_port()},
        admin_api={"port": _free_port(), "review_port": _free_port(), "tokens_file": tokens_file},
    )

    env = _settings_env(settings)
    worker = ChildProcess(["worker"], env, workdir / "worker.log")
    api = ChildProcess(["admin-api"], env, workdir / "api.log")
    agents = _agent_ids(options.agents)
    report: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "parameters": {
            "items": options.items,
            "agents": options.agents,
            "list_requests": options.list_requests,
            "round_trips": options.round_trips,
            "threshold_changes": options.threshold_changes,
            "partitions": settings.kafka.partitions,
            "page_limit": PAGE_LIMIT,
        },
        "started_at": datetime.now(UTC).isoformat(),
    }

    try:
        await ensure_topics(settings)
        worker.start()
        report["feed_items_seconds"] = round(await feed_items(settings, options.items, agents), 3)
        api.start()
        base_url = f"http://127.0.0.1:{settings.admin_api.port}"
        async with aiohttp.ClientSession() as session:
            load_seconds = await api.wait_ready(base_url + "/readyz", session)
            report["read_model_ready_seconds"] = round(load_seconds, 3)
            report["api_rss_mib_when_ready"] = api.rss_mib()
            await worker.wait_ready(f"http://127.0.0.1:{settings.worker.web_port}/readyz", session)
            bench = Bench(session, base_url, token)
            report["list"] = await list_latencies(
                bench, agents, options.items, options.list_requests
            )
            # Callers that only need the list figures (benchmarks.scaling) pass zero.
            report["round_trip"] = (
                await round_trips(bench, settings, options.round_trips, options.threshold_changes)
                if options.round_trips or options.threshold_changes
                else {}
            )
    finally:
        api.stop()
        worker.stop()
        await _delete_topics(settings)
    report["logs"] = str(workdir)
    return report


async def _delete_topics(settings: GateSettings) -> None:
    async with admin_client(settings.kafka.bootstrap_servers) as client:
        names = {spec.name for spec in topic_specs(settings)}
        doomed = [
            name
            for name in await client.list_topics()
            if name in names or name.startswith(f"{settings.kafka.app_id}-")
        ]
        if doomed:
            await client.delete_topics(doomed)


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"items {report['parameters']['items']}, agents {report['parameters']['agents']}, "
        f"read model ready after {report['read_model_ready_seconds']} s, "
        f"API resident memory {report['api_rss_mib_when_ready']} MiB",
        f"{'request':<40} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}",
    ]
    for section in ("list", "round_trip"):
        for name, figures in report[section].items():
            lines.append(
                f"{section + '.' + name:<40} {figures['count']:>6} {figures['p50_ms']:>9.2f} "
                f"{figures['p99_ms']:>9.2f} {figures['mean_ms']:>9.2f}"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.admin_api_bench",
        description="Measure admin API command round trips and list latency on a local "
        "Kafka broker. Starts its own worker and API on uuid topics and deletes them.",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
        help="Kafka to use (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:19092)",
    )
    parser.add_argument("--items", type=int, default=100_000, help="pending items (default 100000)")
    parser.add_argument(
        "--agents", type=int, default=1000, help="agents owning them (default 1000)"
    )
    parser.add_argument(
        "--list-requests", type=int, default=200, help="requests per list kind (default 200)"
    )
    parser.add_argument(
        "--round-trips", type=int, default=200, help="approvals and bans timed (default 200)"
    )
    parser.add_argument(
        "--threshold-changes", type=int, default=20, help="threshold changes timed (default 20)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON report to this file")
    args = parser.parse_args(argv)
    for name in ("items", "agents", "list_requests", "round_trips", "threshold_changes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return Options(
        bootstrap_servers=args.bootstrap_servers,
        items=args.items,
        agents=args.agents,
        list_requests=args.list_requests,
        round_trips=args.round_trips,
        threshold_changes=args.threshold_changes,
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = parse_args(argv)
    report = asyncio.run(run(options))
    text = json.dumps(report, indent=2)
    if options.out is not None:
        options.out.write_text(text + "\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
