"""Pages of a sorted list and the opaque cursors that continue them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from admin_api.errors import InvalidRequest

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Page(Generic[V]):
    """One page of a listing: its entries, the count of all matches and the next cursor."""

    entries: list[V]
    total: int
    next_cursor: str | None


def encode_cursor(*parts: str | int) -> str:
    """Encode a sort key as a URL-safe cursor string."""
    text = "\x1f".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """Decode a cursor of ``count`` parts; raise :class:`InvalidRequest` for field ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # validate=True rejects characters outside the alphabet instead of dropping them.
        text = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidRequest(
            "cursor", "invalid cursor; pass the next_cursor of a previous page unchanged"
        ) from None
    parts = text.split("\x1f")
    if len(parts) != count:
        raise InvalidRequest(
            "cursor", "invalid cursor; pass the next_cursor of a previous page unchanged"
        )
    return parts


def take_page(
    keys: Iterable[K],
    limit: int,
    matches: Callable[[K], bool] | None,
    render: Callable[[K], V],
    cursor_of: Callable[[K], str],
) -> tuple[list[V], str | None]:
    """Collect up to ``limit`` (at least 1) matching keys in order and the cursor after them.

    The cursor is ``None`` when no further key matches, which costs reading one key
    past the page.
    """
    page_keys: list[K] = []
    for key in keys:
        if matches is not None and not matches(key):
            continue
        if len(page_keys) >= limit:
            return [render(k) for k in page_keys], cursor_of(page_keys[-1])
        page_keys.append(key)
    return [render(k) for k in page_keys], None
