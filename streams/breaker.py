"""Per-agent circuit breaker: CLOSED, OPEN and HALF_OPEN, driven by broker timestamps.

- CLOSED: every record is scored. The caller trips the breaker on a flood or a high
  failure rate.
- OPEN: records go to ``banned`` unscored. An automatic trip lasts ``timeout_seconds``,
  doubled for each trip that directly follows a failed HALF_OPEN, capped at
  ``max_timeout_seconds``. When it ends the breaker goes HALF_OPEN. A manual open is a
  ban: it lasts its own duration, ignores behaviour, and ends in CLOSED.
- HALF_OPEN: the next ``half_open_probes`` records are scored. One quarantined probe
  trips the breaker again; all passing closes it. If the probes have not decided within
  ``half_open_max_seconds``, the breaker decides on the probes it has (none failed:
  CLOSED), so no breaker stays HALF_OPEN for good.

Time-based transitions happen in :meth:`Breaker.tick`, which the worker calls with the
timestamp of each record and from its periodic sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from schemas.breaker import BreakerState
from streams.settings import CircuitBreakerSettings

REASON_TIMEOUT_ELAPSED = "timeout_elapsed"
REASON_MANUAL_EXPIRED = "manual_open_expired"
REASON_PROBES_PASSED = "probes_passed"
REASON_PROBE_FAILED = "probe_failed"
REASON_HALF_OPEN_TIMED_OUT = "half_open_timed_out"
REASON_RESET = "reset"


class Admission(Enum):
    SCORE = "score"
    """Score the record (CLOSED, or a HALF_OPEN probe)."""
    BAN = "ban"
    """Route to banned unscored (OPEN)."""
    PROBE = "probe"
    """HALF_OPEN: score the record if a probe slot is free (:meth:`Breaker.start_probe`)."""


@dataclass(frozen=True)
class Transition:
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    at_ms: int


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    reason: str | None = None
    opened_at_ms: int | None = None
    until_ms: int | None = None
    trips: int = 0
    manual: bool = False
    failed_half_opens: int = 0
    half_open_since_ms: int | None = None
    probes_started: int = 0
    probes_passed: int = 0

    def _to(self, state: BreakerState, transition_reason: str, at_ms: int, **changes: Any) -> Step:
        moved = replace(self, state=state, **changes)
        return Step(moved, (Transition(self.state, state, transition_reason, at_ms),))

    def tick(self, now_ms: int, cfg: CircuitBreakerSettings) -> Step:
        """Apply the transitions that time alone causes at ``now_ms``."""
        open_ended = self.until_ms is not None and now_ms >= self.until_ms
        if self.state is BreakerState.OPEN and open_ended:
            if self.manual:
                return self._closed(now_ms, REASON_MANUAL_EXPIRED)
            return self._to(
                BreakerState.HALF_OPEN,
                REASON_TIMEOUT_ELAPSED,
                now_ms,
                half_open_since_ms=now_ms,
                probes_started=0,
                probes_passed=0,
            )
        if self.state is BreakerState.HALF_OPEN and self.half_open_since_ms is not None:
            deadline = self.half_open_since_ms + int(cfg.half_open_max_seconds * 1000)
            if now_ms >= deadline:
                failed = self.probes_started - self.probes_passed
                if failed > 0:
                    return self.trip(now_ms, REASON_HALF_OPEN_TIMED_OUT, cfg)
                return self._closed(now_ms, REASON_HALF_OPEN_TIMED_OUT)
        return Step(self, ())

    def admit(self) -> Admission:
        if self.state is BreakerState.CLOSED:
            return Admission.SCORE
        if self.state is BreakerState.OPEN:
            return Admission.BAN
        return Admission.PROBE

    def start_probe(self, cfg: CircuitBreakerSettings) -> tuple[Breaker, bool]:
        """Take a HALF_OPEN probe slot; return the new breaker and whether one was free."""
        if self.state is not BreakerState.HALF_OPEN or self.probes_started >= cfg.half_open_probes:
            return self, False
        return replace(self, probes_started=self.probes_started + 1), True

    def finish_probe(self, passed: bool, now_ms: int, cfg: CircuitBreakerSettings) -> Step:
        """Record a probe's outcome: one failure reopens, all passing closes."""
        if self.state is not BreakerState.HALF_OPEN:
            return Step(self, ())
        if not passed:
            return self.trip(now_ms, REASON_PROBE_FAILED, cfg)
        passed_count = self.probes_passed + 1
        if passed_count >= cfg.half_open_probes:
            return self._closed(now_ms, REASON_PROBES_PASSED)
        return Step(replace(self, probes_passed=passed_count), ())

    def trip(self, now_ms: int, reason: str, cfg: CircuitBreakerSettings) -> Step:
        """Open automatically. From HALF_OPEN the timeout doubles, up to the cap."""
        if self.state is BreakerState.OPEN:
            return Step(self, ())
        failed_half_opens = self.failed_half_opens + int(self.state is BreakerState.HALF_OPEN)
        timeout_seconds = min(
            cfg.timeout_seconds * (2.0**failed_half_opens), cfg.max_timeout_seconds
        )
        return self._to(
            BreakerState.OPEN,
            reason,
            now_ms,
            reason=reason,
            opened_at_ms=now_ms,
            until_ms=now_ms + int(timeout_seconds * 1000),
            trips=self.trips + 1,
            manual=False,
            failed_half_opens=failed_half_opens,
            half_open_since_ms=None,
            probes_started=0,
            probes_passed=0,
        )

    def manual_open(self, now_ms: int, reason: str, duration_seconds: float) -> Step:
        """Ban the agent for ``duration_seconds``; replaces any running automatic OPEN."""
        return self._to(
            BreakerState.OPEN,
            reason,
            now_ms,
            reason=reason,
            opened_at_ms=now_ms,
            until_ms=now_ms + int(duration_seconds * 1000),
            trips=self.trips + 1,
            manual=True,
            half_open_since_ms=None,
            probes_started=0,
            probes_passed=0,
        )

    def reset(self, now_ms: int) -> Step:
        return self._closed(now_ms, REASON_RESET)

    def _closed(self, now_ms: int, reason: str) -> Step:
        return self._to(
            BreakerState.CLOSED,
            reason,
            now_ms,
            reason=None,
            opened_at_ms=None,
            until_ms=None,
            manual=False,
            failed_half_opens=0,
            half_open_since_ms=None,
            probes_started=0,
            probes_passed=0,
        )


@dataclass(frozen=True)
class Step:
    """A breaker after an operation, with the transitions the operation made (maybe none)."""

    breaker: Breaker
    transitions: tuple[Transition, ...]
