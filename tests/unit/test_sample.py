"""Sample traffic plans and the routing summary, without a broker."""

from __future__ import annotations

import functools
import io
from collections import Counter
from datetime import UTC, datetime

import orjson

from schemas.admin import AdminEvent, AdminEventKind
from schemas.assertion import Assertion
from schemas.breaker import BreakerState
from schemas.invalid import InvalidKind, InvalidRecord
from schemas.signing import verify
from schemas.verdict import Reason, Route, RoutedAssertion, Verdict
from streams.sample import (
    FLOOD_RECORDS,
    HIGH_CONFIDENCE,
    HONEST_CONFIDENCE,
    JUNK_VALUES,
    LOW_QUALITY_RECORDS,
    MAX_HONEST_PER_AGENT,
    NEW_AGENT_RECORDS,
    RETRY_CLAIMS,
    RETRY_SENDS,
    Manifest,
    Role,
    SamplePlan,
    SampleRecord,
    build_plan,
    progress_printer,
)
from streams.sample_claims import is_clean_name, load_claims, normalize_claim
from streams.summary import (
    BreakerOpening,
    Check,
    RoleCounts,
    RoutingSummary,
    RoutingTally,
    format_summary,
    summarize,
)

NOW = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
CREATED_AT = "2026-03-01T12:30:15.250Z"


@functools.cache
def _plan(seed: int = 7) -> SamplePlan:
    return build_plan(seed, 8, 40, now=NOW)


def _fields(record: SampleRecord) -> dict[str, object]:
    assert record.value is not None
    fields = orjson.loads(record.value)
    assert isinstance(fields, dict)
    return fields


def _records(plan: SamplePlan, role: Role) -> list[SampleRecord]:
    return [record for record in plan.records if record.role is role]


def test_build_plan_same_seed_same_bytes() -> None:
    first = build_plan(11, 3, 5, now=NOW)
    second = build_plan(11, 3, 5, now=NOW)
    assert first.records == second.records
    assert first.manifest == second.manifest


def test_build_plan_other_seed_other_agents() -> None:
    first = build_plan(11, 3, 5, now=NOW)
    second = build_plan(12, 3, 5, now=NOW)
    assert not set(first.manifest.roles) & set(second.manifest.roles)


def test_build_plan_role_counts() -> None:
    plan = _plan()
    sent = Counter(record.role for record in plan.records)
    assert sent == {
        Role.HONEST: 8 * 40,
        Role.FLOODER: FLOOD_RECORDS,
        Role.LOW_QUALITY: LOW_QUALITY_RECORDS,
        Role.RETRY_LOOP: RETRY_CLAIMS * RETRY_SENDS,
        Role.NEW_HIGH_CONFIDENCE: NEW_AGENT_RECORDS,
        Role.MALFORMED: 6,
    }
    assert dict(plan.manifest.sent_by_role) == dict(sent)
    assert plan.manifest.expected_routed == len(plan.records) - 6
    assert plan.manifest.expected_invalid == 6
    assert plan.manifest.expected_total == len(plan.records)


def test_build_plan_manifest_agents_per_role() -> None:
    manifest = _plan().manifest
    assert len(manifest.agents(Role.HONEST)) == 8
    for role in (Role.FLOODER, Role.LOW_QUALITY, Role.RETRY_LOOP, Role.NEW_HIGH_CONFIDENCE):
        assert len(manifest.agents(role)) == 1, role
    assert manifest.agents(Role.MALFORMED) == []


def test_build_plan_keys_match_agent_ids() -> None:
    plan = _plan()
    for record in plan.records:
        if record.role is Role.MALFORMED:
            continue
        fields = _fields(record)
        assert record.key == str(fields["agent_id"]).encode()
        assert plan.manifest.roles[str(fields["agent_id"])] is record.role


def test_build_plan_signatures_verify() -> None:
    for record in _plan().records:
        if record.value is None or not record.value.startswith(b"{"):
            continue
        fields = _fields(record)
        if record.expected_invalid is InvalidKind.BAD_SIGNATURE:
            assert not verify(fields)
        else:
            assert verify(fields), fields


