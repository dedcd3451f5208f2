"""Value formats and table layout of the ``stemedb-gate`` human output."""

from __future__ import annotations

import pytest

from streams.cli_tables import (
    Column,
    cell,
    format_duration,
    format_number,
    format_table,
    format_time,
    short_agent,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-11T10:23:45Z", "2026-02-11T10:23:45Z"),
        ("2026-02-11T10:23:45.999999+00:00", "2026-02-11T10:23:45Z"),
        ("2026-02-11T11:23:45+01:00", "2026-02-11T10:23:45Z"),
        ("2026-02-11T10:23:45", "2026-02-11T10:23:45"),
        ("not a time", "not a time"),
        (None, "-"),
    ],
)
def test_format_time(value: str | None, expected: str) -> None:
    assert format_time(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (59.6, "1m 0s"),
        (3600, "1h 0m 0s"),
        (8590.4, "2h 23m 10s"),
        (90061, "1d 1h"),
        (-5, "0s"),
        ("soon", "soon"),
    ],
)
def test_format_duration(seconds: object, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.6, "0.6"), (3600.0, "3600"), (20, "20"), (1e-7, "1e-07"), ("x", "x")],
)
def test_format_number(value: object, expected: str) -> None:
    assert format_number(value) == expected


def test_short_agent_cuts_to_12() -> None:
    assert short_agent("0123456789abcdef") == "0123456789ab…"
    assert short_agent("0123456789ab") == "0123456789ab"
    assert short_agent(None) == "-"


def test_cell_escapes_terminal_controls() -> None:
    assert cell("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"


def test_cell_cuts_long_text() -> None:
    assert cell("abcdefghij", max_chars=5) == "abcd…"
    assert cell("abcde", max_chars=5) == "abcde"


def test_cell_formats_bool_and_none() -> None:
    assert cell(True) == "yes"
    assert cell(False) == "no"
    assert cell(None) == "-"


def test_table_pads_and_right_aligns() -> None:
    table = format_table(
        [Column("NAME"), Column("COUNT", align_right=True), Column("NOTE")],
        [["a", "5", "x"], ["longer", "12345", ""]],
    )

    assert table.splitlines() == [
        "NAME    COUNT  NOTE",
        "a           5  x",
        "longer  12345",
    ]
