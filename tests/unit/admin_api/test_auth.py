"""Tokens file parsing, start-up refusal without tokens, and 401s over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from admin_api.app import create_app
from admin_api.auth import (
    ANONYMOUS_OPERATOR,
    build_authenticator,
    is_loopback,
    load_tokens,
    parse_tokens,
)
from streams.errors import ConfigError
from streams.settings import AdminApiSettings, GateSettings
from tests.unit.admin_api.conftest import ALICE_TOKEN, BOB_TOKEN, Api, add_items, make_item

GOOD_TOKEN = "s3cret-token-for-tests-only"


def test_parse_tokens_comments_and_blank_lines() -> None:
    text = f"# operators\n\nalice {GOOD_TOKEN}\n  bob {GOOD_TOKEN}x   # on call\n"

    operators = parse_tokens(text, "tokens")

    assert sorted(operators.values()) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("alice", "expected 'operator-name token'"),
        (f"alice {GOOD_TOKEN} extra", "expected 'operator-name token'"),
        ("alice short", "at least 16"),
        (f"al/ice {GOOD_TOKEN}", "invalid operator name"),
    ],
)
def test_parse_tokens_rejects_bad_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_tokens(f"# header\n{line}\n", "tokens")

    assert message in str(raised.value)
    assert "tokens line 2" in str(raised.value)


def test_parse_tokens_shared_token_rejected_without_echo() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_tokens(f"alice {GOOD_TOKEN}\nbob {GOOD_TOKEN}\n", "tokens")

    assert "same token" in str(raised.value)
    assert GOOD_TOKEN not in str(raised.value)


def test_load_tokens_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_tokens(tmp_path / "absent")

    assert "admin_api.tokens_file" in str(raised.value)


def test_load_tokens_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# nobody yet\n")

    with pytest.raises(ConfigError) as raised:
        load_tokens(path)

    assert "no 'operator-name token' line" in str(raised.value)


def test_load_tokens_warns_when_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice {GOOD_TOKEN}\n")
    path.chmod(0o644)

    with caplog.at_level(logging.WARNING):
        load_tokens(path)

    assert "readable by other users" in caplog.text
    assert GOOD_TOKEN not in caplog.text


def test_no_tokens_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as raised:
        build_authenticator(AdminApiSettings())

    assert "admin_api.tokens_file" in str(raised.value)


def test_create_app_refuses_without_tokens(api_settings: GateSettings) -> None:
    settings = api_settings.model_copy(update={"admin_api": AdminApiSettings()})

    with pytest.raises(ConfigError):
        create_app(settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "api.internal"])
def test_unauthenticated_refused_off_loopback(host: str) -> None:
    settings = AdminApiSettings(host=host, allow_unauthenticated=True)

    with pytest.raises(ConfigError) as raised:
        build_authenticator(settings)

    assert "loopback" in str(raised.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_unauthenticated_on_loopback_is_anonymous(host: str) -> None:
    authenticator = build_authenticator(AdminApiSettings(host=host, allow_unauthenticated=True))

    assert not authenticator.enabled
    assert authenticator.operator_for(None) == ANONYMOUS_OPERATOR
    assert is_loopback(host)


def test_tokens_file_wins_over_unauthenticated(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice {GOOD_TOKEN}\n")

    authenticator = build_authenticator(
        AdminApiSettings(tokens_file=path, allow_unauthenticated=True)
    )

    assert authenticator.enabled
    assert authenticator.operator_for(f"Bearer {GOOD_TOKEN}") == "alice"
    assert authenticator.operator_for(f"bearer {GOOD_TOKEN}") == "alice"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {ALICE_TOKEN}"},
        {"Authorization": "Bearer "},
    ],
)
async def test_admin_route_without_valid_token_is_401(api: Api, headers: dict[str, str]) -> None:
    status, body = await api.call("GET", "/v1/admin/quarantine", headers=headers, auth=False)

    assert status == 401
    assert body["error"] == "unauthorized"
    assert body["field"] is None


async def test_write_without_token_publishes_nothing(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, _ = await api.call("POST", f"/v1/admin/quarantine/{item.id}/approve", auth=False)

    assert status == 401
    assert api.worker.commands == []


async def test_unknown_admin_route_is_401_before_404(api: Api) -> None:
    status, _ = await api.call("GET", "/v1/admin/nothing-here", auth=False)

    assert status == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_open_routes_need_no_token(api: Api, path: str) -> None:
    status, _ = await api.call("GET", path, auth=False)

    assert status == 200


async def test_operator_name_becomes_issued_by(api: Api) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    status, _ = await api.call(
        "POST",
        f"/v1/admin/quarantine/{item.id}/reject",
        headers={"Authorization": f"Bearer {BOB_TOKEN}"},
        auth=False,
    )

    assert status == 202
    assert [command.issued_by for command in api.worker.commands] == ["bob"]


async def test_tokens_never_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    item = make_item(1)
    add_items(api.read_model, [item])

    with caplog.at_level(logging.DEBUG):
        await api.call("POST", f"/v1/admin/quarantine/{item.id}/approve?wait=true")
        await api.call("GET", "/v1/admin/quarantine", headers={"Authorization": "Bearer nope"})

    assert ALICE_TOKEN not in caplog.text
    assert "nope" not in caplog.text