def test_build_plan_honest_records_validate() -> None:
    for record in _records(_plan(), Role.HONEST):
        assert record.value is not None
        assertion = Assertion.model_validate_json(record.value)
        assert HONEST_CONFIDENCE[0] <= assertion.confidence <= HONEST_CONFIDENCE[1]
        assert 1 <= len(assertion.sources) <= 2
        assert all(source.startswith("https://www.geonames.org/") for source in assertion.sources)
        assert _fields(record)["created_at"] == CREATED_AT


def test_build_plan_honest_within_flood_limit() -> None:
    per_agent = Counter(_fields(record)["agent_id"] for record in _records(_plan(), Role.HONEST))
    assert set(per_agent.values()) == {40}
    assert max(per_agent.values()) <= MAX_HONEST_PER_AGENT


def test_build_plan_claims_distinct() -> None:
    """Ids and claims of every role except retry_loop occur once in the whole plan."""
    ids: Counter[str] = Counter()
    claims: Counter[str] = Counter()
    for record in _plan().records:
        if record.role in (Role.MALFORMED, Role.RETRY_LOOP):
            continue
        fields = _fields(record)
        ids[str(fields["id"])] += 1
        claims[
            normalize_claim(str(fields["subject"]), str(fields["predicate"]), str(fields["object"]))
        ] += 1
    assert ids.most_common(1)[0][1] == 1
    assert claims.most_common(1)[0][1] == 1


def test_build_plan_predicates_snake_case() -> None:
    for record in _plan().records:
        if record.role is Role.MALFORMED:
            continue
        predicate = str(_fields(record)["predicate"])
        assert predicate.isidentifier(), predicate
        assert predicate == predicate.lower(), predicate


def test_build_plan_flood_is_one_burst() -> None:
    roles = [record.role for record in _plan().records]
    start = roles.index(Role.FLOODER)
    assert roles[start : start + FLOOD_RECORDS] == [Role.FLOODER] * FLOOD_RECORDS
    assert start > 0


def test_build_plan_roles_interleaved() -> None:
    first_hundred = {record.role for record in _plan().records[:100]}
    assert {Role.HONEST, Role.LOW_QUALITY, Role.RETRY_LOOP} <= first_hundred


def test_build_plan_low_quality_defects() -> None:
    records = _records(_plan(), Role.LOW_QUALITY)
    junk = {value.casefold() for value in JUNK_VALUES}
    keys = set()
    for record in records:
        fields = _fields(record)
        subject, obj = str(fields["subject"]), str(fields["object"])
        has_defect = subject.casefold() in junk or obj.casefold() in junk or subject == obj
        assert has_defect, fields
        assert float(str(fields["confidence"])) < 0.85
        assert fields["sources"]
        keys.add(normalize_claim(subject, str(fields["predicate"]), obj))
    assert len(keys) == LOW_QUALITY_RECORDS


def test_build_plan_retry_resends_same_bytes() -> None:
    records = _records(_plan(), Role.RETRY_LOOP)
    copies = Counter(record.value for record in records)
    assert len(copies) == RETRY_CLAIMS
    assert set(copies.values()) == {RETRY_SENDS}
    first_batch = [_fields(record)["id"] for record in records[:RETRY_CLAIMS]]
    assert len(set(first_batch)) == RETRY_CLAIMS


def test_build_plan_new_agent_unsourced() -> None:
    for record in _records(_plan(), Role.NEW_HIGH_CONFIDENCE):
        assert record.value is not None
        assertion = Assertion.model_validate_json(record.value)
        assert HIGH_CONFIDENCE[0] <= assertion.confidence <= HIGH_CONFIDENCE[1]
        assert assertion.sources == []


def test_build_plan_malformed_cases() -> None:
    plan = _plan()
    carrier = plan.manifest.agents(Role.HONEST)[0]
    records = {record.expected_invalid: record for record in _records(plan, Role.MALFORMED)}
    assert Counter(str(r.expected_invalid) for r in _records(plan, Role.MALFORMED)) == dict(
        plan.manifest.expected_invalid_kinds
    )
    assert all(record.key == carrier.encode() for record in _records(plan, Role.MALFORMED))

    assert records[InvalidKind.DECODE_ERROR].value == b"not-json"
    assert records[InvalidKind.NULL_VALUE].value is None
    mismatch = _fields(records[InvalidKind.KEY_MISMATCH])
    assert mismatch["agent_id"] != carrier
    assert mismatch["agent_id"] in plan.manifest.agents(Role.HONEST)
    bad_signature = records[InvalidKind.BAD_SIGNATURE]
    assert bad_signature.value is not None
    Assertion.model_validate_json(bad_signature.value)


