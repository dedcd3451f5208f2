"""Scaling curves of the gate worker and the admin API.

Run against a Kafka broker (the local one is started when it is not running)::

    python -m benchmarks.scaling --out docs/benchmarks/scaling.json

Three curves, each point on topics with a fresh uuid prefix that are deleted after it:

- ``agents``: throughput, memory and table restore time against the number of agents
  whose state the worker keeps (default 1,000, 100,000 and 1,000,000).
- ``lookback``: the same against the number of entries in the duplicate look-back
  index (the ``seen`` table), for a fixed number of agents. Some routed records repeat
  an earlier claim and are quarantined as duplicates.
- ``admin``: admin API list latency against pending quarantine items, measured by
  :func:`benchmarks.admin_api_bench.list_latencies`.

A gate point runs these steps:

1. Create the gate's topics and the ``agents`` and ``seen`` changelogs.
2. Write the state of every agent (and the look-back entries) straight to the
   changelogs (:mod:`benchmarks.preload`), as the worker would have written it.
3. Produce ``--records`` signed assertions from preloaded agents, all before the
   worker starts, so the load is a backlog.
4. Start ``stemedb-gate worker``, which restores its tables from the changelogs, and
   time how long it takes until ``/readyz`` returns 200.
5. Wait until the worker's group has committed every input offset, read the decision
   histogram from ``/metrics`` and CPU time and peak memory from ``/proc``, stop it,
   and pair every output with its input as :mod:`benchmarks.gate_bench` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import admin_api_bench, preload
from benchmarks.admin_api_bench import _free_port, _settings_env
from benchmarks.gate_bench import (
    DEFAULT_BOOTSTRAP,
    OUTPUT_TOPICS,
    MeasuredProcess,
    Record,
    _delete_topics,
    _load_average,
    _machine,
    figures,
    gate_source,
    prepare_gate_topics,
    produce,
    read_topics,
    run_with_local_broker,
    wait_committed,
)
from schemas.signing import sign
from streams.app import DAY_MS
from streams.settings import GateSettings, load_settings
from streams.topics import ASSERTIONS
from streams.topicsetup import admin_client

logger = logging.getLogger(__name__)

CURVES = ("agents", "lookback", "admin")
READY_TIMEOUT_SECONDS = 1800.0
# Records one agent may send in a point. The backlog arrives within about a minute of
# broker time, and the default flood limit is 50 per minute, so more would open
# breakers and the point would measure banned routing instead of decisions.
MAX_RECORDS_PER_AGENT = 40
DECISION_HISTOGRAM = "stemedb_decision_seconds"
# Preloaded agents whose state is read back from the worker once it is ready.
RESTORE_SAMPLE = 20


@dataclass(frozen=True)
class Options:
    bootstrap_servers: str
    curves: tuple[str, ...] = CURVES
    agents: tuple[int, ...] = (1000, 100_000, 1_000_000)
    lookback_entries: tuple[int, ...] = (0, 100_000, 1_000_000)
    lookback_agents: int = 1000
    pending: tuple[int, ...] = (10_000, 100_000)
    admin_agents: int = 1000
    list_requests: int = 100
    records: int = 20_000
    duplicate_share: float = 0.1
    seed: int = 1
    out: Path | None = None
    workdir: Path | None = None


@dataclass
class PlannedInput:
    records: list[Record] = field(default_factory=list)
    senders: int = 0
    duplicates_of_preloaded: int = 0
    duplicates_within_run: int = 0


# -- input -----------------------------------------------------------------------------


def plan_input(
    agents: int, records: int, earlier_per_agent: int, duplicate_share: float, seed: int
) -> PlannedInput:
    """Build ``records`` signed assertions from agents numbered below ``agents``.

    With at least as many agents as records, every record comes from a different agent.
    Otherwise each agent sends ``records // agents`` or one more. About
    ``duplicate_share`` of the records repeat an earlier claim of their agent: one from
    the look-back index when ``earlier_per_agent`` > 0, else one sent earlier in this
    run. The rest are distinct, well-formed claims that the gate accepts.
    """
    rng = random.Random(seed)
    if agents >= records:
        numbers = rng.sample(range(agents), records)
    else:
        numbers = [number % agents for number in range(records)]
        rng.shuffle(numbers)
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    keys: dict[int, Any] = {}
    sent: Counter[int] = Counter()
    planned = PlannedInput(senders=len(set(numbers)))

    for agent_number in numbers:
        key = keys.get(agent_number)
        if key is None:
            key = keys[agent_number] = preload.agent_signing_key(seed, agent_number)
        sequence = sent[agent_number]
        sent[agent_number] += 1
        subject = f"Town {agent_number} {sequence}"
        if rng.random() < duplicate_share:
            if earlier_per_agent > 0:
                subject, _, _ = preload.earlier_claim(
                    agent_number, rng.randrange(earlier_per_agent)
                )
                planned.duplicates_of_preloaded += 1
            elif sequence > 0:
                subject = f"Town {agent_number} {rng.randrange(sequence)}"
                planned.duplicates_within_run += 1
        fields = sign(
            {
                "schema_version": 1,
                "id": f"scale-{sequence}",
                "subject": subject,
                "predicate": preload.PREDICATE,
                "object": preload.OBJECT,
                "confidence": 0.7,
                "sources": ["https://www.geonames.org/2267057"],
                "created_at": created_at,
            },
            key,
        )
        planned.records.append((fields["agent_id"].encode(), orjson.dumps(fields)))
    return planned


# -- one gate point --------------------------------------------------------------------


def point_settings(options: Options, workdir: Path) -> GateSettings:
    """Return settings with a fresh uuid topic prefix and app id, and a free web port."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text("")
    unique = uuid.uuid4().hex[:12]
    return load_settings(
        config,
        kafka={
            "bootstrap_servers": options.bootstrap_servers,
            "topic_prefix": f"scaling-{unique}.",
            "app_id": f"scaling-{unique}",
        },
        worker={"data_dir": workdir / "worker", "web_port": _free_port()},
    )


