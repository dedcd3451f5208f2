"""The ``demo`` command: local broker, topics, a worker, sample traffic, routing summary.

Every process the demo starts it also stops, by PID, unless ``--keep-running`` is given.
A broker that was already running is reused and left running.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.errors import GateError
from streams.localbroker import LocalBroker
from streams.sample import build_plan, play, progress_printer
from streams.settings import GateSettings
from streams.summary import format_summary, read_summary
from streams.topicsetup import ensure_topics

DEMO_DIR = Path(".cache/demo")
READY_TIMEOUT_SECONDS = 120.0


class DemoError(GateError, RuntimeError):
    """The demo could not start one of its parts."""


def _say(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def run_demo(
    settings: GateSettings,
    *,
    config_path: str | None,
    seed: int | None,
    honest_agents: int,
    per_agent: int,
    keep_running: bool,
    timeout_seconds: float,
) -> int:
    """Run the whole demo and return 0 when every routing check passed, else 1."""
    broker: LocalBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    admin_api: subprocess.Popen[bytes] | None = None
    token = ""
    try:
        # 1. Broker: the local one unless the settings name another.
        broker = _start_local_broker(settings)

        # 2. Topics, then the worker.
        report = asyncio.run(ensure_topics(settings))
        _say(f"topics ready on {settings.kafka.bootstrap_servers} ({len(report.created)} created)")
        worker = _start_worker(settings, config_path)
        admin_api, token = _start_admin_api(settings, config_path)

        # 3. Sample traffic with fresh agent keys unless a seed is given.
        run_seed = seed if seed is not None else int(time.time())
        plan = build_plan(run_seed, honest_agents, per_agent)
        _say(f"playing {len(plan.records)} sample records (seed {run_seed})")
        asyncio.run(play(settings, plan, progress_printer()))

        # 4. Summary read back from the output topics.
        _say("waiting for every record to be routed")
        summary = asyncio.run(read_summary(settings, plan.manifest, timeout_seconds))
        print(format_summary(summary))
        api_url = f"http://{settings.admin_api.host}:{settings.admin_api.port}"
        print(f"\nadmin API: {api_url}/v1/admin/quarantine")
        review_url = f"http://{settings.admin_api.host}:{settings.admin_api.review_port}"
        print(f"review page: {review_url}/quarantine (sign in with the token below)")
        print(f"operator token (demo-operator): {token}")
        print(f"  curl -H 'Authorization: Bearer {token}' {api_url}/v1/admin/quarantine/summary")
        print(
            f"  .venv/bin/stemedb-gate quarantine summary --token-file {DEMO_DIR / 'token'}"
        )
        return 0 if summary.passed else 1
    finally:
        if admin_api is not None and not keep_running:
            _stop_process(admin_api, "admin API", DEMO_DIR / "admin-api.pid")
        if worker is not None and not keep_running:
            _stop_process(worker, "worker", DEMO_DIR / "worker.pid")
        if broker is not None and not keep_running:
            _say(f"stopping the local broker (pid file {broker.pid_path})")
            broker.stop()
        if keep_running:
            _say(
                f"left running: worker http://{settings.worker.web_host}:"
                f"{settings.worker.web_port}/metrics (pid file {DEMO_DIR / 'worker.pid'}), admin "
                f"API (pid file {DEMO_DIR / 'admin-api.pid'}), broker "
                f"{settings.kafka.bootstrap_servers}; stop them with `kill $(cat PIDFILE)` and "
                "`.venv/bin/stemedb-gate broker stop`"
            )


def _start_local_broker(settings: GateSettings) -> LocalBroker | None:
    """Start the local broker when the settings point at it; return it if this call started it."""
    local = LocalBroker()
    if settings.kafka.bootstrap_servers != local.bootstrap_servers:
        _say(f"using the broker at {settings.kafka.bootstrap_servers}")
        return None
    if local.is_running():
        _say(f"reusing the local broker at {local.bootstrap_servers}")
        return None
    _say("installing Apache Kafka from Maven Central if needed (first run: about a minute)")
    local.ensure_installed()
    _say(f"starting the local broker at {local.bootstrap_servers}")
    local.start()
    return local


def _start_worker(settings: GateSettings, config_path: str | None) -> subprocess.Popen[bytes]:
    url = f"http://{settings.worker.web_host}:{settings.worker.web_port}/readyz"
    return _start_process("worker", ["worker"], url, config_path, os.environ.copy())


def _start_admin_api(
    settings: GateSettings, config_path: str | None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the admin API with a fresh token for the operator ``demo-operator``."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    tokens_file = DEMO_DIR / "tokens"
    tokens_file.touch(mode=0o600)
    tokens_file.write_text(f"demo-operator {token}\n", encoding="utf-8")
    # The CLI's --token-file takes a file with the token alone.
    token_file = DEMO_DIR / "token"
    token_file.touch(mode=0o600)
    token_file.write_text(f"{token}\n", encoding="utf-8")
    env = {**os.environ, "STEMEDB_ADMIN_API__TOKENS_FILE": str(tokens_file.resolve())}
    url = f"http://{settings.admin_api.host}:{settings.admin_api.port}/readyz"
    return _start_process("admin-api", ["admin-api"], url, config_path, env), token


def _start_process(
    name: str, subcommand: list[str], ready_url: str, config_path: str | None, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    log_path = DEMO_DIR / f"{name}.log"
    command = [sys.executable, "-m", "streams.cli"]
    if config_path:
        command += ["--config", config_path]
    command += subcommand
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    (DEMO_DIR / f"{name}.pid").write_text(f"{process.pid}\n")
    _say(f"started the {name}, pid {process.pid}, log {log_path}")

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise DemoError(
                f"the {name} exited with code {process.returncode}; last log lines:\n"
                + "\n".join(tail)
            )
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    _say(f"{name} ready ({ready_url})")
                    return process
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    _stop_process(process, name, DEMO_DIR / f"{name}.pid")
    raise DemoError(f"the {name} was not ready after {READY_TIMEOUT_SECONDS:.0f}s; see {log_path}")


def _stop_process(process: subprocess.Popen[bytes], name: str, pid_file: Path) -> None:
    if process.poll() is None:
        _say(f"stopping the {name}, pid {process.pid}")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    pid_file.unlink(missing_ok=True)
