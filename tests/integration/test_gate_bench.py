"""Smoke test of the gate throughput benchmark with a few hundred records."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.gate_bench import Options, format_table, run

pytestmark = pytest.mark.integration


async def test_gate_bench_runs_small(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = Options(
        bootstrap_servers=kafka_bootstrap,
        records=300,
        guarantee="at_least_once",
        seed=3,
        out=None,
        workdir=tmp_path,
    )

    report = await run(options)
    table = format_table(report)

    records = report["parameters"]["records"]
    assert records >= 300
    assert report["gate"]["inputs"] == records
    assert report["passthrough"]["inputs"] == records
    assert report["gate"]["latency"]["count"] == records
    assert report["passthrough"]["latency"]["count"] == records
    assert sum(report["gate"]["outputs_by_topic"].values()) == report["gate"]["outputs"]
    assert report["gate"]["outputs_by_topic"].get("invalid", 0) >= 1
    assert report["gate"]["cpu_seconds"] > 0
    assert report["gate"]["peak_rss_mib"] > 0
    assert report["ratio_gate_to_passthrough"]["records_per_second"] > 0
    assert "gate/passthrough throughput" in table
