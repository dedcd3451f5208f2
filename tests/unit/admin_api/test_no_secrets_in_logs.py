"""No bearer token and no assertion signature reaches a log record of the admin API.

The app is built inside the capture, so the startup lines (the tokens file that was
loaded) are checked as well as the requests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin_api.app import create_app
from admin_api.read_model import ReadModel
from streams.settings import GateSettings
from tests.unit.admin_api.conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    Api,
    FakeWorker,
    add_items,
    agent_id,
    make_item,
)

SIGNATURE = "5e1f" * 32
Q = "/v1/admin/quarantine"


@pytest.fixture
async def logged_api(
    api_settings: GateSettings,
    read_model: ReadModel,
    worker: FakeWorker,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Api]:
    """An in-process admin API whose startup and requests log at DEBUG into ``caplog``."""
    caplog.set_level(logging.DEBUG)
    app = create_app(api_settings, sink=worker, read_model=read_model)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, read_model, worker)


def _logged_text(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return each record's message, raw arguments and traceback, as text."""
    return [
        f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    ]


async def test_failed_sign_in_logs_no_token(
    logged_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    near_misses = [
        f"Bearer {ALICE_TOKEN}x",
        f"Basic {ALICE_TOKEN}",
        f"Token {ALICE_TOKEN}",
        f"Bearer {ALICE_TOKEN[:-1]}",
    ]

    for authorization in near_misses:
        status, _ = await logged_api.call(
            "POST",
            f"{Q}/approve",
            json={"agent_id": agent_id(1), "note": ALICE_TOKEN},
            headers={"Authorization": authorization},
            auth=False,
        )
        assert status == 401

    logged = _logged_text(caplog)
    assert logged, "the requests logged nothing, so this test checks nothing"
    assert [line for line in logged if ALICE_TOKEN[:-1] in line] == []


async def test_writes_log_no_token_or_signature(
    logged_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed items are approved and rejected, with the signature also in a body field."""
    approved = make_item(1)
    approved = approved.model_copy(
        update={"assertion": {**approved.assertion, "signature": SIGNATURE}}
    )
    rejected = make_item(2)
    rejected = rejected.model_copy(
        update={"assertion": {**rejected.assertion, "signature": SIGNATURE}}
    )
    add_items(logged_api.read_model, [approved, rejected])
    bob = {"Authorization": f"Bearer {BOB_TOKEN}"}

    approve_status, _ = await logged_api.call(
        "POST", f"{Q}/{approved.id}/approve?wait=true", json={"note": f"signature {SIGNATURE}"}
    )
    reject_status, _ = await logged_api.call(
        "POST",
        f"{Q}/reject?wait=true",
        json={"ids": [rejected.id], "reason": SIGNATURE[:200]},
        headers=bob,
        auth=False,
    )
    item_status, item = await logged_api.call("GET", f"{Q}/{approved.id}")
    invalid_status, _ = await logged_api.call(
        "POST", f"{Q}/{approved.id}/approve", json={"signature": SIGNATURE}
    )

    assert approve_status == 200
    assert reject_status == 200
    assert item_status == 200
    assert item["assertion"]["signature"] == SIGNATURE
    assert invalid_status == 400
    logged = _logged_text(caplog)
    assert any("published command" in line for line in logged)
    assert [line for line in logged if ALICE_TOKEN in line] == []
    assert [line for line in logged if BOB_TOKEN in line] == []
    assert [line for line in logged if SIGNATURE in line] == []


async def test_server_error_log_has_no_token(
    logged_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A write whose publish fails unexpectedly logs a traceback without the token."""
    logged_api.worker.failure = RuntimeError("sink failed")
    item = make_item(3)
    add_items(logged_api.read_model, [item])

    status, _ = await logged_api.call("POST", f"{Q}/{item.id}/approve", json={})

    assert status == 500
    tracebacks = [record for record in caplog.records if record.exc_info is not None]
    assert tracebacks, "the failed request logged no traceback"
    logged = _logged_text(caplog)
    assert [line for line in logged if ALICE_TOKEN in line] == []
