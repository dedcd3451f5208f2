"""Bearer-token authentication of the admin routes.

Tokens come from ``admin_api.tokens_file``: one ``operator-name token`` pair a line,
``#`` starts a comment. The operator name of the matching token becomes the
``issued_by`` of every command that the request publishes. Tokens are kept only as
SHA-256 digests, so a lookup compares digests and never the secret itself, and no
token ever reaches a log line or an error message.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from admin_api.errors import Unauthorized
from streams.errors import ConfigError
from streams.settings import AdminApiSettings

logger = logging.getLogger(__name__)

ANONYMOUS_OPERATOR = "anonymous"
MIN_TOKEN_LENGTH = 16
OPERATOR_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
# Token characters: anything printable but whitespace, which separates the fields.
TOKEN_PATTERN = re.compile(r"^[\x21-\x7e]+$")
BEARER_PREFIX = "bearer "


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Authenticator:
    """Maps bearer tokens to operator names; ``None`` digests means no authentication."""

    operators_by_digest: dict[bytes, str] | None

    @property
    def enabled(self) -> bool:
        return self.operators_by_digest is not None

    def operator_for(self, authorization: str | None) -> str:
        """Return the operator of an ``Authorization`` value; raise :class:`Unauthorized`."""
        if self.operators_by_digest is None:
            return ANONYMOUS_OPERATOR
        if not authorization:
            raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
        if authorization[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
            raise Unauthorized("the Authorization header must use the Bearer scheme")
        token = authorization[len(BEARER_PREFIX) :].strip()
        operator = self.operators_by_digest.get(_digest(token))
        if operator is None:
            raise Unauthorized("invalid bearer token")
        return operator


def parse_tokens(text: str, source: str) -> dict[bytes, str]:
    """Parse a tokens file's text into token digests and operator names.

    Raises :class:`ConfigError` naming ``source`` and the line number of a malformed
    line, a short token or a token that two lines share. The message never contains
    the token.
    """
    operators: dict[bytes, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source} line {number}"
        if len(fields) != 2:
            raise ConfigError(
                f"{where}: expected 'operator-name token', found {len(fields)} field(s)"
            )
        operator, token = fields
        if not OPERATOR_PATTERN.match(operator):
            raise ConfigError(
                f"{where}: invalid operator name {operator!r}; use 1 to 100 of A-Z a-z 0-9 . _ @ -"
            )
        if len(token) < MIN_TOKEN_LENGTH or not TOKEN_PATTERN.match(token):
            raise ConfigError(
                f"{where}: the token of operator {operator!r} must be at least "
                f"{MIN_TOKEN_LENGTH} printable characters without spaces"
            )
        digest = _digest(token)
        if digest in operators:
            raise ConfigError(
                f"{where}: operator {operator!r} has the same token as operator "
                f"{operators[digest]!r}; give each operator a token of its own"
            )
        operators[digest] = operator
    return operators


def load_tokens(path: Path) -> dict[bytes, str]:
    """Read a tokens file; raise :class:`ConfigError` when it is missing, unreadable or empty."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"admin_api.tokens_file {str(path)!r} cannot be read: {exc.strerror or exc}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"admin_api.tokens_file {str(path)!r} is not UTF-8: {exc}") from exc
    operators = parse_tokens(text, f"admin_api.tokens_file {str(path)!r}")
    if not operators:
        raise ConfigError(
            f"admin_api.tokens_file {str(path)!r} has no 'operator-name token' line; "
            "add one per operator"
        )
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning(
            "admin_api.tokens_file %s is readable by other users; restrict it with chmod 600",
            path,
        )
    return operators


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is a loopback address or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_authenticator(settings: AdminApiSettings) -> Authenticator:
    """Return the authenticator that ``settings`` ask for, or raise :class:`ConfigError`.

    A tokens file wins over ``allow_unauthenticated``. Without one, the service runs
    only if ``allow_unauthenticated`` is set and ``host`` is a loopback address.
    """
    if settings.tokens_file is not None:
        operators = load_tokens(settings.tokens_file)
        logger.info(
            "admin API authentication: %d operator token(s) from %s",
            len(operators),
            settings.tokens_file,
        )
        return Authenticator(operators)
    if not settings.allow_unauthenticated:
        raise ConfigError(
            "admin_api.tokens_file is not set, and the admin API does not start without "
            "authentication; set admin_api.tokens_file (STEMEDB_TOKENS_FILE), or set "
            "admin_api.allow_unauthenticated = true with a loopback admin_api.host"
        )
    if not is_loopback(settings.host):
        raise ConfigError(
            f"admin_api.allow_unauthenticated is only accepted with a loopback "
            f"admin_api.host, not {settings.host!r}; bind to 127.0.0.1 or set "
            "admin_api.tokens_file"
        )
    logger.warning(
        "admin API runs WITHOUT authentication on %s; every command is issued by %r",
        settings.host,
        ANONYMOUS_OPERATOR,
    )
    return Authenticator(None)
