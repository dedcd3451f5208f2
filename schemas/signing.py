"""Canonical JSON and Ed25519 signing of assertions, for producers and for the gate.

The signed bytes are the canonical JSON of every field except ``signature``: keys
sorted by code point, no whitespace between tokens, strings as UTF-8 without
``\\u`` escapes for non-ASCII text, numbers in their shortest round-trip form. The
signature is the hex encoding of the 64-byte Ed25519 signature over those bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """Return the canonical JSON bytes of ``fields`` without its ``signature``."""
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(fields: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return a copy of ``fields`` with ``agent_id`` checked and ``signature`` set."""
    agent_id = public_key_hex(key)
    if fields.get("agent_id", agent_id) != agent_id:
        raise ValueError(
            f"agent_id {fields.get('agent_id')!r} is not the public key of the signing key "
            f"({agent_id})"
        )
    signed = dict(fields)
    signed["agent_id"] = agent_id
    signed["signature"] = key.sign(canonical_json(signed)).hex()
    return signed


def verify(fields: Mapping[str, Any]) -> bool:
    """Return whether ``signature`` is a valid signature of ``agent_id`` over the other fields.

    Malformed keys or signatures verify as false; the caller decides what that means.
    """
    # libsodium verifies in about 60% of the time OpenSSL takes through cryptography
    # (docs/benchmarks/gate.md), and verification is the gate's largest own cost.
    try:
        public = bytes.fromhex(str(fields["agent_id"]))
        signature = bytes.fromhex(str(fields["signature"]))
        crypto_sign_open(signature + canonical_json(fields), public)
    except (KeyError, ValueError, CryptoError):
        return False
    return True
