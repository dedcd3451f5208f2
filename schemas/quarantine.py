"""An assertion held back for review, as published on ``quarantine-state``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.verdict import Verdict


class QuarantineStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class QuarantineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    id: str
    agent_id: str
    assertion: dict[str, Any]
    verdict: Verdict
    status: QuarantineStatus = QuarantineStatus.PENDING
    quarantined_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    notes: list[str] = []
