"""The published signing test vectors match schemas.signing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.signing import canonical_json, sign, verify

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "signing-vectors.json").read_text("utf-8")
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_signing_vector_reproduced(vector: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["private_key_seed_hex"]))
    unsigned = {k: v for k, v in vector["record"].items() if k not in ("signature", "agent_id")}

    signed = sign(unsigned, key)

    assert signed["agent_id"] == vector["agent_id"]
    assert canonical_json(signed).decode("utf-8") == vector["canonical_json"]
    assert signed["signature"] == vector["signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_signing_vector_verifies(vector: dict[str, Any]) -> None:
    assert verify(vector["record"])


def test_signing_vector_tampered_fails() -> None:
    record = dict(VECTORS[0]["record"])
    record["confidence"] = 0.91
    assert not verify(record)
