"""The admin commands of ``stemedb-gate`` against a fake admin API on 127.0.0.1.

Each test runs the real entry point, ``streams.cli.main``, and checks the request the
fake API received (route, query, body, headers), what the command printed, and its
exit code.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.admin_client import API_TOKEN_ENV, API_URL_ENV
from streams.cli import main
from streams.cli_admin_commands import BULK_MAX_IDS

from .fake_admin_api import FakeAdminApi, RecordedRequest, running_fake_api

AGENT = "8f3a2b1c" + "0" * 48 + "deadbeef"
OTHER_AGENT = "7d2e5f9a" + "1" * 56
TOKEN = "s3cret-token"


@pytest.fixture
def api() -> Iterator[FakeAdminApi]:
    yield from running_fake_api()


@pytest.fixture(autouse=True)
def _no_admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's STEMEDB_API_URL and STEMEDB_API_TOKEN out of the tests."""
    monkeypatch.delenv(API_URL_ENV, raising=False)
    monkeypatch.delenv(API_TOKEN_ENV, raising=False)


def run(api: FakeAdminApi, *args: str, token: str | None = TOKEN) -> int:
    """Run ``stemedb-gate ARGS --api-url <fake> [--token TOKEN]`` and return the exit code."""
    argv = [*args, "--api-url", api.url]
    if token is not None:
        argv += ["--token", token]
    return main(argv)


def only_request(api: FakeAdminApi) -> RecordedRequest:
    assert len(api.requests) == 1, api.requests
    return api.requests[0]


def item_view(item_id: str = "q0001", agent_id: str = AGENT, **fields: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": item_id,
        "agent_id": agent_id,
        "assertion_id": "a-1",
        "reason": "LowQuality",
        "reasons": ["LowQuality", "Duplicate"],
        "status": "pending",
        "quality_score": 0.42,
        "score_breakdown": {"structure": 1.0, "junk": 0.5},
        "quarantined_at": "2026-02-11T10:23:45.123456+00:00",
        "decided_at": None,
        "decided_by": None,
        "notes": [],
        "subject": "Porto",
        "predicate": "located_in",
        "object": "Portugal",
        "confidence": 0.7,
        "sources": ["https://www.geonames.org/2735943"],
        "assertion": {},
    }
    view.update(fields)
    return view


def breaker_snapshot(agent_id: str = AGENT, **fields: Any) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        "schema_version": 1,
        "agent_id": agent_id,
        "state": "OPEN",
        "reason": "flooding_quarantine",
        "opened_at": "2026-02-11T10:23:45Z",
        "until": "2026-02-11T11:23:45Z",
        "trips": 2,
        "manual": True,
    }
    snapshot.update(fields)
    return snapshot


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "field": field, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Connection, token and errors


def test_bearer_token_from_option(api: FakeAdminApi) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    assert run(api, "quarantine", "list") == 0

    assert only_request(api).headers["Authorization"] == f"Bearer {TOKEN}"


def test_bearer_token_from_file(api: FakeAdminApi, tmp_path: Path) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n", encoding="utf-8")

    code = run(api, "quarantine", "list", "--token-file", str(token_file), token=None)

    assert code == 0
    assert only_request(api).headers["Authorization"] == "Bearer file-token"


def test_bearer_token_from_env(api: FakeAdminApi, monkeypatch: pytest.MonkeyPatch) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})
    monkeypatch.setenv(API_TOKEN_ENV, "env-token")

    assert run(api, "quarantine", "list", token=None) == 0

    assert only_request(api).headers["Authorization"] == "Bearer env-token"


def test_no_token_sends_no_header(api: FakeAdminApi) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    assert run(api, "quarantine", "list", token=None) == 0

    assert "Authorization" not in only_request(api).headers


