"""Alert rules, their promtool tests, the dashboard and the compose services fit together."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import GateMetrics, PartitionOffsets
from tests.monitoring import (
    DASHBOARD,
    PROMETHEUS_CONFIGS,
    ROOT,
    RULE_TESTS,
    RULES,
    SCRAPE_SERIES,
    dashboard_exprs,
    exported_names,
    metric_names,
    rule_exprs,
)

# Every alert the rules file must define: the runbook's three and the worker's.
EXPECTED_ALERTS = {
    "StemeDBQuarantineOverflow",
    "StemeDBAgentFlooding",
    "StemeDBHighFalsePositiveRate",
    "StemeDBWorkerDown",
    "StemeDBConsumerLagHigh",
    "StemeDBConsumerLagUnknown",
    "StemeDBDeadLettersRising",
}


def _worker_names() -> set[str]:
    metrics = GateMetrics(CollectorRegistry())
    metrics.record_offsets([PartitionOffsets("t", 0, end=1, committed=0)], 1.0)
    body, _ = metrics.exposition()
    return exported_names(body.decode()) | SCRAPE_SERIES


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is missing on CI; .ci/run installs Debian's prometheus package")
    pytest.skip("promtool is not installed; install Debian's prometheus package to run this")


def test_metric_names_of_expression() -> None:
    expr = 'sum by (route) (rate(stemedb_routed_total{job="stemedb_x", route!="a"}[1m])) / up'
    assert metric_names(expr) == {"stemedb_routed_total", "up"}


def test_dashboard_names_exported_metrics() -> None:
    exported = _worker_names()
    exprs = list(dashboard_exprs())
    assert exprs, f"{DASHBOARD} has no queries"
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"panel {title!r} names no metric: {expr}"
        missing = names - exported
        assert not missing, f"panel {title!r} names metrics the worker does not export: {missing}"


def test_rules_name_exported_metrics() -> None:
    exported = _worker_names()
    rules = dict(rule_exprs())
    assert set(rules) == EXPECTED_ALERTS
    for alert, expr in rules.items():
        missing = metric_names(expr) - exported
        assert not missing, f"alert {alert} names metrics the worker does not export: {missing}"


def test_rules_have_promtool_tests() -> None:
    tests = RULE_TESTS.read_text(encoding="utf-8")
    for alert in EXPECTED_ALERTS:
        assert f"alertname: {alert}" in tests, f"{RULE_TESTS.name} does not test {alert}"


def test_promtool_checks_configs_and_rules() -> None:
    promtool = _promtool()
    for config in PROMETHEUS_CONFIGS:
        result = subprocess.run(
            [promtool, "check", "config", str(config)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_pass() -> None:
    promtool = _promtool()
    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_mounts_monitoring_files() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for service in ("prometheus:", "grafana:"):
        assert f"\n  {service}\n" in compose, f"docker-compose.yml has no {service} service"
    for mount in (
        "./monitoring/prometheus:/etc/prometheus:ro",
        "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro",
        "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro",
    ):
        assert mount in compose, f"docker-compose.yml does not mount {mount}"
        source = mount.split(":", 1)[0]
        assert (ROOT / source).is_dir(), f"{source} does not exist"
