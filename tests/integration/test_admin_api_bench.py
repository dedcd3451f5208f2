"""Smoke test of the admin API benchmark with a few items, so it keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.admin_api_bench import Options, format_table, run

pytestmark = pytest.mark.integration


async def test_benchmark_runs_small(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = Options(
        bootstrap_servers=kafka_bootstrap,
        items=300,
        agents=5,
        list_requests=3,
        round_trips=3,
        threshold_changes=1,
        out=None,
        workdir=tmp_path,
    )

    report = await run(options)
    table = format_table(report)

    assert report["list"]["first_page"]["count"] == 3
    assert report["list"]["summary"]["count"] == 3
    assert report["round_trip"]["approve_wait"]["count"] == 3
    assert report["round_trip"]["set_thresholds_wait_all_partitions"]["count"] == 1
    assert report["read_model_ready_seconds"] > 0
    assert "round_trip.approve_wait" in table
