"""Routes of the review page: the HTML at ``/quarantine`` and its files under ``/review/``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

logger = logging.getLogger(__name__)

REVIEW_PAGE_PATH = "/quarantine"
ASSET_PREFIX = "/review/"

# The page loads only its own files and talks only to its own origin. No inline script
# or style is allowed, which is why the page has none.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    """One file of ``static/`` and the content type it is served with."""

    file_name: str
    content_type: str


# URL path of each served file. Only these are served: there is no directory listing
# and no path that a request could point elsewhere.
ASSETS = {
    REVIEW_PAGE_PATH: Asset("quarantine.html", "text/html"),
    ASSET_PREFIX + "review.js": Asset("review.js", "text/javascript"),
    ASSET_PREFIX + "review.css": Asset("review.css", "text/css"),
    ASSET_PREFIX + "favicon.svg": Asset("favicon.svg", "image/svg+xml"),
}


def _read_asset(file_name: str) -> bytes:
    return resources.files(__package__).joinpath("static", file_name).read_bytes()


def add_review_page(app: web.Application) -> None:
    """Add the page, its files, and a redirect from ``/`` to the page, to ``app``.

    The files are read once here, so a missing one stops the service at start rather
    than failing a browser later.
    """
    for path, asset in ASSETS.items():
        body = _read_asset(asset.file_name)
        headers = PAGE_HEADERS if path == REVIEW_PAGE_PATH else COMMON_HEADERS
        app.router.add_get(path, _file_handler(body, asset.content_type, headers))
    app.router.add_get("/", _redirect_to_page)
    logger.debug("review page routes added: %s", ", ".join(ASSETS))


def _file_handler(body: bytes, content_type: str, headers: dict[str, str]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    return handle


async def _redirect_to_page(request: web.Request) -> web.Response:
    # Returned, not raised: the API's error middleware turns raised HTTP exceptions
    # into JSON errors and would drop the Location header.
    return web.Response(status=302, headers={"Location": REVIEW_PAGE_PATH, **COMMON_HEADERS})