async def create_changelogs(settings: GateSettings) -> None:
    """Create the ``agents`` and ``seen`` changelogs with the configs faust gives them."""
    kafka = settings.kafka
    lookback_ms = int(settings.content_defense.duplicate_lookback_hours * 3_600_000)
    configs = {
        "agents": {"cleanup.policy": "compact"},
        "seen": {"cleanup.policy": "compact,delete", "retention.ms": str(lookback_ms + DAY_MS)},
    }
    async with admin_client(kafka.bootstrap_servers) as client:
        await client.create_topics(
            [
                NewTopic(
                    preload.changelog_topic(kafka.app_id, table),
                    kafka.partitions,
                    kafka.replication_factor,
                    topic_configs=config,
                )
                for table, config in configs.items()
            ]
        )


async def wait_ready(url: str, child: MeasuredProcess) -> float:
    """Return the seconds from the child's start until ``url`` returns 200."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            child.check_alive()
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.time() - child.started_at_ms / 1000
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(
        f"{url} did not return 200 within {READY_TIMEOUT_SECONDS:g} s; see {child.log_path}"
    )


def histogram_quantile(buckets: list[tuple[float, float]], quantile: float) -> float | None:
    """Estimate a quantile from cumulative Prometheus buckets ``(upper bound, count)``.

    Interpolates linearly inside the bucket that contains the quantile, as
    Prometheus's ``histogram_quantile`` does. Returns the largest finite bound when the
    quantile falls in the ``+Inf`` bucket, and None for an empty histogram.
    """
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (upper_bound - lower_bound) * share
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def decision_figures(exposition: str) -> dict[str, Any]:
    """Return count, mean and estimated p50 and p99 of the decision histogram in ms."""
    buckets: list[tuple[float, float]] = []
    total = seconds = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name != DECISION_HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                total = sample.value
            elif sample.name.endswith("_sum"):
                seconds = sample.value
    buckets.sort()
    p50, p99 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.99)
    return {
        "count": int(total),
        "mean_ms": round(seconds / total * 1000, 3) if total else None,
        "p50_ms_estimate": round(p50 * 1000, 3) if p50 is not None else None,
        "p99_ms_estimate": round(p99 * 1000, 3) if p99 is not None else None,
    }


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.text()


async def check_restored(base_url: str, agent_ids: list[str]) -> None:
    """Raise RuntimeError unless the worker returns the preloaded state of ``agent_ids``.

    A preload in a format or partition the worker does not expect would leave the
    tables empty, and the point would then measure a worker with no state.
    """
    missing = []
    async with aiohttp.ClientSession() as session:
        for agent in agent_ids:
            async with session.get(f"{base_url}/state/agents/{agent}") as response:
                response.raise_for_status()
                body = await response.json()
            state = body.get("state") or {}
            if state.get("approvals") != preload.PRELOADED_APPROVALS:
                missing.append(agent)
    if missing:
        raise RuntimeError(
            f"the worker did not restore the preloaded state of {len(missing)} of "
            f"{len(agent_ids)} sampled agents, for example {missing[0]}; check that "
            "benchmarks.preload writes keys, values and partitions as the worker does"
        )


async def measure_worker(
    settings: GateSettings, inputs: int, sample_agents: list[str], workdir: Path, label: str
) -> dict[str, Any]:
    """Run one worker over the backlog; return its readiness, usage and decision figures."""
    kafka = settings.kafka
    base_url = f"http://127.0.0.1:{settings.worker.web_port}"
    worker = MeasuredProcess(
        ["streams.cli", "worker"], _settings_env(settings), workdir / "worker.log"
    )
    worker.start()
    try:
        ready_seconds = await wait_ready(base_url + "/readyz", worker)
        at_ready = worker.usage()
        await check_restored(base_url, sample_agents)
        logger.info(
            "%s: worker ready after %.1f s, routing %d records", label, ready_seconds, inputs
        )
        await wait_committed(
            kafka.bootstrap_servers, kafka.app_id, kafka.topic(ASSERTIONS), inputs, worker
        )
        decisions = decision_figures(await scrape(base_url + "/metrics"))
        usage = worker.usage()
    finally:
        worker.stop()
    return {
        "started_at_ms": worker.started_at_ms,
        "ready_seconds": round(ready_seconds, 3),
        "cpu_seconds_when_ready": at_ready["cpu_seconds"],
        "peak_rss_mib_when_ready": at_ready["peak_rss_mib"],
        **usage,
        "decision": decisions,
    }


async def run_gate_point(
    options: Options, curve: str, agents: int, entries: int, workdir: Path, label: str
) -> dict[str, Any]:
    """Measure one point of the agents or look-back curve; its topics are deleted after."""
    settings = point_settings(options, workdir)
    kafka = settings.kafka
    point: dict[str, Any] = {"curve": curve, "agents": agents, "seen_entries": entries}
    try:
        # 1. Topics.
        await prepare_gate_topics(settings)
        await create_changelogs(settings)

        # 2. State, written as the worker would have written it.
        logger.info("%s: preloading the state of %d agents", label, agents)
        ids = (preload.agent_id(options.seed, number) for number in range(agents))
        written = await preload.write_records(
            kafka.bootstrap_servers,
            preload.changelog_topic(kafka.app_id, "agents"),
            preload.agent_records(ids, kafka.partitions),
            kafka.partitions,
        )
        point["preload_agents"] = _rate(written)
        earlier_per_agent = entries // 2 // agents
        if entries:
            logger.info("%s: preloading %d look-back entries", label, entries)
            written = await preload.write_records(
                kafka.bootstrap_servers,
                preload.changelog_topic(kafka.app_id, "seen"),
                preload.seen_records(
                    [preload.agent_id(options.seed, number) for number in range(agents)],
                    entries,
                    int(time.time() * 1000),
                    kafka.partitions,
                ),
                kafka.partitions,
            )
            point["preload_seen"] = _rate(written)

        # 3. The backlog.
        logger.info("%s: signing and producing %d records", label, options.records)
        generate_started = time.perf_counter()
        planned = plan_input(
            agents, options.records, earlier_per_agent, options.duplicate_share, options.seed
        )
        point["generate_seconds"] = round(time.perf_counter() - generate_started, 3)
        point["input"] = {
            "records": len(planned.records),
            "sending_agents": planned.senders,
            "duplicates_of_preloaded": planned.duplicates_of_preloaded,
            "duplicates_within_run": planned.duplicates_within_run,
        }
        point["produce_seconds"] = round(
            await produce(kafka.bootstrap_servers, kafka.topic(ASSERTIONS), planned.records), 3
        )

        # 4 and 5. Restore, route, measure.
        logger.info("%s: starting the worker, which restores its tables first", label)
        # Agents spread over the numbers, so that most partitions are sampled.
        sample = [
            preload.agent_id(options.seed, number)
            for number in range(0, agents, max(agents // RESTORE_SAMPLE, 1))
        ]
        worker = await measure_worker(settings, len(planned.records), sample, workdir, label)
        inputs = await read_topics(kafka.bootstrap_servers, [kafka.topic(ASSERTIONS)])
        outputs = await read_topics(
            kafka.bootstrap_servers, [kafka.topic(name) for name in OUTPUT_TOPICS]
        )
    finally:
        await _delete_topics(settings)
        # The RocksDB folder of a million agents takes hundreds of MiB; the log stays.
        shutil.rmtree(workdir / "worker", ignore_errors=True)

    started_at_ms = worker.pop("started_at_ms")
    routed = figures(inputs, outputs, gate_source, started_at_ms)
    after_ready_seconds = routed["seconds_from_start_to_last_output"] - worker["ready_seconds"]
    routes = Counter(message.topic.removeprefix(kafka.topic_prefix) for message in outputs)
    point.update(worker)
    point.update(routed)
    point["records_per_second_after_ready"] = round(
        routed["inputs"] / max(after_ready_seconds, 0.001), 1
    )
    point["outputs_by_topic"] = dict(sorted(routes.items()))
    logger.info(
        "%s: %.0f rec/s after ready, %.0f drain rec/s, peak RSS %.1f MiB, ready after %.1f s",
        label,
        point["records_per_second_after_ready"],
        point["drain_records_per_second"],
        point["peak_rss_mib"],
        point["ready_seconds"],
    )
    return point


def _rate(result: preload.PreloadResult) -> dict[str, float]:
    return {
        "records": result.records,
        "seconds": round(result.seconds, 3),
        "records_per_second": round(result.records_per_second, 1),
    }


# -- the admin curve -------------------------------------------------------------------


async def run_admin_point(options: Options, pending: int, workdir: Path) -> dict[str, Any]:
    """Measure admin API list latency with ``pending`` items; no write round trips."""
    report = await admin_api_bench.run(
        admin_api_bench.Options(
            bootstrap_servers=options.bootstrap_servers,
            items=pending,
            agents=options.admin_agents,
            list_requests=options.list_requests,
            round_trips=0,
            threshold_changes=0,
            out=None,
            workdir=workdir,
        )
    )
    return {
        "pending_items": pending,
        "agents": options.admin_agents,
        "list_requests_per_kind": options.list_requests,
        "feed_items_seconds": report["feed_items_seconds"],
        "read_model_ready_seconds": report["read_model_ready_seconds"],
        "api_rss_mib_when_ready": report["api_rss_mib_when_ready"],
        "list": report["list"],
    }


# -- the run ---------------------------------------------------------------------------


async def run(options: Options) -> dict[str, Any]:
    """Measure every point of the chosen curves and return the report."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="scaling-"))
    report: dict[str, Any] = {
        "machine": _machine(),
        "load_average_at_start": _load_average(),
        "started_at": datetime.now(UTC).isoformat(),
        "parameters": {
            "curves": list(options.curves),
            "agents": list(options.agents),
            "lookback_entries": list(options.lookback_entries),
            "lookback_agents": options.lookback_agents,
            "pending": list(options.pending),
            "admin_agents": options.admin_agents,
            "list_requests": options.list_requests,
            "records": options.records,
            "duplicate_share": options.duplicate_share,
            "seed": options.seed,
        },
    }
    started = time.perf_counter()

    if "agents" in options.curves:
        report["agents_curve"] = []
        for index, agents in enumerate(options.agents, 1):
            label = f"agents curve {index}/{len(options.agents)} ({agents} agents)"
            report["agents_curve"].append(
                await run_gate_point(
                    options, "agents", agents, 0, workdir / f"agents-{agents}", label
                )
            )
    if "lookback" in options.curves:
        report["lookback_curve"] = []
        for index, entries in enumerate(options.lookback_entries, 1):
            label = f"look-back curve {index}/{len(options.lookback_entries)} ({entries} entries)"
            report["lookback_curve"].append(
                await run_gate_point(
                    options,
                    "lookback",
                    options.lookback_agents,
                    entries,
                    workdir / f"lookback-{entries}",
                    label,
                )
            )
    if "admin" in options.curves:
        report["admin_curve"] = []
        for index, pending in enumerate(options.pending, 1):
            logger.info(
                "admin curve %d/%d (%d pending items): feeding items and listing",
                index,
                len(options.pending),
                pending,
            )
            point_dir = workdir / f"admin-{pending}"
            point_dir.mkdir(parents=True, exist_ok=True)
            report["admin_curve"].append(await run_admin_point(options, pending, point_dir))

    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = _load_average()
    report["logs"] = str(workdir)
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"scaling run of {report['wall_seconds']:.0f} s on {report['machine']['cpus']} CPUs"]
    header = (
        f"{'':<22} {'ready s':>8} {'rec/s':>8} {'drain':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU s':>7} {'peak MiB':>9}"
    )
    for curve, column in (("agents_curve", "agents"), ("lookback_curve", "seen_entries")):
        if curve not in report:
            continue
        lines += ["", header]
        for point in report[curve]:
            p50 = point["decision"]["p50_ms_estimate"] or 0.0
            p99 = point["decision"]["p99_ms_estimate"] or 0.0
            lines.append(
                f"{column + ' ' + str(point[column]):<22} {point['ready_seconds']:>8.1f} "
                f"{point['records_per_second_after_ready']:>8.0f} "
                f"{point['drain_records_per_second']:>8.0f} "
                f"{p50:>8.2f} {p99:>8.2f} "
                f"{point['cpu_seconds']:>7.1f} {point['peak_rss_mib']:>9.1f}"
            )
    if "admin_curve" in report:
        lines += ["", f"{'pending items':<22} {'request':<28} {'p50 ms':>8} {'p99 ms':>8}"]
        for point in report["admin_curve"]:
            for kind, latency in point["list"].items():
                lines.append(
                    f"{point['pending_items']:<22} {kind:<28} {latency['p50_ms']:>8.2f} "
                    f"{latency['p99_ms']:>8.2f}"
                )
    return "\n".join(lines)


