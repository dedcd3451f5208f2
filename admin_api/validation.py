"""Checks of query parameters, path parameters, headers and JSON bodies.

Every failure raises :class:`~admin_api.errors.InvalidRequest` naming the parameter,
header or body field, so that a 400 always names what the client must fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web

from admin_api.commands import MAX_COMMAND_ID_LENGTH, new_command_id
from admin_api.errors import InvalidRequest, PayloadTooLarge

T = TypeVar("T")

AGENT_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
ITEM_ID_PATTERN = re.compile(r"^q[0-9a-f]{24}$")
# Visible ASCII, as HTTP header values and Kafka keys can carry it unchanged.
COMMAND_ID_PATTERN = re.compile(r"^[\x21-\x7e]+$")
IDEMPOTENCY_HEADER = "Idempotency-Key"
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
MAX_REASON_LENGTH = 500
MAX_NOTE_LENGTH = 5000
DEFAULT_PAGE_LIMIT = 100
MAX_BULK_ITEMS = 10_000
MAX_BAN_SECONDS = 31_536_000.0  # one year


def check_agent_id(value: str, field: str = "agent_id") -> str:
    if not AGENT_ID_PATTERN.match(value):
        raise InvalidRequest(
            field, "agent_id must be the agent's Ed25519 public key as 64 lowercase hex digits"
        )
    return value


def check_item_id(value: str, field: str = "id") -> str:
    if not ITEM_ID_PATTERN.match(value):
        raise InvalidRequest(field, f"{field} must be a quarantine item id: 'q' and 24 hex digits")
    return value


def path_agent_id(request: web.Request) -> str:
    return check_agent_id(request.match_info["agent_id"])


def path_item_id(request: web.Request) -> str:
    return check_item_id(request.match_info["id"])


def command_id_of(request: web.Request, suffix_length: int = 0) -> str:
    """Return the request's ``Idempotency-Key``, or a new uuid4 hex id without one.

    ``suffix_length`` reserves room for the ``:<item id>`` that bulk requests append.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return new_command_id()
    longest = MAX_COMMAND_ID_LENGTH - suffix_length
    if not 1 <= len(key) <= longest or not COMMAND_ID_PATTERN.match(key):
        raise InvalidRequest(
            IDEMPOTENCY_HEADER,
            f"{IDEMPOTENCY_HEADER} must be 1 to {longest} visible ASCII characters",
        )
    return key


class Query:
    """The query parameters of a request, checked against the ones a route accepts."""

    def __init__(self, request: web.Request, allowed: Collection[str]) -> None:
        self._values: dict[str, str] = {}
        for name in request.query:
            if name not in allowed:
                listed = ", ".join(sorted(allowed)) or "none"
                raise InvalidRequest(
                    name, f"unknown query parameter {name!r}; this route accepts: {listed}"
                )
            values = request.query.getall(name)
            if len(values) > 1:
                raise InvalidRequest(name, f"query parameter {name!r} is given more than once")
            self._values[name] = values[0]

    def text(self, name: str, max_length: int = 1000) -> str | None:
        value = self._values.get(name)
        if value is not None and not 1 <= len(value) <= max_length:
            raise InvalidRequest(name, f"{name} must be 1 to {max_length} characters")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self._values.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise InvalidRequest(name, f"{name} must be an integer, not {value[:50]!r}") from None
        if not minimum <= number <= maximum:
            raise InvalidRequest(name, f"{name} must be from {minimum} to {maximum}, not {number}")
        return number

    def number(self, name: str, minimum: float = 0.0) -> float | None:
        value = self._values.get(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise InvalidRequest(name, f"{name} must be a number, not {value[:50]!r}") from None
        if not math.isfinite(number) or number < minimum:
            raise InvalidRequest(name, f"{name} must be a finite number of at least {minimum:g}")
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise InvalidRequest(name, f"{name} must be true or false, not {value[:50]!r}")

    def choice(self, name: str, choices: Iterable[str], default: T) -> str | T:
        value = self._values.get(name)
        if value is None:
            return default
        options = list(choices)
        if value not in options:
            raise InvalidRequest(name, f"{name} must be one of {', '.join(options)}")
        return value

    def agent_id(self, name: str = "agent_id") -> str | None:
        value = self._values.get(name)
        return None if value is None else check_agent_id(value, name)


async def read_body(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """Return the request's JSON object body; an empty body is an empty object.

    Raises :class:`PayloadTooLarge` above ``max_bytes`` and :class:`InvalidRequest`
    with field ``body`` for anything but a JSON object.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(
            f"request body of {request.content_length} bytes is larger than the limit of "
            f"{max_bytes} bytes (admin_api.max_request_bytes)"
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"request body is larger than the limit of {max_bytes} bytes "
            "(admin_api.max_request_bytes)"
        ) from None
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("body", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", "request body must be a JSON object")
    return data


class Body:
    """A JSON object body, checked field by field against the fields a route accepts."""

    def __init__(self, data: dict[str, Any], allowed: Collection[str]) -> None:
        for name in data:
            if name not in allowed:
                listed = ", ".join(sorted(allowed)) or "none"
                raise InvalidRequest(name, f"unknown field {name!r}; this route accepts: {listed}")
        self.data = data

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def text(self, name: str, max_length: int = MAX_REASON_LENGTH) -> str | None:
        value = self.data.get(name)
        return None if value is None else _check_text(name, value, max_length)

    def required_text(self, name: str, max_length: int = MAX_REASON_LENGTH) -> str:
        value = self.data.get(name)
        if value is None:
            raise InvalidRequest(name, f"{name} is required")
        return _check_text(name, value, max_length)

    def number(self, name: str, *, exclusive_minimum: float, maximum: float) -> float:
        value = self.data.get(name)
        if value is None:
            raise InvalidRequest(name, f"{name} is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(name, f"{name} must be a number")
        if not math.isfinite(value) or not exclusive_minimum < value <= maximum:
            raise InvalidRequest(
                name, f"{name} must be greater than {exclusive_minimum:g} and at most {maximum:g}"
            )
        return float(value)

    def future_timestamp(self, name: str, now: datetime) -> datetime | None:
        """Return an RFC 3339 timestamp with offset that lies after ``now``, or ``None``."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidRequest(name, f"{name} must be an RFC 3339 string or null")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRequest(
                name, f"{name} must be an RFC 3339 timestamp such as 2026-02-12T00:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise InvalidRequest(name, f"{name} must carry a UTC offset or Z")
        if moment <= now:
            raise InvalidRequest(name, f"{name} must lie in the future")
        return moment.astimezone(UTC)


def _check_text(name: str, value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(name, f"{name} must be a string")
    if not value.strip():
        raise InvalidRequest(name, f"{name} must not be empty")
    if len(value) > max_length:
        raise InvalidRequest(name, f"{name} must be at most {max_length} characters")
    return value
