"""``stemedb-gate`` admin commands against the real admin API, gate worker and broker.

The API runs as ``stemedb-gate admin-api`` in a child process on a free loopback port
with a tokens file, and every CLI command runs as its own ``python -m streams.cli``
process, the way an operator runs it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import GateSettings
from streams.topics import ASSERTIONS
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import AdminApiProcess, Agent, free_port, produce

pytestmark = pytest.mark.integration

OPERATOR = "alice"
TOKEN = "cli-integration-token"
READY_TIMEOUT_SECONDS = 90.0
CLI_TIMEOUT_SECONDS = 60.0
STATE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Awaitable[CliResult]]


@dataclass
class Gate:
    settings: GateSettings
    api: AdminApiProcess
    cli: Cli


@pytest.fixture
async def gate(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory, tmp_path: Path
) -> AsyncIterator[Gate]:
    """Topics, one worker and the admin API, with a ``cli`` function that runs commands."""
    tokens_file = tmp_path / "api-tokens"
    tokens_file.write_text(f"# operators\n{OPERATOR} {TOKEN}\n", encoding="utf-8")
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n", encoding="utf-8")
    settings = await gate_settings_factory(
        admin_api={"port": free_port(), "review_port": free_port(), "tokens_file": tokens_file}
    )
    await worker_factory(settings)
    api = AdminApiProcess(settings, tmp_path / "admin-api.log")
    try:
        await api.start()

        async def cli(*args: str, token_file_path: Path = token_file) -> CliResult:
            return await run_cli(
                *args, "--api-url", api.base_url, "--token-file", str(token_file_path)
            )

        yield Gate(settings, api, cli)
    finally:
        api.stop()


async def run_cli(*args: str) -> CliResult:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"stemedb-gate {' '.join(args)} timed out after {CLI_TIMEOUT_SECONDS}s"
        ) from None
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


async def eventually(
    check: Callable[[], Awaitable[Any]],
    description: str,
    timeout_seconds: float = STATE_TIMEOUT_SECONDS,
) -> Any:
    """Return the first truthy value of ``check()``, retried until the read model catches up."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds}s waiting for {description}")
        await asyncio.sleep(0.5)


async def quarantine_held(gate: Gate, agent: Agent, count: int) -> list[dict[str, Any]]:
    """Send ``count`` assertions that the gate quarantines and wait until the API lists them.

    Confidence 0.97 without sources from an agent with no review history is
    UntrustedHighConfidence.
    """
    records = [
        (agent.record_key, orjson.dumps(agent.assertion(confidence=0.97, sources=[])))
        for _ in range(count)
    ]
    await produce(
        gate.settings.kafka.bootstrap_servers, gate.settings.kafka.topic(ASSERTIONS), records
    )

    async def listed() -> list[dict[str, Any]] | None:
        result = await gate.cli("quarantine", "list", "--agent-id", agent.agent_id, "--json")
        assert result.code == 0, result.err
        items: list[dict[str, Any]] = result.json()["items"]
        return items if len(items) >= count else None

    items: list[dict[str, Any]] = await eventually(listed, f"{count} items of {agent.label}")
    return items