def test_token_file_with_two_fields_rejected(
    api: FakeAdminApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("alice s3cret\n", encoding="utf-8")

    code = run(api, "quarantine", "list", "--token-file", str(token_file), token=None)

    assert code == 2
    assert "must contain only the token" in capsys.readouterr().err
    assert api.requests == []


def test_token_and_token_file_rejected(
    api: FakeAdminApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n", encoding="utf-8")

    code = run(api, "quarantine", "list", "--token-file", str(token_file))

    assert code == 2
    assert "give --token or --token-file, not both" in capsys.readouterr().err
    assert api.requests == []


def test_api_url_from_env(api: FakeAdminApi, monkeypatch: pytest.MonkeyPatch) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})
    monkeypatch.setenv(API_URL_ENV, api.url)

    assert main(["quarantine", "list"]) == 0

    assert only_request(api).path == "/v1/admin/quarantine"


def test_api_url_with_path_prefix(api: FakeAdminApi) -> None:
    api.respond("GET", "/gate/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    assert main(["quarantine", "list", "--api-url", f"{api.url}/gate/"]) == 0

    assert only_request(api).path == "/gate/v1/admin/quarantine"


def test_api_error_printed_with_field(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        error_body("invalid", "limit must be at most 1000, got 5000", "limit"),
        status=400,
    )

    code = run(api, "quarantine", "list", "--limit", "5000")

    assert code == 2
    err = capsys.readouterr().err
    assert err == "stemedb-gate: error: limit must be at most 1000, got 5000 (field: limit)\n"


def test_unauthorized_without_token_hints(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/circuit_breakers",
        error_body("unauthorized", "missing bearer token"),
        status=401,
    )

    code = run(api, "breaker", "list", token=None)

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("stemedb-gate: error: missing bearer token. Pass --token")
    assert "--token-file" in err
    assert API_TOKEN_ENV in err


def test_unauthorized_with_token_says_rejected(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/circuit_breakers",
        error_body("unauthorized", "invalid bearer token"),
        status=401,
    )

    assert run(api, "breaker", "list") == 2

    err = capsys.readouterr().err
    assert "invalid bearer token. The token was rejected" in err
    assert TOKEN not in err


def test_timeout_504_names_command(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/circuit_breakers/" + AGENT + "/reset",
        error_body("timeout", "no result within 10 seconds", command_id="c-504"),
        status=504,
    )

    assert run(api, "breaker", "reset", AGENT) == 2

    err = capsys.readouterr().err
    assert "no result within 10 seconds (command_id: c-504)" in err
    assert "stemedb-gate command show c-504" in err


def test_connection_refused_names_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code = main(["thresholds", "show", "--api-url", url])

    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot connect to the admin API at {url}" in err
    assert "stemedb-gate admin-api" in err


def test_non_json_success_is_error(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond("GET", "/v1/admin/content_defense/thresholds", b"<html>proxy</html>")

    assert run(api, "thresholds", "show") == 2

    assert "is not JSON: <html>proxy</html>" in capsys.readouterr().err


def test_non_json_error_shows_status(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond("GET", "/v1/admin/content_defense/thresholds", b"Bad Gateway", status=502)

    assert run(api, "thresholds", "show") == 2

    assert "returned HTTP 502: Bad Gateway" in capsys.readouterr().err


def test_invalid_api_url_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["breaker", "list", "--api-url", "127.0.0.1:18180"]) == 2

    assert "invalid admin API URL '127.0.0.1:18180'" in capsys.readouterr().err


# quarantine list, show, summary


def test_quarantine_list_sends_filters(api: FakeAdminApi) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    code = run(
        api,
        "quarantine",
        "list",
        "--agent-id",
        AGENT,
        "--reason",
        "Duplicate",
        "--status",
        "all",
        "--older-than-seconds",
        "3600",
        "--limit",
        "5",
        "--cursor",
        "c1",
    )

    assert code == 0
    request = only_request(api)
    assert request.method == "GET"
    assert request.query == {
        "agent_id": AGENT,
        "reason": "Duplicate",
        "status": "all",
        "older_than_seconds": "3600",
        "limit": "5",
        "cursor": "c1",
    }


def test_quarantine_list_default_sends_no_query(api: FakeAdminApi) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    assert run(api, "quarantine", "list") == 0

    assert only_request(api).query == {}


def test_quarantine_list_table(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {
            "items": [item_view("q0001"), item_view("q0002", OTHER_AGENT, quality_score=0.1)],
            "total": 7,
            "limit": 2,
            "next_cursor": "page-2",
        },
    )

    assert run(api, "quarantine", "list", "--limit", "2") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "AGENT",
        "REASON",
        "STATUS",
        "SCORE",
        "QUARANTINED_AT",
        "CLAIM",
    ]
    assert lines[1].split() == [
        "q0001",
        "8f3a2b1c0000…",
        "LowQuality",
        "pending",
        "0.42",
        "2026-02-11T10:23:45Z",
        "Porto",
        "located_in",
        "Portugal",
    ]
    assert lines[2].split()[1] == "7d2e5f9a1111…"
    assert lines[3] == "2 of 7 items. Next page: --cursor page-2, or --all-pages for all"
    assert AGENT not in "\n".join(lines)


def test_quarantine_list_columns_aligned(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {
            "items": [
                item_view("q1", reason="LowQuality"),
                item_view("q0002", reason="UntrustedHighConfidence"),
            ],
            "total": 2,
            "next_cursor": None,
        },
    )

    assert run(api, "quarantine", "list") == 0

    lines = capsys.readouterr().out.splitlines()[:3]
    starts = {line.index("pending") for line in lines[1:]}
    assert len(starts) == 1
    assert lines[0].index("STATUS") == starts.pop()


def test_quarantine_list_empty(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond("GET", "/v1/admin/quarantine", {"items": [], "total": 0, "next_cursor": None})

    assert run(api, "quarantine", "list") == 0

    assert capsys.readouterr().out == "no quarantine items match\n"


def test_quarantine_list_json_as_is(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"items": [item_view()], "total": 1, "limit": 100, "next_cursor": None}
    api.respond("GET", "/v1/admin/quarantine", body)

    assert run(api, "quarantine", "list", "--json") == 0

    assert json.loads(capsys.readouterr().out) == body


def test_quarantine_list_all_pages(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q1")], "total": 3, "limit": 1, "next_cursor": "c2"},
    )
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q2")], "total": 3, "limit": 1, "next_cursor": "c3"},
    )
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q3")], "total": 3, "limit": 1, "next_cursor": None},
    )

    code = run(api, "quarantine", "list", "--agent-id", AGENT, "--limit", "1", "--all-pages")

    assert code == 0
    assert [request.query.get("cursor") for request in api.requests] == [None, "c2", "c3"]
    assert all(request.query["agent_id"] == AGENT for request in api.requests)
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["q1", "q2", "q3"]
    assert out.splitlines()[-1] == "3 of 3 items"


