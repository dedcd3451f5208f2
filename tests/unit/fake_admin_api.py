"""A stand-in for the admin API: an aiohttp server on 127.0.0.1 with canned JSON responses.

It runs its own event loop in a background thread, so a test can call the synchronous
``stemedb-gate`` entry point, which starts an event loop of its own, against it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

START_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake API received it."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeAdminApi:
    """Record every request and respond with the responses queued for its method and path.

    Responses queued for one route are returned in order, and the last one is repeated.
    A route with none gets a 404 in the API's error shape.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._responses: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond(self, method: str, path: str, body: Any, status: int = 200) -> None:
        """Queue a response. ``body`` is sent as JSON, unless it is ``bytes``, sent as is."""
        self._responses.setdefault((method, path), []).append((status, body))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="fake-admin-api", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("fake admin API did not start")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_SECONDS)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._start_site())
        self._started.set()
        try:
            loop.run_forever()
        finally:
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _start_site(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path.split("?", 1)[0],
                query=dict(request.query),
                headers=dict(request.headers),
                body=json.loads(raw) if raw else None,
            )
        )
        queued = self._responses.get((request.method, request.path))
        if not queued:
            return web.json_response(
                {
                    "error": "not_found",
                    "message": f"no fake response for {request.method} {request.path}",
                    "field": None,
                },
                status=404,
            )
        status, body = queued.pop(0) if len(queued) > 1 else queued[0]
        if isinstance(body, bytes):
            return web.Response(body=body, status=status, content_type="text/html")
        return web.json_response(body, status=status)


def running_fake_api() -> Iterator[FakeAdminApi]:
    api = FakeAdminApi()
    api.start()
    try:
        yield api
    finally:
        api.stop()
