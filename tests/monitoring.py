"""Reading the monitoring files: metric names in PromQL, exposition text, rule files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "prometheus" / "rules" / "stemedb.rules.yml"
RULE_TESTS = MONITORING / "prometheus" / "tests" / "stemedb.rules.test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "stemedb-gate.json"
PROMETHEUS_CONFIGS = (
    MONITORING / "prometheus" / "prometheus.yml",
    MONITORING / "prometheus" / "local.yml",
)

# Series that Prometheus itself makes for every scrape target.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

# Our metric names share the stemedb_ prefix, which no label name or PromQL function
# has, so matching the prefix (and "up") finds them without a PromQL parser. String
# literals are blanked first, so a label value never counts as a name.
_NAME = re.compile(r"\b(stemedb_[a-z0-9_]+|up)\b(?!\s*\()")
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


def metric_names(expr: str) -> set[str]:
    """Return the metric names an expression selects (our prefix, and ``up``)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(_NAME.findall(without_strings))


def exported_names(exposition: str) -> set[str]:
    """Return every series name a text exposition can contain, from its ``# TYPE`` lines.

    A labelled counter with no children yet has no sample line, so the names come from
    the type: counters add ``_total`` and ``_created``, histograms ``_bucket``,
    ``_sum``, ``_count`` and ``_created``.
    """
    names: set[str] = set()
    for name, kind in _TYPE_LINE.findall(exposition):
        names.add(name)
        if kind == "counter":
            base = name.removesuffix("_total")
            names.update({base, f"{base}_total", f"{base}_created"})
        elif kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
    return names


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """Yield (panel title, expression) for every query of the Grafana dashboard."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def rule_exprs() -> Iterator[tuple[str, str]]:
    """Yield (alert name, expression) for every rule of the rules file.

    The file is read as text: each rule has ``- alert: NAME`` and then ``expr:``, either
    on one line or as a folded block (``expr: >``) of more deeply indented lines.
    """
    lines = RULES.read_text(encoding="utf-8").splitlines()
    alert = None
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            alert = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("expr:") and alert is not None:
            value = stripped.split(":", 1)[1].strip()
            if value in (">", ">-", "|", "|-"):
                indent = len(line) - len(line.lstrip())
                block = []
                index += 1
                while index < len(lines) and (
                    not lines[index].strip()
                    or len(lines[index]) - len(lines[index].lstrip()) > indent
                ):
                    block.append(lines[index].strip())
                    index += 1
                yield alert, " ".join(block)
                continue
            yield alert, value
        index += 1
