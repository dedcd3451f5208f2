"""The input record: one claim of one agent, signed with the agent's Ed25519 key."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

HexKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
HexSignature = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class Assertion(BaseModel):
    """A claim ``subject predicate object`` with a confidence, written by one agent."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = Field(1, description="Version of this schema.")
    id: Annotated[str, StringConstraints(pattern=r"^[!-~]{1,200}$")] = Field(
        description="Producer-chosen id, unique per agent; the idempotency key. Printable "
        "ASCII without spaces, so look-alike Unicode cannot make two ids that read the same."
    )
    agent_id: HexKey = Field(description="Hex-encoded Ed25519 public key of the writing agent.")
    subject: str = Field(description="What the claim is about.")
    predicate: str = Field(description="The relation, as a short token such as 'capital_of'.")
    object: str = Field(description="The value the claim relates the subject to.")
    confidence: Annotated[float, AfterValidator(_finite), Field(ge=0.0, le=1.0)] = Field(
        description="The agent's confidence in the claim, from 0 to 1."
    )
    sources: list[str] = Field(default_factory=list, description="URIs that back the claim.")
    created_at: Annotated[AwareDatetime, Field(strict=False)] = Field(
        description="When the agent made the claim (RFC 3339 with offset). Checked for skew, never "
        "used for windows."
    )
    signature: HexSignature = Field(
        description="Hex Ed25519 signature over the canonical JSON of every other field."
    )
