"""Drill traffic has the shape each cause needs, and the drill Prometheus config."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson

from streams.drills import (
    FLOOD_BATCH,
    LOW_QUALITY_AGENTS,
    LOW_QUALITY_PER_AGENT,
    STRICT_AGENTS,
    SURGE_AGENTS,
    DrillRecord,
    flood_records,
    low_quality_records,
    strict_records,
    surge_records,
    write_prometheus_config,
)
from streams.scoring import ClaimView, ScoringContext, score
from streams.settings import CircuitBreakerSettings, ContentDefenseSettings
from tests.monitoring import MONITORING

CD = ContentDefenseSettings()
CB = CircuitBreakerSettings()


def _fields(record: DrillRecord) -> dict[str, object]:
    fields: dict[str, object] = orjson.loads(record.value)
    return fields


def _quality(record: DrillRecord) -> float:
    fields = _fields(record)
    view = ClaimView(
        subject=str(fields["subject"]),
        predicate=str(fields["predicate"]),
        object=str(fields["object"]),
        confidence=float(str(fields["confidence"])),
        sources=tuple(str(s) for s in fields["sources"]),  # type: ignore[attr-defined]
        created_at=datetime.fromisoformat(str(fields["created_at"]).replace("Z", "+00:00")),
    )
    context = ScoringContext(
        record_time=datetime.now(UTC),
        max_future_skew_seconds=CD.max_future_skew_seconds,
        max_age_hours=CD.max_age_hours,
    )
    return score(view, context).value


def test_flood_resends_one_batch() -> None:
    records = flood_records(seed=1, count=35)
    assert len({r.agent_id for r in records}) == 1
    assert len({r.assertion_id for r in records}) == FLOOD_BATCH
    assert records[0].value == records[FLOOD_BATCH].value


def test_low_quality_all_below_threshold() -> None:
    records = low_quality_records(seed=2)
    per_agent = Counter(r.agent_id for r in records)
    assert len(per_agent) == LOW_QUALITY_AGENTS
    assert set(per_agent.values()) == {LOW_QUALITY_PER_AGENT}
    for record in records:
        assert _quality(record) < CD.quality_threshold, _fields(record)


def test_surge_share_stays_below_failure_rate() -> None:
    """At every point of each agent's run, its quarantined share is below the threshold."""
    records = surge_records(seed=3)
    assert len({r.agent_id for r in records}) == SURGE_AGENTS
    seen: dict[str, int] = defaultdict(int)
    quarantined: dict[str, int] = defaultdict(int)
    for record in records:
        fields = _fields(record)
        seen[record.agent_id] += 1
        if not fields["sources"]:
            assert float(str(fields["confidence"])) >= CD.confidence_threshold
            quarantined[record.agent_id] += 1
        else:
            assert _quality(record) >= CD.quality_threshold
            assert float(str(fields["confidence"])) < CD.confidence_threshold
        if seen[record.agent_id] >= CB.min_requests:
            share = quarantined[record.agent_id] / seen[record.agent_id]
            assert share < CB.failure_rate_threshold
    assert max(seen.values()) < CB.max_submissions_per_minute


def test_strict_records_pass_defaults() -> None:
    """Under the default thresholds the strict drill's traffic would all be accepted."""
    records = strict_records(seed=4)
    per_agent = Counter(r.agent_id for r in records)
    assert len(per_agent) == STRICT_AGENTS
    assert max(per_agent.values()) < CB.min_requests
    for record in records:
        fields = _fields(record)
        assert _quality(record) >= CD.quality_threshold
        assert 0.5 <= float(str(fields["confidence"])) < CD.untrusted_confidence_threshold
        assert fields["sources"]


def test_drill_config_shortens_for(tmp_path: Path) -> None:
    config = write_prometheus_config(MONITORING / "prometheus", tmp_path, for_seconds=30)
    rules = (tmp_path / "rules" / "stemedb.rules.yml").read_text(encoding="utf-8")
    source = (MONITORING / "prometheus" / "rules" / "stemedb.rules.yml").read_text("utf-8")

    assert config.read_text(encoding="utf-8") == (
        MONITORING / "prometheus" / "local.yml"
    ).read_text(encoding="utf-8")
    assert rules.count("for: 30s") == source.count("for: ")
    assert "for: 10m" not in rules
    assert [line for line in rules.splitlines() if "expr" in line] == [
        line for line in source.splitlines() if "expr" in line
    ]


def test_drill_config_keeps_for(tmp_path: Path) -> None:
    write_prometheus_config(MONITORING / "prometheus", tmp_path, for_seconds=None)
    rules = (tmp_path / "rules" / "stemedb.rules.yml").read_text(encoding="utf-8")
    source = (MONITORING / "prometheus" / "rules" / "stemedb.rules.yml").read_text("utf-8")
    assert rules == source
