"""Plot the curves of a ``benchmarks.scaling`` report, one PNG per curve.

Install the plotting extra first (``pip install -e '.[bench]'``), then::

    python -m benchmarks.plot docs/benchmarks/scaling.json --out-dir docs/benchmarks

Writes ``scaling-agents.png``, ``scaling-lookback.png`` and ``scaling-admin.png`` for
the curves the report contains, or ``latency.png`` for a ``benchmarks.latency`` report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # Files only; no display is needed or opened.

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

# Throughput at the most agents may differ from that at the fewest by this share.
THROUGHPUT_TOLERANCE = 0.2
# p99 decision latency allowed at half the maximum throughput.
LATENCY_TARGET_MS = 50.0
FIGURE_SIZE_INCHES = (7.0, 4.5)
DPI = 120
ADMIN_KINDS = {
    "first_page": "first page",
    "page_500_by_cursor": "page 500 by cursor",
    "page_by_agent": "by agent_id",
    "page_by_reason": "by reason",
    "page_by_agent_and_reason": "by agent_id and reason",
    "summary": "summary",
}


def _throughput_axes(axes: Axes, points: list[dict[str, Any]], x_key: str) -> None:
    xs = [point[x_key] for point in points]
    axes.plot(
        xs,
        [point["records_per_second_after_ready"] for point in points],
        marker="o",
        label="from ready to last output",
    )
    axes.plot(
        xs,
        [point["drain_records_per_second"] for point in points],
        marker="s",
        linestyle="--",
        label="first to last output (drain)",
    )
    axes.set_ylabel("throughput (records/s)")
    axes.set_ylim(bottom=0)
    axes.grid(True, which="both", alpha=0.3)


def _caption(report: dict[str, Any]) -> str:
    machine = report["machine"]
    return (
        f"{report['parameters']['records']} records per point; {machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}; {report['started_at'][:10]}"
    )


def plot_agents(report: dict[str, Any], path: Path) -> None:
    """Plot throughput against agents on a log axis, with the ±20% band of the first point."""
    points = sorted(report["agents_curve"], key=lambda point: point["agents"])
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES)
    _throughput_axes(axes, points, "agents")
    base = points[0]["records_per_second_after_ready"]
    axes.axhspan(
        base * (1 - THROUGHPUT_TOLERANCE),
        base * (1 + THROUGHPUT_TOLERANCE),
        color="tab:green",
        alpha=0.15,
        label=f"±{THROUGHPUT_TOLERANCE:.0%} of {points[0]['agents']:,} agents",
    )
    axes.set_xscale("log")
    axes.set_xlabel("agents with state in the worker (log scale)")
    axes.set_title("Gate throughput against agents")
    _finish(figure, axes, report, path)


def plot_lookback(report: dict[str, Any], path: Path) -> None:
    """Plot throughput against entries in the duplicate look-back index."""
    points = sorted(report["lookback_curve"], key=lambda point: point["seen_entries"])
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES)
    _throughput_axes(axes, points, "seen_entries")
    axes.set_xlabel(
        f"entries in the look-back index ({report['parameters']['lookback_agents']:,} agents)"
    )
    axes.set_title("Gate throughput against look-back entries")
    _finish(figure, axes, report, path)


def plot_admin(report: dict[str, Any], path: Path) -> None:
    """Plot list latency p50 and p99 of each request kind against pending items."""
    points = sorted(report["admin_curve"], key=lambda point: point["pending_items"])
    figure, (p50_axes, p99_axes) = plt.subplots(
        1, 2, figsize=(FIGURE_SIZE_INCHES[0] * 1.6, FIGURE_SIZE_INCHES[1])
    )
    xs = [point["pending_items"] for point in points]
    for kind, label in ADMIN_KINDS.items():
        if not all(kind in point["list"] for point in points):
            continue
        for axes, quantile in ((p50_axes, "p50_ms"), (p99_axes, "p99_ms")):
            axes.plot(
                xs, [point["list"][kind][quantile] for point in points], marker="o", label=label
            )
    for axes, name in ((p50_axes, "p50"), (p99_axes, "p99")):
        axes.set_xscale("log")
        axes.set_xlabel("pending quarantine items (log scale)")
        axes.set_ylabel(f"{name} latency (ms)")
        axes.set_ylim(bottom=0)
        axes.set_title(f"Admin list latency, {name}")
        axes.grid(True, which="both", alpha=0.3)
    p99_axes.legend(fontsize="small")
    figure.text(0.01, 0.01, _caption_admin(report), fontsize="small")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _caption_admin(report: dict[str, Any]) -> str:
    machine = report["machine"]
    return (
        f"{report['parameters']['list_requests']} requests per kind, 100 items per page; "
        f"{machine['cpus']} CPUs, {machine['memory_gib']} GiB; {report['started_at'][:10]}"
    )


def _finish(figure: Any, axes: Axes, report: dict[str, Any], path: Path) -> None:
    axes.legend(fontsize="small")
    figure.text(0.01, 0.01, _caption(report), fontsize="small")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def plot_latency(report: dict[str, Any], path: Path) -> None:
    """Plot a ``benchmarks.latency`` report: p50, p99 and max against the input rate."""
    points = report["points"]
    rates = [point["rate_reached"] for point in points]
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_INCHES)
    for key, label, marker in (
        ("p50_ms", "p50", "o"),
        ("p99_ms", "p99", "s"),
        ("max_ms", "max", "^"),
    ):
        axes.plot(rates, [point["latency"][key] for point in points], marker=marker, label=label)
    axes.axhline(LATENCY_TARGET_MS, color="tab:red", linestyle=":", label="p99 target")
    axes.set_xlabel("input rate (records/s)")
    axes.set_ylabel("broker time in to out (ms)")
    axes.set_ylim(bottom=0)
    axes.set_title("Decision latency at steady input rates")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    machine = report["machine"]
    seconds = report["parameters"]["seconds_per_rate"]
    figure.text(
        0.01,
        0.01,
        f"{seconds:g} s per rate; {machine['cpus']} CPUs, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}",
        fontsize="small",
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def plot_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write one PNG per curve in ``report`` to ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, name, plot in (
        ("agents_curve", "scaling-agents.png", plot_agents),
        ("lookback_curve", "scaling-lookback.png", plot_lookback),
        ("admin_curve", "scaling-admin.png", plot_admin),
    ):
        if report.get(key):
            path = out_dir / name
            plot(report, path)
            written.append(path)
    if report.get("points"):
        path = out_dir / "latency.png"
        plot_latency(report, path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.plot",
        description="Plot a benchmarks.scaling report, one PNG per curve, or a "
        "benchmarks.latency report.",
    )
    parser.add_argument(
        "report", type=Path, help="JSON written by benchmarks.scaling or benchmarks.latency --out"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("docs/benchmarks"),
        help="folder for the PNG files (default docs/benchmarks)",
    )
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        parser.error(f"cannot read the report {str(args.report)!r}: {exc}")
    for path in plot_report(report, args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