def test_build_plan_malformed_schema_errors() -> None:
    schema_errors = [
        _fields(record)
        for record in _records(_plan(), Role.MALFORMED)
        if record.expected_invalid is InvalidKind.SCHEMA_ERROR
    ]
    assert [fields.get("confidence") for fields in schema_errors if "subject" in fields] == ["high"]
    assert len([fields for fields in schema_errors if "subject" not in fields]) == 1


def test_build_plan_rejects_too_many_per_agent() -> None:
    try:
        build_plan(1, 8, MAX_HONEST_PER_AGENT + 1, now=NOW)
    except ValueError as exc:
        assert "per_agent=41" in str(exc)
    else:
        raise AssertionError("per_agent above the limit was accepted")


def test_build_plan_rejects_one_honest_agent() -> None:
    try:
        build_plan(1, 1, 10, now=NOW)
    except ValueError as exc:
        assert "honest_agents=1" in str(exc)
    else:
        raise AssertionError("a single honest agent was accepted")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_printer_log_prints_tenths() -> None:
    stream = io.StringIO()
    report = progress_printer(stream)
    for done in range(1, 101):
        report(done, 100)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sent 1/100"
    assert lines[1] == "sent 10/100"
    assert lines[-1] == "sent 100/100"
    assert len(lines) == 11


def test_progress_printer_terminal_rewrites_line() -> None:
    stream = _Terminal()
    report = progress_printer(stream)
    report(1, 3)
    report(2, 3)
    report(3, 3)
    assert stream.getvalue() == "\rsent 1/3\rsent 2/3\rsent 3/3\n"


def test_manifest_json_round_trip() -> None:
    manifest = _plan().manifest
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_load_claims_clean_and_distinct() -> None:
    claims = load_claims()
    assert len(claims) > 10_000
    assert len({claim.key() for claim in claims}) == len(claims)
    capitals = {(c.subject, c.object) for c in claims if c.predicate == "capital_of"}
    assert ("Paris", "France") in capitals
    assert not [c for c in claims if c.subject.casefold() == c.object.casefold()]


def test_is_clean_name_cases() -> None:
    for name in ("Paris", "São Paulo", "St. Louis", "Pa'anga", "les Escaldes"):
        assert is_clean_name(name), name
    for name in ("Bar", "Nan", "X1", "Aaa", "A  B", "n/a", "Washington, D.C."):
        assert not is_clean_name(name), name


def _routed(agent_id: str, route: Route, reasons: list[Reason], offset: int) -> bytes:
    verdict = Verdict(
        route=route,
        reasons=reasons,
        breaker_state=BreakerState.CLOSED,
        decided_at=NOW,
        gate_version="test",
        source_partition=0,
        source_offset=offset,
    )
    record = RoutedAssertion(assertion={"agent_id": agent_id}, verdict=verdict)
    return record.model_dump_json().encode()


def _opened(agent_id: str, reason: str) -> bytes:
    event = AdminEvent(
        kind=AdminEventKind.BREAKER_TRANSITION,
        agent_id=agent_id,
        detail={"from": "CLOSED", "to": "OPEN", "reason": reason},
        at=NOW,
    )
    return event.model_dump_json().encode()


def test_routing_tally_skips_foreign_and_repeats() -> None:
    manifest = _plan().manifest
    honest = manifest.agents(Role.HONEST)[0]
    tally = RoutingTally(manifest)
    tally.add("accepted", _routed(honest, Route.ACCEPTED, [], 1))
    tally.add("accepted", _routed(honest, Route.ACCEPTED, [], 1))
    tally.add("accepted", _routed("f" * 64, Route.ACCEPTED, [], 2))
    tally.add("accepted", b"{}")
    tally.add("admin-events", _opened("f" * 64, "flooding"))
    assert tally.seen == 1
    assert tally.redelivered == 1
    assert tally.unreadable == 1
    assert tally.openings == []


