"""Pure parts of the latency and profile benchmarks."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from benchmarks.latency import latency_points
from benchmarks.profile_worker import summarize


def message(partition: int, offset: int, timestamp: int, value: bytes = b"") -> SimpleNamespace:
    return SimpleNamespace(partition=partition, offset=offset, timestamp=timestamp, value=value)


def output(source: tuple[int, int], timestamp: int) -> SimpleNamespace:
    body = {"verdict": {"source_partition": source[0], "source_offset": source[1]}}
    return message(0, 0, timestamp, orjson.dumps(body))


def test_latency_points_split_inputs_by_rate_window() -> None:
    inputs = [message(0, 0, 1000), message(1, 0, 1500), message(0, 1, 2000)]
    outputs = [output((0, 0), 1010), output((1, 0), 1530), output((0, 0), 1400)]
    points = latency_points(inputs, outputs, [10.0, 20.0], [(9.5, 1000), (19.0, 2000)])

    first, second = points
    assert first["records"] == 2
    assert first["without_output"] == 0
    assert first["latency"]["max_ms"] == 30.0
    assert second["records"] == 1
    assert second["without_output"] == 1
    assert second["rate_reached"] == 19.0


def test_profile_summary_counts_own_and_inclusive_samples() -> None:
    lines = [
        "run_worker (streams/worker.py:71);Gate.route (streams/gate.py:240);send (k.py:3) 3",
        "run_worker (streams/worker.py:71);Gate.route (streams/gate.py:251) 1",
        "",
    ]
    summary = summarize(lines)

    assert summary.samples == 4
    assert summary.own[0] == ("send (k.py)", 3)
    assert ("Gate.route (streams/gate.py)", 4) in summary.inclusive
    assert all(not name.startswith("run_worker") for name, _ in summary.inclusive)
