"""Exceptions of the admin API; :class:`AdminApiError` is the root of them all.

Every :class:`HttpError` becomes a JSON response ``{"error", "message", "field"}`` with
its status code, plus any ``extra`` keys (a ``command_id``, partial results). The error
middleware in :mod:`admin_api.app` does that conversion, so handlers only raise.
"""

from __future__ import annotations

from typing import Any, ClassVar

from streams.errors import GateError


class AdminApiError(GateError):
    """Root of the admin API's exceptions."""


class HttpError(AdminApiError):
    """An error that the API returns to the client with a status code and a JSON body."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "field": self.field, **self.extra}

    def __str__(self) -> str:
        where = f" (field {self.field!r})" if self.field else ""
        return f"{self.status} {self.code}: {self.message}{where}"


class InvalidRequest(HttpError, ValueError):
    """400: a body field, query parameter, path parameter or header is invalid."""

    status = 400
    code = "invalid"

    def __init__(self, field: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, field=field, **kwargs)


class Unauthorized(HttpError):
    """401: no bearer token, or one that no operator has."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="stemedb-admin"'})


class NotFound(HttpError, LookupError):
    """404: the item, agent, command or route does not exist."""

    status = 404
    code = "not_found"


class MethodNotAllowed(HttpError):
    """405: the route exists but not with this HTTP method."""

    status = 405
    code = "method_not_allowed"


class Conflict(HttpError):
    """409: the item is already decided, or an Idempotency-Key names another command."""

    status = 409
    code = "conflict"


class PayloadTooLarge(HttpError):
    """413: the request body is larger than ``admin_api.max_request_bytes``."""

    status = 413
    code = "too_large"


class NotReady(HttpError):
    """503: the read model has not yet caught up with the state topics."""

    status = 503
    code = "not_ready"


class CommandTimeout(HttpError, TimeoutError):
    """504: the worker's result did not arrive within ``admin_api.command_timeout_seconds``."""

    status = 504
    code = "timeout"
