"""Hostile and malformed inputs, each with the outcome the gate must give it.

Shared by the unit test (decoder and decision functions) and the integration test
(the real worker). An outcome is either a dead-letter kind with the failing field, or
a route with the reasons and the scoring rules that must have applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.integration.harness import Agent


@dataclass(frozen=True)
class Expected:
    invalid_kind: str | None = None
    field: str | None = None
    route: str | None = None
    reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostileCase:
    name: str
    build: Callable[[Agent], tuple[bytes | None, bytes | None]]
    expected: Expected
    note: str = field(default="")


def _signed(agent: Agent, **overrides: Any) -> tuple[bytes, bytes]:
    return agent.record_key, agent.encoded(**overrides)


def _replace_raw(agent: Agent, old: bytes, new: bytes, **overrides: Any) -> tuple[bytes, bytes]:
    value = agent.encoded(**overrides)
    assert old in value, (old, value)
    return agent.record_key, value.replace(old, new, 1)


def _with_field(agent: Agent, name: str, value: Any) -> tuple[bytes, bytes]:
    fields = agent.assertion()
    fields[name] = value
    return agent.record_key, orjson.dumps(fields)


def _unsigned(agent: Agent, **overrides: Any) -> tuple[bytes, bytes]:
    """A record whose fields are changed after signing: only the schema check can see it."""
    fields = agent.assertion()
    fields.update(overrides)
    return agent.record_key, orjson.dumps(fields)


def _deep(depth: int) -> bytes:
    return b'{"subject": ' + b"[" * depth + b"]" * depth + b"}"


def _duplicate_confidence(agent: Agent) -> tuple[bytes, bytes]:
    key, value = _signed(agent, confidence=0.5)
    # A second "confidence" that a first-key-wins parser would ignore.
    return key, value[:-1] + b',"confidence":0.99}'


def _other_key(agent: Agent) -> tuple[bytes, bytes]:
    impostor = Agent("impostor")
    fields = impostor.assertion()
    fields["agent_id"] = agent.agent_id  # claims to be the victim, signed by the impostor
    return agent.record_key, orjson.dumps(fields)


CASES: tuple[HostileCase, ...] = (
    HostileCase(
        "not UTF-8", lambda a: (a.record_key, b'{"id": "\xff\xfe"}'), Expected("decode_error")
    ),
    HostileCase("not JSON", lambda a: (a.record_key, b"not-json"), Expected("decode_error")),
    HostileCase("empty value", lambda a: (a.record_key, b""), Expected("decode_error")),
    HostileCase(
        "deep nesting past the parser limit",
        lambda a: (a.record_key, _deep(5000)),
        Expected("decode_error"),
    ),
    HostileCase(
        "deep nesting under the parser limit",
        lambda a: (a.record_key, _deep(1000)),
        Expected("decode_error"),
    ),
    HostileCase(
        "NaN confidence",
        lambda a: _replace_raw(a, b'"confidence":0.7', b'"confidence":NaN'),
        Expected("decode_error"),
    ),
    HostileCase(
        "Infinity confidence",
        lambda a: _replace_raw(a, b'"confidence":0.7', b'"confidence":Infinity'),
        Expected("decode_error"),
    ),
    HostileCase(
        "duplicate JSON keys", _duplicate_confidence, Expected("decode_error", "confidence")
    ),
    HostileCase(
        "lone surrogate escape",
        lambda a: _replace_raw(a, b'"object":"Portugal"', b'"object":"\\ud800"'),
        Expected("decode_error"),
    ),
    HostileCase("null key", lambda a: (None, a.encoded()), Expected("missing_key")),
    HostileCase("tombstone", lambda a: (a.record_key, None), Expected("null_value")),
    HostileCase(
        "JSON array", lambda a: (a.record_key, b"[1, 2, 3]"), Expected("schema_error", "$")
    ),
    HostileCase(
        "wrong type",
        lambda a: _with_field(a, "confidence", "high"),
        Expected("schema_error", "confidence"),
    ),
    HostileCase(
        "boolean confidence",
        lambda a: _with_field(a, "confidence", True),
        Expected("schema_error", "confidence"),
    ),
    HostileCase(
        "confidence out of range",
        lambda a: _with_field(a, "confidence", 1e308),
        Expected("schema_error", "confidence"),
    ),
    HostileCase(
        "unknown field", lambda a: _with_field(a, "admin", True), Expected("schema_error", "admin")
    ),
    HostileCase(
        "missing field",
        lambda a: _with_field(a, "subject", None),
        Expected("schema_error", "subject"),
    ),
    HostileCase(
        "oversized record", lambda a: _signed(a, object="x" * 70_000), Expected("too_large")
    ),
    HostileCase(
        "bad hex agent_id",
        lambda a: _unsigned(a, agent_id="z" * 64),
        Expected("schema_error", "agent_id"),
    ),
    HostileCase(
        "short signature",
        lambda a: _unsigned(a, signature="ab" * 32),
        Expected("schema_error", "signature"),
    ),
    HostileCase(
        "upper-case hex signature",
        lambda a: _unsigned(a, signature=a.assertion()["signature"].upper()),
        Expected("schema_error", "signature"),
    ),
    HostileCase(
        "signature of other content",
        lambda a: _unsigned(a, object="Spain"),
        Expected("bad_signature", "signature"),
    ),
    HostileCase(
        "written under another agent's id", _other_key, Expected("bad_signature", "signature")
    ),
    HostileCase(
        "key differs from agent_id",
        lambda a: (b"someone-else", a.encoded()),
        Expected("key_mismatch", "agent_id"),
    ),
    HostileCase(
        "naive created_at",
        lambda a: _signed(a, created_at="2026-12-04T10:00:00"),
        Expected("schema_error", "created_at"),
    ),
    HostileCase(
        "look-alike Unicode id",
        lambda a: _signed(a, id="agent-\u0430-1"),
        Expected("schema_error", "id"),
    ),
    HostileCase(
        "far-future created_at",
        lambda a: _signed(a, created_at="9999-12-31T23:59:59Z"),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("future_timestamp",)),
    ),
    HostileCase(
        "control characters",
        lambda a: _signed(a, subject="Lis\x00bon\x1b[31m"),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("junk_text",)),
    ),
    HostileCase(
        "right-to-left override",
        lambda a: _signed(a, object="Portugal\u202eniapS"),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("junk_text",)),
    ),
    HostileCase(
        "zero-width space",
        lambda a: _signed(a, subject="Lis\u200bbon"),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("junk_text",)),
    ),
    HostileCase(
        "huge subject under the size limit",
        lambda a: _signed(a, subject="Lisboa " * 2000),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("length",)),
    ),
    HostileCase(
        "javascript source",
        lambda a: _signed(a, sources=["javascript:alert(1)"]),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("bad_source",)),
    ),
    HostileCase(
        "placeholder object",
        lambda a: _signed(a, object="N/A"),
        Expected(route="quarantine", reasons=("LowQuality",), rules=("placeholder",)),
    ),
)
