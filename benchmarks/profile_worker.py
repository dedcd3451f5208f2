"""Profile a gate worker draining a backlog with py-spy, and list where its time goes.

Run with a broker at ``--bootstrap-servers`` (``stemedb-gate broker start`` gives one)::

    python -m benchmarks.profile_worker --records 40000 --seconds 30 --out profile.txt

It produces ``--records`` signed records (the benchmark's mix) to fresh topics, starts
``stemedb-gate worker``, waits ``--warmup`` seconds for the worker to start and restore,
then samples it with ``py-spy record --format raw`` for ``--seconds``. The raw
profile goes to ``--out``, one collapsed stack per line followed by its sample count.
The summary goes to standard output. It lists the records routed per second while
sampling, the functions with the most samples of their own, and the functions with
the most samples including their callees. ``--summarize FILE`` prints the summary of
an earlier raw profile without running anything.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.admin_api_bench import _settings_env
from benchmarks.gate_bench import MeasuredProcess, bench_settings, committed_total, produce
from streams.faults import build_input
from streams.topics import ASSERTIONS
from streams.topicsetup import admin_client, ensure_topics

# Every sample of the worker's event loop passes through these frames, so they show
# nothing about where the time goes and the inclusive list leaves them out.
LOOP_FRAMES = (
    "<module>",
    "_run_module_as_main",
    "_run_code",
    "main (streams/cli.py",
    "_worker (streams/cli_gate.py",
    "run_worker",
    "Worker.execute_from_commandline",
    "BaseEventLoop.",
    "Handle._run",
    "Agent._execute_actor",
    "Thread._bootstrap",
)


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    own: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]


def summarize(lines: Iterable[str], top: int = 10) -> ProfileSummary:
    """Count samples per function from py-spy's raw output (``stack;stack count``)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [frame for frame in stack.split(";") if frame]
        if not frames:
            continue
        own[_function(frames[-1])] += count
        for name in {_function(frame) for frame in frames}:
            if not name.startswith(LOOP_FRAMES):
                inclusive[name] += count
    return ProfileSummary(total, own.most_common(top), inclusive.most_common(top))


def _function(frame: str) -> str:
    """Drop the line number, so samples on any line of a function add up."""
    name, _, location = frame.partition(" (")
    path = location.rsplit(":", 1)[0]
    return f"{name} ({path})" if path else name


def format_summary(summary: ProfileSummary) -> str:
    lines = [f"samples: {summary.samples}", "", "own samples:"]
    lines += [f"  {count / summary.samples:6.1%}  {name}" for name, count in summary.own]
    lines += ["", "including callees:"]
    lines += [f"  {count / summary.samples:6.1%}  {name}" for name, count in summary.inclusive]
    return "\n".join(lines)


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    async with admin_client(bootstrap) as client:
        return await committed_total(client, group, topic)


async def profile(options: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gate-profile-"))
    settings = bench_settings(workdir, options.bootstrap_servers, "gate-profile")
    kafka = settings.kafka
    await ensure_topics(settings)
    records, _ = build_input(options.records, options.seed)
    print(f"profile: producing {len(records)} records", flush=True)
    await produce(kafka.bootstrap_servers, kafka.topic(ASSERTIONS), records)

    worker = MeasuredProcess(
        ["streams.cli", "worker"], _settings_env(settings), workdir / "worker.log"
    )
    worker.start()
    assert worker.process is not None
    try:
        print(f"profile: worker started, sampling after {options.warmup} s", flush=True)
        await asyncio.sleep(options.warmup)
        worker.check_alive()
        before = await _committed(kafka.bootstrap_servers, kafka.app_id, kafka.topic(ASSERTIONS))
        started = time.monotonic()
        command = [
            options.py_spy,
            "record",
            "--pid",
            str(worker.process.pid),
            "--duration",
            str(options.seconds),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(options.out),
        ]
        await asyncio.to_thread(subprocess.run, command, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        after = await _committed(kafka.bootstrap_servers, kafka.app_id, kafka.topic(ASSERTIONS))
    finally:
        worker.stop()
    rate = (after - before) / elapsed
    print(f"records committed per second while sampling: {rate:.0f}")
    if after >= len(records):
        print("NOTE: the worker finished the backlog while sampling; use more --records")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--seconds", type=int, default=30, help="sampling time in seconds")
    parser.add_argument("--warmup", type=float, default=12.0, help="seconds before sampling")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:19092")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--summarize", type=Path, help="only summarize this raw profile")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    raw_path = options.summarize
    if raw_path is None:
        asyncio.run(profile(options))
        raw_path = options.out
    with raw_path.open() as raw:
        print(format_summary(summarize(raw, options.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
