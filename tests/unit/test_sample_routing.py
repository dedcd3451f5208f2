"""Sample plans run through the gate's own decode and decision logic, without a broker.

Every record is decoded and decided in plan order, as one worker would, with one broker
millisecond between records. The routing summary of the result must pass every check,
which shows that each role is caught by exactly its intended rule and honest agents pass.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from schemas.admin import AdminEvent, AdminEventKind
from schemas.invalid import InvalidRecord
from schemas.verdict import RoutedAssertion, Verdict
from streams.decision import AgentState, SeenEntry, decide
from streams.decode import DecodeFailure, decode
from streams.sample import Role, build_plan
from streams.settings import GateSettings
from streams.summary import RoutingSummary, RoutingTally, summarize

START_MS = 1_772_368_215_000  # 2026-03-01T12:30:15Z
NOW = datetime.fromtimestamp(START_MS / 1000, tz=UTC)


def _route_plan(seed: int, honest_agents: int, per_agent: int) -> RoutingSummary:
    settings = GateSettings()
    plan = build_plan(seed, honest_agents, per_agent, now=NOW)
    tally = RoutingTally(plan.manifest)
    states: dict[str, AgentState] = defaultdict(AgentState)
    seen: dict[str, dict[str, SeenEntry]] = defaultdict(dict)

    for offset, record in enumerate(plan.records):
        now_ms = START_MS + offset
        decoded = decode(
            record.key,
            record.value,
            max_bytes=settings.kafka.max_record_bytes,
            require_signatures=True,
        )
        if isinstance(decoded, DecodeFailure):
            dead_letter = InvalidRecord(
                kind=decoded.kind,
                message=decoded.message,
                field=decoded.field,
                source_topic="stemedb.assertions",
                source_partition=0,
                source_offset=offset,
                key=record.key.decode() if record.key else None,
                detected_at=NOW,
            )
            tally.add("invalid", dead_letter.model_dump_json().encode())
            continue

        agent_id = decoded.assertion.agent_id
        decision = decide(
            decoded.assertion,
            states[agent_id],
            seen[agent_id].get,
            now_ms,
            offset,
            settings.content_defense,
            settings.circuit_breaker,
        )
        states[agent_id] = decision.state
        seen[agent_id].update(decision.seen_writes)
        verdict = Verdict(
            route=decision.route,
            reasons=list(decision.reasons),
            quality_score=decision.score.value if decision.score else None,
            breaker_state=decision.state.breaker.state,
            decided_at=NOW,
            gate_version="test",
            source_partition=0,
            source_offset=offset,
        )
        routed = RoutedAssertion(assertion=decoded.fields, verdict=verdict)
        tally.add(decision.route.value, routed.model_dump_json().encode())
        for transition in decision.transitions:
            event = AdminEvent(
                kind=AdminEventKind.BREAKER_TRANSITION,
                agent_id=agent_id,
                detail={
                    "from": transition.from_state.value,
                    "to": transition.to_state.value,
                    "reason": transition.reason,
                },
                at=datetime.fromtimestamp(transition.at_ms / 1000, tz=UTC),
            )
            tally.add("admin-events", event.model_dump_json().encode())

    return summarize(tally, plan.manifest)


@pytest.mark.parametrize("seed", [0, 7, 18, 12345])
def test_sample_routing_default_plan_passes(seed: int) -> None:
    summary = _route_plan(seed, 8, 40)
    failed = [check.description for check in summary.checks if not check.passed]
    assert failed == []


def test_sample_routing_smallest_plan_passes() -> None:
    summary = _route_plan(3, 2, 1)
    failed = [check.description for check in summary.checks if not check.passed]
    assert failed == []


def test_sample_routing_default_plan_counts() -> None:
    """With default settings the breakers trip at known records, so counts are exact."""
    summary = _route_plan(7, 8, 40)
    flooder = summary.by_role[Role.FLOODER]
    assert flooder.routes == {"accepted": 51, "banned": 249}
    low_quality = summary.by_role[Role.LOW_QUALITY]
    assert low_quality.routes == {"quarantine": 20, "banned": 10}
    retry = summary.by_role[Role.RETRY_LOOP]
    assert retry.routes == {"accepted": 10, "quarantine": 10, "banned": 20}
    assert sorted((o.role.value, o.reason) for o in summary.breakers_opened) == [
        ("flooder", "flooding"),
        ("low_quality", "failure_rate"),
        ("retry_loop", "failure_rate"),
    ]
