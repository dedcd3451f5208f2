"""Every shell block of docs/runbooks runs, as written, against a live local stack.

The stack is a real broker, a worker with uuid topics and group, and traffic that
leaves something for each command to find: quarantined items, an OPEN breaker, dead
letters and committed offsets. Blocks marked ``sh admin-api`` also get an admin API.
Each block runs in ``bash -euo pipefail`` after its page's "Addresses" block, with the
variables pointing at this stack.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from streams.localbroker import LocalBroker
from streams.settings import GateSettings
from streams.topics import ASSERTIONS
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import Agent, WorkerProcess, free_port, produce, settings_env
from tests.monitoring import ROOT

pytestmark = pytest.mark.integration

RUNBOOKS = ROOT / "docs" / "runbooks"
BLOCK = re.compile(r"^```(sh(?: admin-api)?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
COMMAND_TIMEOUT_SECONDS = 90.0
ADMIN_API_READY_SECONDS = 60.0


@dataclass(frozen=True)
class Block:
    page: str
    number: int
    needs_admin_api: bool
    script: str


def runbook_blocks() -> list[Block]:
    """Return every runnable block, each prefixed with its page's addresses block."""
    blocks: list[Block] = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        found = BLOCK.findall(path.read_text(encoding="utf-8"))
        if not found:
            continue
        addresses_tag, addresses = found[0]
        assert addresses_tag == "sh", f"{path.name}: the first block must be the addresses"
        for number, (tag, script) in enumerate(found[1:], start=2):
            blocks.append(Block(path.name, number, tag == "sh admin-api", addresses + script))
    return blocks


@dataclass
class Stack:
    settings: GateSettings
    worker: WorkerProcess
    env: dict[str, str]


async def _play_traffic(settings: GateSettings) -> int:
    """Produce records that leave items, a tripped breaker and dead letters; return the count."""
    honest = [Agent(f"honest{i}") for i in range(3)]
    broken = Agent("broken")
    records: list[tuple[bytes | None, bytes | None]] = []
    for agent in honest:
        records += [(agent.record_key, agent.encoded()) for _ in range(5)]
    # Placeholder objects: LowQuality, and after 20 of them the breaker opens.
    records += [(broken.record_key, broken.encoded(object="n/a")) for _ in range(22)]
    records += [(honest[0].record_key, b"not-json") for _ in range(3)]
    await produce(settings.kafka.bootstrap_servers, settings.kafka.topic(ASSERTIONS), records)
    return len(records)


async def _wait_for(
    worker: WorkerProcess, name: str, at_least: float, labels: dict[str, str]
) -> None:
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if await worker.metric(name, labels) >= at_least:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{name}{labels} stayed below {at_least}:\n{worker.log_tail()}")


def _start_admin_api(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "admin-api"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


async def _admin_api_ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + ADMIN_API_READY_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    return False


@pytest.fixture
async def stack(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory, kafka_bootstrap: str
) -> AsyncIterator[Stack]:
    settings = await gate_settings_factory(
        worker={"sweep_interval_seconds": 1.0, "lag_poll_interval_seconds": 1.0}
    )
    worker = await worker_factory(settings)
    sent = await _play_traffic(settings)
    await _wait_for(worker, "stemedb_decision_seconds_count", sent, {})
    await _wait_for(worker, "stemedb_breakers", 1, {"state": "OPEN"})

    broker = LocalBroker()
    if not broker.libs_dir.is_dir():
        broker.ensure_installed()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        # settings_env writes an unset optional value as "None", which is not a path.
        **{key: value for key, value in settings_env(settings).items() if value != "None"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "WORKER": worker.base_url,
        "KAFKA": kafka_bootstrap,
        "GROUP": settings.kafka.app_id,
        "KAFKA_LIBS": str(broker.libs_dir),
        "STEMEDB_TOPIC_PREFIX": settings.kafka.topic_prefix,
    }
    yield Stack(settings, worker, env)


def _run(block: Block, env: dict[str, str]) -> str | None:
    """Run one block; return a failure report, or None when it exited 0."""
    try:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.script],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return f"{block.page} block {block.number} timed out:\n{block.script}"
    if result.returncode == 0 and result.stdout.strip():
        return None
    return (
        f"{block.page} block {block.number} exited {result.returncode} "
        f"(stdout {len(result.stdout)} chars):\n{block.script}\n"
        f"--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"
    )


def test_runbooks_have_blocks() -> None:
    blocks = runbook_blocks()
    pages = {block.page for block in blocks}
    for page in (
        "quarantine-overflow.md",
        "breaker-stuck.md",
        "high-consumer-lag.md",
        "worker-wont-start.md",
    ):
        assert page in pages, f"docs/runbooks/{page} has no runnable block"


async def test_runbook_shell_blocks_run(stack: Stack) -> None:
    """Every block that needs only the worker and Kafka exits 0 and prints something."""
    blocks = [block for block in runbook_blocks() if not block.needs_admin_api]
    failures = [report for block in blocks if (report := _run(block, stack.env)) is not None]
    assert not failures, "\n\n".join(failures)


async def test_runbook_admin_api_blocks_run(stack: Stack, tmp_path: Path) -> None:
    """Every block marked admin-api exits 0 against an admin API on the same topics."""
    port = free_port()
    env = {
        **stack.env,
        "STEMEDB_ADMIN_API__PORT": str(port),
        "STEMEDB_ADMIN_API__REVIEW_PORT": str(free_port()),
        "STEMEDB_ADMIN_API__ALLOW_UNAUTHENTICATED": "true",
        "STEMEDB_API_URL": f"http://127.0.0.1:{port}",
    }
    log_path = tmp_path / "admin-api.log"
    process = _start_admin_api(env, log_path)
    try:
        ready = await _admin_api_ready(env["STEMEDB_API_URL"], process)
        assert ready, f"admin API not ready:\n{log_path.read_text(errors='replace')[-3000:]}"
        blocks = [block for block in runbook_blocks() if block.needs_admin_api]
        failures = [report for block in blocks if (report := _run(block, env)) is not None]
        assert not failures, "\n\n".join(failures)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
