"""Every mutating operation in /openapi.json, sent without a valid token, gets 401.

The operations come from the document the app serves, so a write route added later
is covered as soon as it is documented. A unit test in test_routes.py checks that the
document and the router list the same routes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.admin_api.conftest import ALICE_TOKEN, Api, add_items, agent_id, make_item

MUTATING_METHODS = ("post", "put", "patch", "delete")
UNAUTHORIZED_HEADERS = {
    "no Authorization": {},
    "empty bearer": {"Authorization": "Bearer "},
    "wrong token": {"Authorization": "Bearer wrong-token-0123456789abcdef"},
    "token with one character more": {"Authorization": f"Bearer {ALICE_TOKEN}x"},
    "valid token in Basic scheme": {"Authorization": f"Basic {ALICE_TOKEN}"},
}


def _mutating_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in MUTATING_METHODS
    )


def _fill_path(path: str, values: dict[str, str]) -> str:
    """Replace each ``{name}`` in ``path``, and fail when ``values`` lacks one of them."""
    names = re.findall(r"\{(\w+)\}", path)
    missing = [name for name in names if name not in values]
    assert not missing, f"{path}: add a well-formed value for path parameter(s) {missing}"
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], path)


async def _document(api: Api) -> dict[str, Any]:
    status, document = await api.call("GET", "/openapi.json", auth=False)
    assert status == 200
    assert isinstance(document, dict)
    return document


async def test_walk_covers_every_write_route(api: Api) -> None:
    """The walk finds the write routes that the router serves, and no fewer."""
    document = await _document(api)
    routed = {
        (route.method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical))
        for route in api.client.app.router.routes()
        if route.resource is not None and route.method.lower() in MUTATING_METHODS
    }

    walked = set(_mutating_operations(document))

    assert walked
    assert walked == routed


@pytest.mark.parametrize("case", list(UNAUTHORIZED_HEADERS))
async def test_write_routes_reject_bad_token(api: Api, case: str) -> None:
    """Each mutating operation returns 401 and publishes no command.

    The item and the agent in the path exist, so a route that skipped authentication
    would reach its handler and return something other than 401.
    """
    item = make_item(1)
    add_items(api.read_model, [item])
    path_values = {"id": item.id, "agent_id": agent_id(1), "command_id": "walk-command-1"}
    document = await _document(api)
    statuses: dict[str, int] = {}
    error_codes: dict[str, str] = {}
    challenges: dict[str, str | None] = {}

    for method, template in _mutating_operations(document):
        label = f"{method.upper()} {template}"
        path = _fill_path(template, path_values)
        status, body = await api.call(
            method.upper(), path, json={}, headers=UNAUTHORIZED_HEADERS[case], auth=False
        )
        statuses[label] = status
        error_codes[label] = body["error"] if isinstance(body, dict) else repr(body)
        async with api.client.request(
            method.upper(), path, headers=UNAUTHORIZED_HEADERS[case]
        ) as response:
            challenges[label] = response.headers.get("WWW-Authenticate")

    assert statuses
    assert statuses == dict.fromkeys(statuses, 401)
    assert error_codes == dict.fromkeys(error_codes, "unauthorized")
    assert all(value is not None and value.startswith("Bearer") for value in challenges.values())
    assert api.worker.commands == []
