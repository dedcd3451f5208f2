"""An assertion held back for review, as published on ``quarantine-state``."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.verdict import Verdict


class QuarantineStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def quarantine_item_id(agent_id: str, assertion_id: str) -> str:
    """Return the URL-safe id of the quarantine item of ``assertion_id`` from ``agent_id``."""
    digest = hashlib.blake2b(f"{agent_id}\x1f{assertion_id}".encode(), digest_size=12)
    return "q" + digest.hexdigest()


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
