"""Builders shared by the unit tests: signed assertions, broker times and a decision loop."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.assertion import Assertion
from schemas.signing import sign
from streams.decision import AgentState, Decision, SeenEntry, decide
from streams.settings import CircuitBreakerSettings, ContentDefenseSettings

WINDOW_MS = 60_000
BASE_MS = 1_700_000_040_000
"""A broker time in milliseconds that starts a 60 s window (a multiple of 60 000)."""

_serial = itertools.count(1)


def agent_key(seed: int = 1) -> Ed25519PrivateKey:
    """Return a deterministic Ed25519 key, so agent ids are the same on every run."""
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def assertion_fields(
    key: Ed25519PrivateKey | None = None, at_ms: int = BASE_MS, **overrides: Any
) -> dict[str, Any]:
    """Return the signed JSON fields of a valid assertion created at broker time ``at_ms``.

    Each call gets a new id and subject, so separate calls are never duplicates.
    ``overrides`` replace fields before signing.
    """
    serial = next(_serial)
    fields: dict[str, Any] = {
        "schema_version": 1,
        "id": f"claim-{serial}",
        "subject": f"Paris district {serial}",
        "predicate": "located_in",
        "object": "France",
        "confidence": 0.7,
        "sources": ["https://example.org/paris"],
        "created_at": ms_to_datetime(at_ms).isoformat(),
    }
    fields.update(overrides)
    return sign(fields, key or agent_key())


def signed_assertion(
    key: Ed25519PrivateKey | None = None, at_ms: int = BASE_MS, **overrides: Any
) -> Assertion:
    """Return a validated :class:`Assertion` built from :func:`assertion_fields`."""
    return Assertion.model_validate(assertion_fields(key, at_ms, **overrides))


def no_history(_: str) -> SeenEntry | None:
    """A duplicate-index lookup for an agent never seen before."""
    return None


@dataclass
class AgentFeed:
    """One agent's records fed through ``decide`` in order, as the worker feeds them.

    The agent state and the duplicate index carry over from one record to the next, and
    each record gets the next offset.
    """

    cd: ContentDefenseSettings = field(default_factory=ContentDefenseSettings)
    cb: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    state: AgentState = field(default_factory=AgentState)
    seen: dict[str, SeenEntry] = field(default_factory=dict)
    next_offset: int = 0

    def send(self, assertion: Assertion, now_ms: int) -> Decision:
        decision = decide(
            assertion, self.state, self.seen.get, now_ms, self.next_offset, self.cd, self.cb
        )
        self.state = decision.state
        self.seen.update(decision.seen_writes)
        self.next_offset += 1
        return decision

    def send_new(self, now_ms: int, **overrides: Any) -> Decision:
        """Send a fresh valid assertion created at ``now_ms``, with field ``overrides``."""
        return self.send(signed_assertion(at_ms=now_ms, **overrides), now_ms)