async def test_cli_reviews_quarantine(gate: Gate, tmp_path: Path) -> None:
    """List, show, summarize, approve and bulk-reject held items with the CLI."""
    reviewed = Agent("reviewed")
    flooder = Agent("flooder")
    (item,) = await quarantine_held(gate, reviewed, 1)
    flooded = await quarantine_held(gate, flooder, 3)

    # Table output: the agent id is cut, the item id is whole.
    listing = await gate.cli("quarantine", "list", "--agent-id", reviewed.agent_id)
    assert listing.code == 0, listing.err
    assert item["id"] in listing.out
    assert reviewed.agent_id[:12] + "…" in listing.out
    assert reviewed.agent_id not in listing.out
    assert "UntrustedHighConfidence" in listing.out

    details = await gate.cli("quarantine", "show", item["id"])
    assert details.code == 0, details.err
    assert f"agent_id:        {reviewed.agent_id}" in details.out

    summary = await gate.cli("quarantine", "summary", "--json")
    assert summary.code == 0, summary.err
    by_agent = {row["agent_id"]: row["count"] for row in summary.json()["by_agent"]}
    assert by_agent == {reviewed.agent_id: 1, flooder.agent_id: 3}

    approved = await gate.cli("quarantine", "approve", item["id"], "--note", "checked by hand")
    assert approved.code == 0, approved.err
    assert f"item {item['id']} of agent {reviewed.agent_id} is now approved" in approved.out

    again = await gate.cli("quarantine", "approve", item["id"])
    assert again.code == 2
    assert again.err.startswith("stemedb-gate: error: ")
    assert "command_id: " in again.err

    rejected = await gate.cli(
        "quarantine", "reject", "--agent-id", flooder.agent_id, "--reason", "agent_flooding"
    )
    assert rejected.code == 0, rejected.out + rejected.err
    assert f"reject of agent {flooder.agent_id}: 3 commands" in rejected.out

    repeated = await gate.cli("quarantine", "reject", *(entry["id"] for entry in flooded), "--json")
    assert repeated.code == 1, repeated.err
    assert repeated.json()["results"]["applied"] == 0

    wrong_token = tmp_path / "wrong-token"
    wrong_token.write_text("not-the-token\n", encoding="utf-8")
    unauthorized = await gate.cli("quarantine", "list", token_file_path=wrong_token)
    assert unauthorized.code == 2
    assert "The token was rejected" in unauthorized.err


async def test_cli_controls_breaker_allowlist_thresholds(gate: Gate) -> None:
    """Open and reset a breaker, allow-list an agent and change a threshold with the CLI."""
    agent = Agent("controlled")

    opened = await gate.cli(
        "breaker", "open", agent.agent_id, "--reason", "flooding", "--duration-seconds", "600"
    )
    assert opened.code == 0, opened.err
    assert f"breaker of agent {agent.agent_id} is OPEN until " in opened.out

    async def breaker_state() -> str | None:
        result = await gate.cli("breaker", "show", agent.agent_id, "--json")
        assert result.code == 0, result.err
        state: str = result.json()["state"]
        return state if state == "OPEN" else None

    await eventually(breaker_state, "the breaker to show OPEN")
    listing = await gate.cli("breaker", "list", "--state", "open")
    assert listing.code == 0, listing.err
    assert agent.agent_id[:12] + "…" in listing.out

    reset = await gate.cli("breaker", "reset", agent.agent_id, "--reason", "test over")
    assert reset.code == 0, reset.err
    assert f"breaker of agent {agent.agent_id} is CLOSED" in reset.out

    added = await gate.cli(
        "allowlist",
        "add",
        agent.agent_id,
        "--reason",
        "backfill_operation",
        "--expires-at",
        "2099-01-01T00:00:00Z",
    )
    assert added.code == 0, added.err
    assert "is allow-listed until 2099-01-01T00:00:00Z" in added.out

    async def allowlisted(present: bool) -> bool:
        result = await gate.cli("allowlist", "list", "--json")
        assert result.code == 0, result.err
        agents = {entry["agent_id"] for entry in result.json()["allowlist"]}
        return (agent.agent_id in agents) is present

    await eventually(lambda: allowlisted(True), "the allow-list entry")
    removed = await gate.cli("allowlist", "remove", agent.agent_id)
    assert removed.code == 0, removed.err
    assert f"agent {agent.agent_id} is no longer allow-listed" in removed.out
    await eventually(lambda: allowlisted(False), "the allow-list entry to go")

    changed = await gate.cli("thresholds", "set", "quality_threshold=0.5", "min_requests=30")
    assert changed.code == 0, changed.err
    assert "quality_threshold=0.5 min_requests=30" in changed.out

    async def thresholds_applied() -> bool:
        result = await gate.cli("thresholds", "show", "--json")
        assert result.code == 0, result.err
        body = result.json()
        return bool(body["quality_threshold"] == 0.5 and body["min_requests"] == 30)

    await eventually(thresholds_applied, "the new thresholds")
    table = await gate.cli("thresholds", "show")
    assert f"last set by {OPERATOR} at " in table.out

    unknown = await gate.cli("thresholds", "set", "qualty_threshold=0.5")
    assert unknown.code == 2
    assert "(field: qualty_threshold)" in unknown.err