def _sizes(text: str) -> tuple[int, ...]:
    """Parse a comma-separated list of non-negative integers (``1000,100000``)."""
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size list {text!r}: expected integers separated by commas"
        ) from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"invalid size list {text!r}: expected sizes >= 0")
    return sizes


def _curves(text: str) -> tuple[str, ...]:
    curves = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(curves) - set(CURVES))
    if not curves or unknown:
        raise argparse.ArgumentTypeError(
            f"invalid curve list {text!r}: choose from {', '.join(CURVES)}"
        )
    return curves


def parse_args(argv: Sequence[str] | None = None) -> Options:
    defaults = Options(bootstrap_servers=DEFAULT_BOOTSTRAP)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scaling",
        description="Measure gate throughput against the number of agents and of look-back "
        "entries, and admin API list latency against pending items, on uuid topics that "
        "are deleted afterwards.",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP),
        help=f"Kafka to use (default: $KAFKA_BOOTSTRAP_SERVERS or {DEFAULT_BOOTSTRAP}); "
        "the local broker is started when this is its address and it is not running",
    )
    parser.add_argument(
        "--curves",
        type=_curves,
        default=CURVES,
        help="comma-separated curves to run (default agents,lookback,admin)",
    )
    parser.add_argument(
        "--agents",
        type=_sizes,
        default=defaults.agents,
        help="agent counts of the agents curve (default 1000,100000,1000000)",
    )
    parser.add_argument(
        "--lookback-entries",
        type=_sizes,
        default=defaults.lookback_entries,
        help="seen-table entries of the look-back curve (default 0,100000,1000000)",
    )
    parser.add_argument(
        "--lookback-agents",
        type=int,
        default=defaults.lookback_agents,
        help="agents of the look-back curve, sharing its entries (default 1000)",
    )
    parser.add_argument(
        "--pending",
        type=_sizes,
        default=defaults.pending,
        help="pending quarantine items of the admin curve (default 10000,100000)",
    )
    parser.add_argument(
        "--admin-agents",
        type=int,
        default=defaults.admin_agents,
        help="agents owning the pending items (default 1000)",
    )
    parser.add_argument(
        "--list-requests",
        type=int,
        default=defaults.list_requests,
        help="requests per list kind at each admin point (default 100)",
    )
    parser.add_argument(
        "--records",
        type=int,
        default=defaults.records,
        help="assertions routed at each gate point (default 20000)",
    )
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=defaults.duplicate_share,
        help="share of routed records that repeat an earlier claim, 0 to 0.25 (default 0.1)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of keys and records")
    parser.add_argument("--out", type=Path, help="write the JSON report to this file")
    args = parser.parse_args(argv)

    if args.records < 1:
        parser.error("--records must be at least 1")
    for name in ("lookback_agents", "admin_agents", "list_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    # Above 0.25 the quarantine share of an agent could reach the breaker's default
    # failure_rate_threshold (0.3) and open it.
    if not 0.0 <= args.duplicate_share <= 0.25:
        parser.error(f"--duplicate-share must be between 0 and 0.25, not {args.duplicate_share}")
    if "agents" in args.curves and min(args.agents) < 1:
        parser.error("--agents sizes must be at least 1")
    if "admin" in args.curves and min(args.pending) < 1:
        parser.error("--pending sizes must be at least 1")
    agent_counts = []
    if "agents" in args.curves:
        agent_counts.append(min(args.agents))
    if "lookback" in args.curves:
        agent_counts.append(args.lookback_agents)
    fewest_agents = min(agent_counts, default=args.records)
    if math.ceil(args.records / fewest_agents) > MAX_RECORDS_PER_AGENT:
        parser.error(
            f"--records {args.records} over {fewest_agents} agents is more than "
            f"{MAX_RECORDS_PER_AGENT} records per agent, which trips the flood limit; "
            "lower --records or raise the agent count"
        )
    return Options(
        bootstrap_servers=args.bootstrap_servers,
        curves=args.curves,
        agents=args.agents,
        lookback_entries=args.lookback_entries,
        lookback_agents=args.lookback_agents,
        pending=args.pending,
        admin_agents=args.admin_agents,
        list_requests=args.list_requests,
        records=args.records,
        duplicate_share=args.duplicate_share,
        seed=args.seed,
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiokafka logs every retried produce while a fresh topic elects its leaders.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    options = parse_args(argv)
    report = run_with_local_broker(options.bootstrap_servers, lambda: run(options))
    if options.out is not None:
        options.out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