def test_quarantine_list_all_pages_json(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q1")], "total": 2, "limit": 1, "next_cursor": "c2"},
    )
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q2")], "total": 2, "limit": 1, "next_cursor": None},
    )

    assert run(api, "quarantine", "list", "--all-pages", "--json") == 0

    body = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in body["items"]] == ["q1", "q2"]
    assert body["total"] == 2
    assert body["next_cursor"] is None


def test_quarantine_list_repeated_cursor_stops(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {"items": [item_view("q1")], "total": 9, "limit": 1, "next_cursor": "same"},
    )

    assert run(api, "quarantine", "list", "--all-pages") == 2

    assert "returned cursor 'same' twice" in capsys.readouterr().err
    assert [request.query.get("cursor") for request in api.requests] == [None, "same"]


def test_quarantine_list_escapes_control_chars(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine",
        {
            "items": [item_view(subject="Porto\x1b[2J\nrm")],
            "total": 1,
            "next_cursor": None,
        },
    )

    assert run(api, "quarantine", "list") == 0

    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "Porto\\x1b[2J\\x0arm" in out


def test_quarantine_show_full_details(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond("GET", "/v1/admin/quarantine/q0001", item_view(notes=["looks fine", "ok"]))

    assert run(api, "quarantine", "show", "q0001") == 0

    fields = {
        name: value.strip()
        for name, _, value in (line.partition(":") for line in capsys.readouterr().out.splitlines())
    }
    assert fields["agent_id"] == AGENT
    assert fields["reasons"] == "LowQuality, Duplicate"
    assert fields["quality_score"] == "0.42"
    assert fields["score_breakdown"] == "structure=1, junk=0.5"
    assert fields["quarantined_at"] == "2026-02-11T10:23:45Z"
    assert fields["decided_at"] == "-"
    assert fields["notes"] == "looks fine | ok"
    assert fields["sources"] == "https://www.geonames.org/2735943"


def test_quarantine_show_encodes_id(api: FakeAdminApi) -> None:
    run(api, "quarantine", "show", "q/1?x")

    assert only_request(api).raw_path == "/v1/admin/quarantine/q%2F1%3Fx"


def test_quarantine_show_not_found(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine/q404",
        error_body("not_found", "quarantine item 'q404' not found", "id"),
        status=404,
    )

    assert run(api, "quarantine", "show", "q404") == 2

    err = capsys.readouterr().err
    assert err == "stemedb-gate: error: quarantine item 'q404' not found (field: id)\n"


def test_quarantine_summary_table(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/quarantine/summary",
        {
            "total_pending": 499,
            "oldest_pending_at": "2026-02-11T08:00:00Z",
            "oldest_pending_age_seconds": 8590.4,
            "by_agent": [
                {"agent_id": AGENT, "count": 487, "oldest_pending_at": "2026-02-11T08:00:00Z"},
                {
                    "agent_id": OTHER_AGENT,
                    "count": 12,
                    "oldest_pending_at": "2026-02-11T09:30:00+01:00",
                },
            ],
            "by_reason": [
                {"reason": "LowQuality", "count": 400},
                {"reason": "Duplicate", "count": 99},
            ],
        },
    )

    assert run(api, "quarantine", "summary") == 0

    out = capsys.readouterr().out
    assert only_request(api).path == "/v1/admin/quarantine/summary"
    lines = out.splitlines()
    assert lines[0] == "pending items: 499"
    assert lines[1] == "oldest pending: 2026-02-11T08:00:00Z (2h 23m 10s ago)"
    assert lines[3].split() == ["AGENT", "PENDING", "OLDEST_PENDING_AT"]
    assert lines[4].split() == ["8f3a2b1c0000…", "487", "2026-02-11T08:00:00Z"]
    assert lines[5].split() == ["7d2e5f9a1111…", "12", "2026-02-11T08:30:00Z"]
    assert lines[7].split() == ["REASON", "PENDING"]
    assert lines[8].split() == ["LowQuality", "400"]


# quarantine approve and reject


def test_approve_one_item(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/q0001/approve",
        {
            "command_id": "c1",
            "result": "applied",
            "item": item_view(status="approved", decided_by="alice"),
        },
    )

    code = run(api, "quarantine", "approve", "q0001", "--reason", "known_good", "--note", "ok")

    assert code == 0
    request = only_request(api)
    assert request.method == "POST"
    assert request.query == {"wait": "true"}
    assert request.body == {"reason": "known_good", "note": "ok"}
    assert capsys.readouterr().out == (
        f"item q0001 of agent {AGENT} is now approved (command c1)\n"
    )


def test_reject_one_item_no_wait(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/q0001/reject",
        {"command_id": "c9", "status": "pending"},
        status=202,
    )

    assert run(api, "quarantine", "reject", "q0001", "--no-wait") == 0

    request = only_request(api)
    assert request.query == {}
    assert request.body == {}
    out = capsys.readouterr().out
    assert "reject of item q0001 is pending as command c9" in out
    assert "stemedb-gate command show c9" in out


def test_approve_conflict_exits_2(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/q0001/approve",
        error_body("conflict", "item 'q0001' is already rejected", "id", command_id="c2"),
        status=409,
    )

    assert run(api, "quarantine", "approve", "q0001") == 2

    assert capsys.readouterr().err == (
        "stemedb-gate: error: item 'q0001' is already rejected (field: id, command_id: c2)\n"
    )


def test_idempotency_key_header(api: FakeAdminApi) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/q0001/approve",
        {"command_id": "retry-1", "result": "applied", "item": item_view(status="approved")},
    )

    assert run(api, "quarantine", "approve", "q0001", "--idempotency-key", "retry-1") == 0

    assert only_request(api).headers["Idempotency-Key"] == "retry-1"


