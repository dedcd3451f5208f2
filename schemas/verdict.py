"""The decision attached to every routed assertion."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.breaker import BreakerState


class Route(StrEnum):
    ACCEPTED = "accepted"
    QUARANTINE = "quarantine"
    BANNED = "banned"


class Reason(StrEnum):
    LOW_QUALITY = "LowQuality"
    DUPLICATE = "Duplicate"
    UNTRUSTED_HIGH_CONFIDENCE = "UntrustedHighConfidence"
    CIRCUIT_OPEN = "CircuitOpen"
    HALF_OPEN_PROBES_EXHAUSTED = "HalfOpenProbesExhausted"
    APPROVED = "Approved"


class Review(BaseModel):
    """An operator's decision on a quarantined assertion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["approved", "rejected"]
    decided_by: str
    decided_at: datetime
    command_id: str
    note: str | None = None
    original_reasons: list[Reason] = Field(default_factory=list)


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    route: Route
    reasons: list[Reason] = Field(default_factory=list)
    quality_score: float | None = Field(
        None, description="Score in [0, 1]; null when the record was not scored (banned)."
    )
    score_breakdown: dict[str, float] = Field(
        default_factory=dict, description="Penalty of each scoring rule that applied."
    )
    breaker_state: BreakerState
    decided_at: datetime
    gate_version: str
    source_partition: int | None = None
    source_offset: int | None = None
    review: Review | None = Field(
        None, description="Set on an approved assertion that was first quarantined."
    )


class RoutedAssertion(BaseModel):
    """Value of a record on ``accepted``, ``quarantine`` and ``banned``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    assertion: dict[str, Any] = Field(description="The assertion exactly as the agent sent it.")
    verdict: Verdict
