"""Percentiles and the table of the admin API benchmark."""

from __future__ import annotations

import pytest

from benchmarks.admin_api_bench import format_table, summarize


def test_summarize_percentiles() -> None:
    figures = summarize([n / 1000 for n in range(1, 101)])

    assert figures["count"] == 100
    assert figures["p50_ms"] == 50.5
    assert figures["p99_ms"] == pytest.approx(99.01)
    assert figures["max_ms"] == 100.0


def test_summarize_single_and_empty() -> None:
    assert summarize([0.002])["p99_ms"] == 2.0
    assert summarize([]) == {"count": 0}


def test_table_lists_every_figure() -> None:
    figures = summarize([0.001, 0.002])
    report = {
        "parameters": {"items": 10, "agents": 2},
        "read_model_ready_seconds": 0.5,
        "api_rss_mib_when_ready": 70.0,
        "list": {"first_page": figures},
        "round_trip": {"approve_wait": figures},
    }

    table = format_table(report)

    assert "list.first_page" in table
    assert "round_trip.approve_wait" in table
    assert "items 10, agents 2" in table