def test_approve_several_ids_bulk(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/approve",
        {"command_ids": ["c1", "c2"], "count": 2, "results": {"applied": 2}},
    )

    assert run(api, "quarantine", "approve", "q1", "q2", "q1", "--note", "batch") == 0

    request = only_request(api)
    assert request.query == {"wait": "true"}
    assert request.body == {"ids": ["q1", "q2"], "note": "batch"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "approve of 2 item IDs: 2 commands"
    assert lines[2].split() == ["applied", "2"]


def test_reject_by_agent_partial_exits_1(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/reject",
        {
            "command_ids": ["c1", "c2", "c3"],
            "count": 3,
            "results": {"applied": 1, "not_found": 1, "conflict": 1},
        },
    )

    code = run(api, "quarantine", "reject", "--agent-id", AGENT, "--reason", "agent_flooding")

    assert code == 1
    assert only_request(api).body == {"agent_id": AGENT, "reason": "agent_flooding"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"reject of agent {AGENT}: 3 commands"
    assert [line.split() for line in lines[1:]] == [
        ["RESULT", "ITEMS"],
        ["applied", "1"],
        ["not_found", "1"],
        ["conflict", "1"],
    ]


def test_bulk_by_agent_remaining_exits_1(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/approve",
        {
            "command_ids": ["c1", "c2"],
            "count": 2,
            "unknown_ids": [],
            "remaining": 5,
            "results": {"applied": 2, "not_found": 0, "conflict": 0, "invalid": 0},
        },
    )

    assert run(api, "quarantine", "approve", "--agent-id", AGENT) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["applied", "2"]
    assert lines[-1] == "5 more pending items were left out. Run the command again for them."


def test_bulk_json_keeps_exit_1(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"command_ids": ["c1"], "count": 1, "results": {"applied": 0, "conflict": 1}}
    api.respond("POST", "/v1/admin/quarantine/approve", body)

    assert run(api, "quarantine", "approve", "--agent-id", AGENT, "--json") == 1

    assert json.loads(capsys.readouterr().out) == body


def test_bulk_no_wait_lists_commands(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/quarantine/reject",
        {"command_ids": ["c1", "c2"], "count": 2},
        status=202,
    )

    assert run(api, "quarantine", "reject", "--agent-id", AGENT, "--no-wait") == 0

    assert only_request(api).query == {}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"reject of agent {AGENT}: 2 commands published, pending:"
    assert lines[1:3] == ["c1", "c2"]


def test_bulk_splits_large_id_lists(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"q{number}" for number in range(BULK_MAX_IDS + 5)]
    api.respond(
        "POST",
        "/v1/admin/quarantine/approve",
        {
            "command_ids": ["c"] * BULK_MAX_IDS,
            "count": BULK_MAX_IDS,
            "results": {"applied": BULK_MAX_IDS},
        },
    )
    api.respond(
        "POST",
        "/v1/admin/quarantine/approve",
        {"command_ids": ["c"] * 5, "count": 5, "results": {"applied": 4, "not_found": 1}},
    )

    code = run(api, "quarantine", "approve", *ids, "--json")

    assert code == 1
    assert [len(request.body["ids"]) for request in api.requests] == [BULK_MAX_IDS, 5]
    body = json.loads(capsys.readouterr().out)
    assert body["count"] == BULK_MAX_IDS + 5
    assert body["results"] == {"applied": BULK_MAX_IDS + 4, "not_found": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["q1", "--agent-id", AGENT], "give item IDs or --agent-id to approve, not both"),
        ([], "give the item IDs to approve, or --agent-id"),
    ],
)
def test_approve_target_required(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(api, "quarantine", "approve", *args) == 2

    assert message in capsys.readouterr().err
    assert api.requests == []


# breakers


def test_breaker_list_state_filter(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/circuit_breakers",
        {"circuit_breakers": [breaker_snapshot()], "total": 1, "next_cursor": None},
    )

    assert run(api, "breaker", "list", "--state", "open") == 0

    assert only_request(api).query == {"state": "OPEN"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "AGENT",
        "STATE",
        "MANUAL",
        "TRIPS",
        "OPENED_AT",
        "UNTIL",
        "REASON",
    ]
    assert lines[1].split() == [
        "8f3a2b1c0000…",
        "OPEN",
        "yes",
        "2",
        "2026-02-11T10:23:45Z",
        "2026-02-11T11:23:45Z",
        "flooding_quarantine",
    ]
    assert lines[2] == "1 of 1 breakers"


def test_breaker_list_bad_state_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["breaker", "list", "--state", "ajar"])

    assert exit_info.value.code == 2
    assert "invalid state 'ajar'" in capsys.readouterr().err


