"""HTTP client of the gate's admin API, as the ``stemedb-gate`` admin commands use it.

Routes, bodies and error shapes follow docs/admin-api.md. Every failure is raised as an
:class:`AdminClientError`, so ``stemedb-gate`` prints it and exits with code 2.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from streams.errors import GateError

logger = logging.getLogger(__name__)

API_URL_ENV = "STEMEDB_API_URL"
API_TOKEN_ENV = "STEMEDB_API_TOKEN"
DEFAULT_API_URL = "http://127.0.0.1:18180"
ADMIN_PREFIX = "/v1/admin"
MAX_IDEMPOTENCY_KEY_CHARS = 200
EXCERPT_CHARS = 200
"""Characters of a non-JSON response body that an error message quotes."""
_NOT_JSON = object()


class AdminClientError(GateError):
    """A request to the admin API failed, or its response could not be used."""


class UsageError(AdminClientError, ValueError):
    """Command-line arguments that argparse accepts but the command cannot use."""


class ApiUnavailableError(AdminClientError, ConnectionError):
    """The admin API did not accept a connection or did not respond in time."""


class ApiError(AdminClientError):
    """An error response of the admin API: ``{"error", "message", "field"}``.

    ``str()`` gives the API's message, then the field and command id when present.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        command_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.command_id = command_id
        self.hint = hint
        super().__init__(self._describe())

    def _describe(self) -> str:
        details = []
        if self.field:
            details.append(f"field: {self.field}")
        if self.command_id:
            details.append(f"command_id: {self.command_id}")
        text = self.message
        if details:
            text += f" ({', '.join(details)})"
        if self.hint:
            text += f". {self.hint}"
        return text


@dataclass(frozen=True)
class ApiResponse:
    """Status and decoded JSON body of one admin API response."""

    status: int
    body: Any


def resolve_api_url(explicit: str | None) -> URL:
    """Return the admin API base URL: ``--api-url``, then ``STEMEDB_API_URL``, then the default."""
    text = explicit or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    try:
        url = URL(text)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid admin API URL {text!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"invalid admin API URL {text!r}: expected http:// or https:// with a host, "
            "for example http://127.0.0.1:18180"
        )
    if url.query_string or url.fragment:
        raise UsageError(f"invalid admin API URL {text!r}: remove the query and fragment")
    return url


def resolve_token(token: str | None, token_file: str | None) -> str | None:
    """Return the bearer token: ``--token``, then ``--token-file``, then ``STEMEDB_API_TOKEN``.

    ``None`` means no token, which only an API that runs unauthenticated accepts.
    """
    if token is not None and token_file is not None:
        raise UsageError("give --token or --token-file, not both")
    if token is not None:
        if not token.strip():
            raise UsageError("--token is empty")
        return token.strip()
    if token_file is not None:
        return _read_token_file(Path(token_file))
    from_env = os.environ.get(API_TOKEN_ENV, "").strip()
    return from_env or None


def _read_token_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"token file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read token file {str(path)!r}: {exc}") from None
    token = text.strip()
    if not token:
        raise UsageError(f"token file {str(path)!r} is empty")
    if len(token.split()) != 1:
        # A copy of the API's tokens file ("operator-name token" lines) would otherwise
        # be sent whole as the bearer token.
        raise UsageError(
            f"token file {str(path)!r} must contain only the token, with no spaces or other lines"
        )
    return token


def check_idempotency_key(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise UsageError(
            f"--idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}"
        )
    return key


class AdminClient:
    """An aiohttp session bound to one admin API base URL and bearer token.

    Use it with ``async with``. Non-2xx responses raise :class:`ApiError`, and network
    failures raise :class:`ApiUnavailableError` naming the URL.
    """

    def __init__(self, base_url: URL, token: str | None, timeout_seconds: float) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout_seconds)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, *segments: str) -> URL:
        """Return the URL of ``/v1/admin/<segments>``, each segment percent-encoded whole."""
        path = self.base_url.path.rstrip("/") + ADMIN_PREFIX
        for segment in segments:
            path += "/" + quote(segment, safe="")
        return self.base_url.with_path(path, encoded=True)

    async def get(self, *segments: str, params: Mapping[str, str] | None = None) -> ApiResponse:
        return await self.request("GET", segments, params=params)

    async def write(
        self,
        method: str,
        segments: tuple[str, ...],
        body: Mapping[str, Any] | None = None,
        *,
        wait: bool,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        """Send a command request. With ``wait``, the API returns the command's result."""
        params = {"wait": "true"} if wait else None
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.request(method, segments, params=params, body=body, headers=headers)

    async def request(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        if self._session is None:
            raise RuntimeError("AdminClient is used outside 'async with'")
        url = self.url(*segments)
        logger.debug("%s %s params=%s", method, url, params)
        try:
            async with self._session.request(
                method, url, params=params, json=body, headers=headers
            ) as response:
                status = response.status
                text = await response.text(errors="replace")
        except aiohttp.ClientConnectorError as exc:
            raise ApiUnavailableError(
                f"cannot connect to the admin API at {self.base_url} ({exc.os_error}). "
                "Start it with 'stemedb-gate admin-api', or pass --api-url or set "
                f"{API_URL_ENV} to where it runs"
            ) from None
        except TimeoutError:
            raise ApiUnavailableError(
                f"{method} {url} timed out after {self.timeout_seconds:g} seconds. A write "
                "may still be applied, so check the item or breaker before repeating it, "
                "or raise --timeout"
            ) from None
        except aiohttp.ClientError as exc:
            raise ApiUnavailableError(
                f"{method} {url} failed: {exc.__class__.__name__}: {exc}"
            ) from None

        decoded = _decode_json(text)
        if 200 <= status < 300:
            if decoded is _NOT_JSON:
                raise AdminClientError(
                    f"{method} {url} returned HTTP {status} with a body that is not JSON: "
                    f"{_excerpt(text)}. Is --api-url the admin API?"
                )
            return ApiResponse(status, decoded)
        raise self._error(method, url, status, decoded, text)

    def _error(self, method: str, url: URL, status: int, decoded: Any, text: str) -> ApiError:
        if not isinstance(decoded, dict) or "message" not in decoded:
            return ApiError(
                status,
                "http_error",
                f"{method} {url} returned HTTP {status}: {_excerpt(text) or '(empty body)'}",
            )
        field = decoded.get("field")
        command_id = decoded.get("command_id")
        hint = None
        if status == 401:
            hint = (
                "The token was rejected"
                if self.token is not None
                else f"Pass --token or --token-file, or set {API_TOKEN_ENV}"
            )
        elif status == 504 and command_id:
            hint = (
                "It may still be applied, so check it with "
                f"'stemedb-gate command show {command_id}'"
            )
        return ApiError(
            status,
            str(decoded.get("error") or "http_error"),
            str(decoded["message"]),
            field=str(field) if field is not None else None,
            command_id=str(command_id) if command_id is not None else None,
            hint=hint,
        )


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS] + "…"
