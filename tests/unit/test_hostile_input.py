"""Each hostile input of the catalogue, through the decoder and the decision function."""

from __future__ import annotations

import time

import pytest

from schemas.verdict import Route
from streams.decision import AgentState, decide
from streams.decode import DecodeFailure, decode
from streams.settings import load_settings
from tests.hostile_catalogue import CASES, HostileCase
from tests.integration.harness import Agent


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_outcome(case: HostileCase) -> None:
    settings = load_settings(None)
    agent = Agent("agent-h")
    key, value = case.build(agent)

    decoded = decode(
        key,
        value,
        max_bytes=settings.kafka.max_record_bytes,
        require_signatures=settings.content_defense.require_signatures,
    )

    expected = case.expected
    if expected.invalid_kind is not None:
        assert isinstance(decoded, DecodeFailure), decoded
        assert decoded.kind.value == expected.invalid_kind, decoded.message
        if expected.field is not None:
            assert decoded.field == expected.field, decoded.message
        return
    assert not isinstance(decoded, DecodeFailure), decoded
    decision = decide(
        decoded.assertion,
        AgentState(),
        lambda _key: None,
        # The catalogue stamps created_at with the wall clock, as a live producer would.
        int(time.time() * 1000),
        0,
        settings.content_defense,
        settings.circuit_breaker,
    )
    assert decision.route is Route(expected.route)
    assert tuple(r.value for r in decision.reasons) == expected.reasons
    assert decision.score is not None
    for rule in expected.rules:
        assert rule in decision.score.penalties
