"""Property-based tests: the decoder and the scorer never raise and stay in bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decode import Decoded, DecodeFailure, decode
from streams.scoring import RULES, ClaimView, ScoringContext, score

RULE_NAMES = {rule.name for rule in RULES}
RECORD_TIME = datetime(2026, 12, 4, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
assertion_like = st.fixed_dictionaries(
    {},
    optional={
        "schema_version": st.sampled_from([1, 2, "1"]),
        "id": st.text(max_size=20),
        "agent_id": st.sampled_from(["a" * 64, "A" * 64, "zz", ""]),
        "subject": st.text(max_size=30),
        "predicate": st.text(max_size=20),
        "object": st.text(max_size=30),
        "confidence": st.floats(allow_nan=False)
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.text(max_size=4),
        "sources": st.lists(st.text(max_size=20), max_size=3) | json_values,
        "created_at": st.sampled_from(["2026-12-04T00:00:00Z", "2026-12-04", "x", ""]),
        "signature": st.sampled_from(["b" * 128, "b" * 127, ""]),
    },
)


@settings(max_examples=300, deadline=None)
@given(key=st.none() | st.binary(max_size=70), value=st.none() | st.binary(max_size=300))
def test_decode_arbitrary_bytes_never_raises(key: bytes | None, value: bytes | None) -> None:
    result = decode(key, value, max_bytes=65536, require_signatures=True)
    assert isinstance(result, Decoded | DecodeFailure)


@settings(max_examples=300, deadline=None)
@given(fields=assertion_like | json_values)
def test_decode_arbitrary_json_never_raises(fields: object) -> None:
    value = orjson.dumps(fields)
    result = decode(b"a" * 64, value, max_bytes=65536, require_signatures=True)
    assert isinstance(result, Decoded | DecodeFailure)
    if isinstance(result, DecodeFailure):
        assert result.message


@settings(max_examples=500, deadline=None)
@given(
    subject=st.text(max_size=600),
    predicate=st.text(max_size=40),
    obj=st.text(max_size=600),
    confidence=st.floats(min_value=0, max_value=1),
    sources=st.lists(st.text(max_size=60), max_size=40),
    skew_seconds=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_score_in_bounds_and_deterministic(
    subject: str,
    predicate: str,
    obj: str,
    confidence: float,
    sources: list[str],
    skew_seconds: int,
) -> None:
    claim = ClaimView(
        subject=subject,
        predicate=predicate,
        object=obj,
        confidence=confidence,
        sources=sources,
        created_at=RECORD_TIME + timedelta(seconds=skew_seconds),
    )
    ctx = ScoringContext(RECORD_TIME, max_future_skew_seconds=300, max_age_hours=168)

    first = score(claim, ctx)

    assert 0.0 <= first.value <= 1.0
    assert set(first.penalties) <= RULE_NAMES
    assert score(claim, ctx) == first
