"""The review site in-process: page, files, headers, and the API routes it serves too."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin_api.app import create_app, create_review_app, serve_sites
from admin_api.errors import AdminApiError
from admin_api.read_model import ReadModel
from admin_api.review import ASSETS, REVIEW_PAGE_PATH
from admin_api.service import SERVICE_KEY
from schemas.admin import AdminCommandKind
from streams.settings import GateSettings
from tests.unit.admin_api.conftest import ALICE, FakeWorker, add_items, make_item

Q = "/v1/admin/quarantine"


class PageParser(HTMLParser):
    """Collect the page's URLs, its form controls and which ids have a label."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.controls: list[dict[str, str | None]] = []
        self.label_targets: set[str] = set()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        for name in ("src", "href", "action"):
            if attributes.get(name) is not None:
                self.urls.append(str(attributes[name]))
        if tag == "label" and attributes.get("for"):
            self.label_targets.add(str(attributes["for"]))
        if tag in ("input", "select", "textarea"):
            self.controls.append(attributes)


@pytest.fixture
async def review(
    api_settings: GateSettings, read_model: ReadModel, worker: FakeWorker
) -> AsyncIterator[TestClient[Any, Any]]:
    api_app = create_app(api_settings, sink=worker, read_model=read_model)
    review_app = create_review_app(api_app[SERVICE_KEY])
    async with TestClient(TestServer(review_app)) as client:
        yield client


async def _page(review: TestClient[Any, Any]) -> tuple[aiohttp.ClientResponse, str]:
    response = await review.get(REVIEW_PAGE_PATH)
    return response, await response.text()


async def test_page_served_with_security_headers(review: TestClient[Any, Any]) -> None:
    response, text = await _page(review)

    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<title>" in text


async def test_page_files_served_with_types(review: TestClient[Any, Any]) -> None:
    for path, asset in ASSETS.items():
        response = await review.get(path)
        assert response.status == 200, path
        assert response.content_type == asset.content_type, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path


async def test_page_references_only_own_files(review: TestClient[Any, Any]) -> None:
    _, text = await _page(review)
    parser = PageParser()
    parser.feed(text)

    for url in parser.urls:
        assert url.startswith(("/", "#")), url
        assert not url.startswith("//"), url
        if url.startswith("/"):
            assert url in ASSETS, url


async def test_page_files_load_nothing_external(review: TestClient[Any, Any]) -> None:
    script = await (await review.get("/review/review.js")).text()
    style = await (await review.get("/review/review.css")).text()

    assert not re.search(r"https?://", script)
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "eval(" not in script
    assert "url(" not in style
    assert "@import" not in style


async def test_page_controls_labelled(review: TestClient[Any, Any]) -> None:
    _, text = await _page(review)
    parser = PageParser()
    parser.feed(text)

    assert parser.controls
    for control in parser.controls:
        labelled = control.get("id") in parser.label_targets or control.get("aria-label")
        assert labelled, control
    assert len(parser.ids) == len(set(parser.ids))


async def test_token_input_has_no_name(review: TestClient[Any, Any]) -> None:
    """A control without a name is never submitted, so the token cannot reach a URL."""
    _, text = await _page(review)
    parser = PageParser()
    parser.feed(text)

    (token_input,) = [c for c in parser.controls if c.get("id") == "token-input"]
    assert token_input.get("type") == "password"
    assert "name" not in token_input
    assert all("name" not in control for control in parser.controls)


async def test_root_redirects_to_page(review: TestClient[Any, Any]) -> None:
    response = await review.get("/", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] == REVIEW_PAGE_PATH


async def test_review_site_api_needs_token(review: TestClient[Any, Any]) -> None:
    anonymous = await review.get(f"{Q}/summary")
    signed_in = await review.get(f"{Q}/summary", headers=ALICE)

    assert anonymous.status == 401
    assert signed_in.status == 200
    assert (await signed_in.json())["total_pending"] == 0


async def test_review_site_decision_issued_by_operator(
    review: TestClient[Any, Any], read_model: ReadModel, worker: FakeWorker
) -> None:
    """A reject through the review site is the same command as one through the API."""
    item = make_item(1)
    add_items(read_model, [item])

    response = await review.post(
        f"{Q}/reject?wait=true",
        data=orjson.dumps({"ids": [item.id], "note": "spam"}),
        headers={**ALICE, "Content-Type": "application/json"},
    )
    body = await response.json()

    assert response.status == 200
    assert body["results"]["applied"] == 1
    (command,) = worker.commands
    assert command.kind is AdminCommandKind.REJECT
    assert command.issued_by == "alice"
    assert command.note == "spam"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_sites_binds_both_ports(
    api_settings: GateSettings, read_model: ReadModel, worker: FakeWorker
) -> None:
    api_app = create_app(api_settings, sink=worker, read_model=read_model)
    review_app = create_review_app(api_app[SERVICE_KEY])
    port, review_port = _free_port(), _free_port()

    async with (
        serve_sites(api_app, review_app, "127.0.0.1", port, review_port),
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"http://127.0.0.1:{review_port}{REVIEW_PAGE_PATH}") as page:
            page_status = page.status
        async with session.get(f"http://127.0.0.1:{port}{REVIEW_PAGE_PATH}") as on_api:
            api_page_status = on_api.status
        async with session.get(f"http://127.0.0.1:{port}/readyz") as ready:
            ready_status = ready.status

    assert page_status == 200
    assert api_page_status == 404
    assert ready_status == 200


async def test_serve_sites_busy_review_port_error(
    api_settings: GateSettings, read_model: ReadModel, worker: FakeWorker
) -> None:
    api_app = create_app(api_settings, sink=worker, read_model=read_model)
    review_app = create_review_app(api_app[SERVICE_KEY])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        review_port = int(busy.getsockname()[1])

        with pytest.raises(AdminApiError, match=r"admin_api\.review_port"):
            async with serve_sites(api_app, review_app, "127.0.0.1", _free_port(), review_port):
                pass