def test_breaker_show(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        f"/v1/admin/circuit_breakers/{AGENT}",
        breaker_snapshot(state="CLOSED", until=None, opened_at=None, trips=0, manual=False),
    )

    assert run(api, "breaker", "show", AGENT) == 0

    out = capsys.readouterr().out
    assert f"agent_id:  {AGENT}" in out
    assert "state:     CLOSED" in out
    assert "until:     -" in out


def test_breaker_open_body(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        f"/v1/admin/circuit_breakers/{AGENT}/open",
        {
            "status": "opened",
            "agent_id": AGENT,
            "state": "OPEN",
            "until": "2026-02-11T11:23:45Z",
            "command_id": "c5",
        },
    )

    code = run(
        api,
        "breaker",
        "open",
        AGENT,
        "--reason",
        "flooding_quarantine",
        "--duration-seconds",
        "3600",
    )

    assert code == 0
    request = only_request(api)
    assert request.query == {"wait": "true"}
    assert request.body == {"reason": "flooding_quarantine", "duration_seconds": 3600}
    assert isinstance(request.body["duration_seconds"], int)
    assert capsys.readouterr().out == (
        f"breaker of agent {AGENT} is OPEN until 2026-02-11T11:23:45Z (command c5)\n"
    )


def test_breaker_open_needs_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["breaker", "open", AGENT, "--duration-seconds", "60"])

    assert exit_info.value.code == 2
    assert "--reason" in capsys.readouterr().err