def test_routing_tally_counts_invalid_under_run_keys() -> None:
    manifest = _plan().manifest
    honest = manifest.agents(Role.HONEST)[0]
    tally = RoutingTally(manifest)
    for offset, key in enumerate([honest, "someone-else", None]):
        record = InvalidRecord(
            kind=InvalidKind.DECODE_ERROR,
            message="value is not UTF-8 JSON",
            source_topic="stemedb.assertions",
            source_partition=0,
            source_offset=offset,
            key=key,
            detected_at=NOW,
        )
        tally.add("invalid", record.model_dump_json().encode())
    assert tally.invalid_by_kind == {"decode_error": 1}
    assert tally.role_routes[Role.MALFORMED] == {"invalid": 1}


def test_summarize_flags_quarantined_honest_agent() -> None:
    manifest = _plan().manifest
    honest = manifest.agents(Role.HONEST)[0]
    tally = RoutingTally(manifest)
    for offset in range(10):
        tally.add("quarantine", _routed(honest, Route.QUARANTINE, [Reason.LOW_QUALITY], offset))
    tally.add("admin-events", _opened(honest, "failure_rate"))
    summary = summarize(tally, manifest)
    failed = [check.description for check in summary.checks if not check.passed]
    assert any(text.startswith("honest: 0.0% of 320 accepted") for text in failed)
    assert "honest: no breaker opened (1 opened)" in failed
    assert not summary.complete
    assert not summary.passed


def _hand_made_summary() -> RoutingSummary:
    flooder = "ab" * 32
    return RoutingSummary(
        seed=7,
        expected_total=20,
        seen_total=19,
        routes=Counter({"accepted": 10, "quarantine": 3, "banned": 5, "invalid": 1}),
        reasons=Counter({"CircuitOpen": 5, "LowQuality": 3}),
        by_role={
            Role.HONEST: RoleCounts(2, 10, Counter({"accepted": 10})),
            Role.FLOODER: RoleCounts(
                1, 8, Counter({"accepted": 3, "banned": 5}), Counter({"CircuitOpen": 5})
            ),
            Role.MALFORMED: RoleCounts(0, 2, Counter({"invalid": 1})),
        },
        invalid_by_kind=Counter({"decode_error": 1}),
        breakers_opened=[BreakerOpening(flooder, Role.FLOODER, "CLOSED", "flooding", NOW)],
        honest_accepted_percent=100.0,
        redelivered=2,
        unreadable=0,
        checks=[Check("honest: 100.0% of 10 accepted", True), Check("malformed: 1 of 2", False)],
    )


def test_format_summary_tables() -> None:
    lines = format_summary(_hand_made_summary()).splitlines()
    assert lines[0] == (
        "Routing summary of sample seed 7: 19 of 20 records seen (INCOMPLETE: 1 not routed yet)"
    )
    rows = [line.split() for line in lines]
    assert ["route", "records"] in rows
    assert ["accepted", "10"] in rows
    assert ["invalid", "1"] in rows
    assert ["CircuitOpen", "5"] in rows
    assert "accepted         10" in lines
    flooder_row = next(line for line in lines if line.startswith("flooder"))
    assert flooder_row.split() == ["flooder", "1", "8", "3", "0", "5", "0", "CircuitOpen", "5"]
    malformed_row = next(line for line in lines if line.startswith("malformed"))
    assert malformed_row.split()[:3] == ["malformed", "-", "2"]
    assert ["decode_error", "1"] in rows


def test_format_summary_breakers_and_checks() -> None:
    text = format_summary(_hand_made_summary())
    lines = text.splitlines()
    assert "breakers opened: 1" in lines
    opening = next(line for line in lines if line.startswith("abababababab..."))
    assert opening.split() == [
        "abababababab...",
        "flooder",
        "CLOSED",
        "flooding",
        "2026-03-01T12:30:15+00:00",
    ]
    assert "skipped: 2 redelivered records, 0 records that do not parse" in lines
    assert lines[-3:] == [
        "checks:",
        "  PASS  honest: 100.0% of 10 accepted",
        "  FAIL  malformed: 1 of 2",
    ]
    assert text.endswith("\n")
