"""Per-agent circuit breaker state as published on ``breaker-state``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class BreakerSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    agent_id: str
    state: BreakerState
    reason: str | None = None
    opened_at: datetime | None = None
    until: datetime | None = None
    trips: int = 0
    manual: bool = False