def test_breaker_reset_json(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"status": "reset", "agent_id": AGENT, "state": "CLOSED", "command_id": "c6"}
    api.respond("POST", f"/v1/admin/circuit_breakers/{AGENT}/reset", body)

    assert run(api, "breaker", "reset", AGENT, "--reason", "fixed", "--json") == 0

    assert only_request(api).body == {"reason": "fixed"}
    assert json.loads(capsys.readouterr().out) == body


# allow-list


def test_allowlist_add_body(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "POST",
        "/v1/admin/content_defense/allowlist",
        {
            "status": "added",
            "agent_id": AGENT,
            "expires_at": "2026-02-12T00:00:00Z",
            "command_id": "c7",
        },
    )

    code = run(
        api,
        "allowlist",
        "add",
        AGENT,
        "--reason",
        "backfill_operation",
        "--expires-at",
        "2026-02-12T00:00:00Z",
    )

    assert code == 0
    assert only_request(api).body == {
        "agent_id": AGENT,
        "reason": "backfill_operation",
        "expires_at": "2026-02-12T00:00:00Z",
    }
    assert capsys.readouterr().out == (
        f"agent {AGENT} is allow-listed until 2026-02-12T00:00:00Z (command c7)\n"
    )


def test_allowlist_add_without_expiry(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "POST",
        "/v1/admin/content_defense/allowlist",
        {"status": "added", "agent_id": AGENT, "expires_at": None, "command_id": "c8"},
    )

    assert run(api, "allowlist", "add", AGENT, "--reason", "trusted") == 0

    assert only_request(api).body == {"agent_id": AGENT, "reason": "trusted"}
    assert "allow-listed with no expiry" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["2026-02-12T00:00:00", "tomorrow"])
def test_allowlist_add_bad_expiry_rejected(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["allowlist", "add", AGENT, "--reason", "r", "--expires-at", value])

    assert exit_info.value.code == 2
    assert repr(value) in capsys.readouterr().err


