"""Smoke test of the scaling benchmark with every curve at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scaling import Options, format_table, run

# About a minute: five workers and one admin API start one after another.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 300


async def test_scaling_runs_tiny(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = Options(
        bootstrap_servers=kafka_bootstrap,
        agents=(100, 1000),
        lookback_entries=(0, 1000),
        lookback_agents=100,
        pending=(100,),
        admin_agents=5,
        list_requests=3,
        records=RECORDS,
        workdir=tmp_path,
    )

    report = await run(options)
    table = format_table(report)

    assert [point["agents"] for point in report["agents_curve"]] == [100, 1000]
    assert [point["seen_entries"] for point in report["lookback_curve"]] == [0, 1000]
    for point in report["agents_curve"] + report["lookback_curve"]:
        assert point["inputs"] == RECORDS
        assert point["latency"]["count"] == RECORDS
        assert point["decision"]["count"] == RECORDS
        assert point["records_per_second_after_ready"] > 0
        assert point["drain_records_per_second"] > 0
        assert point["ready_seconds"] > 0
        assert point["peak_rss_mib"] > 0
        assert point["cpu_seconds"] > 0
        assert point["preload_agents"]["records"] == point["agents"]
        assert "banned" not in point["outputs_by_topic"]
    preloaded = report["lookback_curve"][1]
    assert preloaded["preload_seen"]["records"] == 1000
    assert preloaded["input"]["duplicates_of_preloaded"] > 0
    # Every repeat of a preloaded claim is quarantined, so the restored index was read.
    assert (
        preloaded["outputs_by_topic"]["quarantine"] == preloaded["input"]["duplicates_of_preloaded"]
    )
    [admin] = report["admin_curve"]
    assert admin["pending_items"] == 100
    assert admin["list"]["first_page"]["count"] == 3
    assert admin["read_model_ready_seconds"] > 0
    assert report["machine"]["cpus"] >= 1
    assert "seen_entries 1000" in table
