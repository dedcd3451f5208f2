"""Plain-text tables and value formats for the human output of ``stemedb-gate`` commands."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AGENT_ID_CHARS = 12
ELLIPSIS = "…"
COLUMN_GAP = "  "
MISSING = "-"


@dataclass(frozen=True)
class Column:
    """One table column: its header, and whether numbers in it are right-aligned."""

    header: str
    align_right: bool = False


def format_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """Lay ``rows`` out under ``columns`` in fixed-width columns, two spaces apart.

    Cells are expected to be cleaned by :func:`cell` already. The last column is not
    padded, so lines carry no trailing spaces.
    """
    widths = [len(column.header) for column in columns]
    for row in rows:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))

    lines = []
    for row in [[column.header for column in columns], *rows]:
        parts = []
        for index, value in enumerate(row):
            last = index == len(columns) - 1
            if columns[index].align_right:
                parts.append(value.rjust(widths[index]))
            elif last:
                parts.append(value)
            else:
                parts.append(value.ljust(widths[index]))
        lines.append(COLUMN_GAP.join(parts).rstrip())
    return "\n".join(lines)


def format_fields(pairs: Sequence[tuple[str, str]]) -> str:
    """Lay out ``name: value`` lines with the values aligned, for one record's details."""
    width = max((len(name) for name, _ in pairs), default=0) + 1
    return "\n".join(f"{(name + ':').ljust(width)} {value}".rstrip() for name, value in pairs)


def cell(value: Any, max_chars: int | None = None) -> str:
    """Return ``value`` as one line of terminal-safe text, cut to ``max_chars``.

    Agents choose the text of their assertions, so control and format characters
    (terminal escape sequences, newlines, bidi overrides) are shown as ``\\xNN`` escapes
    instead of being written to the terminal.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    text = "".join(_escape_char(char) for char in text)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1] + ELLIPSIS
    return text


def _escape_char(char: str) -> str:
    if unicodedata.category(char)[0] != "C":
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def short_agent(agent_id: Any) -> str:
    """Return an agent id cut to its first 12 characters and an ellipsis, for tables."""
    text = cell(agent_id)
    if len(text) <= AGENT_ID_CHARS:
        return text
    return text[:AGENT_ID_CHARS] + ELLIPSIS


def format_time(value: Any) -> str:
    """Return an API timestamp as RFC 3339 in UTC to the second, like ``2026-02-11T10:23:45Z``.

    A value without a UTC offset, or one that is not a timestamp, is shown as it came.
    """
    if value is None:
        return MISSING
    if not isinstance(value, str):
        return cell(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return cell(value)
    if parsed.tzinfo is None:
        return cell(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: Any) -> str:
    """Return a number of seconds as days, hours, minutes and seconds, like ``2h 5m 10s``."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return cell(seconds)
    remaining = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    parts.append(f"{remaining}s")
    # Days and hours are enough to judge an age of more than a day.
    return " ".join(parts[:2]) if seconds >= 86400 else " ".join(parts)


def format_number(value: Any) -> str:
    """Return a JSON number without a needless ``.0``, and anything else as a cell."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return cell(value)