def test_allowlist_list_table(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/content_defense/allowlist",
        {
            "allowlist": [
                {
                    "agent_id": AGENT,
                    "reason": "backfill_operation",
                    "expires_at": "2020-01-01T00:00:00Z",
                    "added_by": "alice",
                    "added_at": "2019-12-31T00:00:00Z",
                },
                {
                    "agent_id": OTHER_AGENT,
                    "reason": "trusted",
                    "expires_at": None,
                    "added_by": "bob",
                    "added_at": "2026-01-01T00:00:00Z",
                },
            ],
            "total": 2,
        },
    )

    assert run(api, "allowlist", "list", "--include-expired") == 0

    assert only_request(api).query == {"include_expired": "true"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AGENT", "EXPIRES_AT", "ADDED_BY", "ADDED_AT", "REASON"]
    assert lines[1].split() == [
        "8f3a2b1c0000…",
        "2020-01-01T00:00:00Z",
        "(expired)",
        "alice",
        "2019-12-31T00:00:00Z",
        "backfill_operation",
    ]
    assert lines[2].split()[1] == "never"
    assert lines[3] == "2 of 2 entries"


def test_allowlist_remove_delete(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "DELETE",
        f"/v1/admin/content_defense/allowlist/{AGENT}",
        {"status": "removed", "agent_id": AGENT, "command_id": "c9"},
    )

    assert run(api, "allowlist", "remove", AGENT) == 0

    request = only_request(api)
    assert request.method == "DELETE"
    assert request.query == {"wait": "true"}
    assert capsys.readouterr().out == f"agent {AGENT} is no longer allow-listed (command c9)\n"


# thresholds and commands


def test_thresholds_show_table(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/content_defense/thresholds",
        {
            "quality_threshold": 0.6,
            "min_requests": 20,
            "timeout_seconds": 3600.0,
            "updated_by": "alice",
            "updated_at": "2026-02-11T10:00:00Z",
        },
    )

    assert run(api, "thresholds", "show") == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[:4]] == [
        ["KEY", "VALUE"],
        ["quality_threshold", "0.6"],
        ["min_requests", "20"],
        ["timeout_seconds", "3600"],
    ]
    assert lines[4] == "last set by alice at 2026-02-11T10:00:00Z"


def test_thresholds_set_parses_numbers(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "PUT",
        "/v1/admin/content_defense/thresholds",
        {"status": "applied", "thresholds": {}, "command_id": "c10"},
    )

    code = run(
        api, "thresholds", "set", "quality_threshold=0.5", "min_requests=30", "timeout_seconds=1e3"
    )

    assert code == 0
    request = only_request(api)
    assert request.query == {"wait": "true"}
    assert request.body == {"quality_threshold": 0.5, "min_requests": 30, "timeout_seconds": 1000.0}
    assert isinstance(request.body["min_requests"], int)
    assert capsys.readouterr().out == (
        "thresholds applied: quality_threshold=0.5 min_requests=30 timeout_seconds=1000 "
        "(command c10)\n"
    )


def test_thresholds_set_unknown_key_from_api(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.respond(
        "PUT",
        "/v1/admin/content_defense/thresholds",
        error_body("invalid", "unknown threshold 'qualty_threshold'", "qualty_threshold"),
        status=400,
    )

    assert run(api, "thresholds", "set", "qualty_threshold=0.5") == 2

    assert capsys.readouterr().err == (
        "stemedb-gate: error: unknown threshold 'qualty_threshold' (field: qualty_threshold)\n"
    )


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("quality_threshold", "expected key=value"),
        ("quality_threshold=high", "invalid value 'high' for quality_threshold"),
        ("quality_threshold=nan", "invalid value 'nan' for quality_threshold"),
    ],
)
def test_thresholds_set_bad_value_rejected(
    assignment: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["thresholds", "set", assignment])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_thresholds_set_duplicate_key(
    api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(api, "thresholds", "set", "min_requests=10", "min_requests=20") == 2

    assert "threshold min_requests is given twice" in capsys.readouterr().err
    assert api.requests == []


def test_command_show(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.respond(
        "GET",
        "/v1/admin/commands/c5",
        {
            "command_id": "c5",
            "kind": "breaker_open",
            "status": "applied",
            "issued_by": "alice",
            "results": [{"state": "OPEN", "until": "2026-02-11T11:23:45+00:00", "reason": "x"}],
        },
    )

    assert run(api, "command", "show", "c5") == 0

    out = capsys.readouterr().out
    assert "status:     applied" in out
    assert "result 1:   state=OPEN until=2026-02-11T11:23:45Z reason=x" in out
