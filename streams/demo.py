"""The ``demo`` command: local broker, topics, a worker, sample traffic, routing summary.

Every process the demo starts it also stops, by PID, unless ``--keep-running`` is given.
A broker that was already running is reused and left running.
"""

from __future__ import annotations

import asyncio
import os
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
WORKER_READY_TIMEOUT_SECONDS = 120.0


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
    try:
        # 1. Broker: the local one unless the settings name another.
        broker = _start_local_broker(settings)

        # 2. Topics, then the worker.
        report = asyncio.run(ensure_topics(settings))
        _say(f"topics ready on {settings.kafka.bootstrap_servers} ({len(report.created)} created)")
        worker = _start_worker(settings, config_path)

        # 3. Sample traffic with fresh agent keys unless a seed is given.
        run_seed = seed if seed is not None else int(time.time())
        plan = build_plan(run_seed, honest_agents, per_agent)
        _say(f"playing {len(plan.records)} sample records (seed {run_seed})")
        asyncio.run(play(settings, plan, progress_printer()))

        # 4. Summary read back from the output topics.
        _say("waiting for every record to be routed")
        summary = asyncio.run(read_summary(settings, plan.manifest, timeout_seconds))
        print(format_summary(summary))
        return 0 if summary.passed else 1
    finally:
        if worker is not None and not keep_running:
            _stop_worker(worker)
        if broker is not None and not keep_running:
            _say(f"stopping the local broker (pid file {broker.pid_path})")
            broker.stop()
        if keep_running:
            _say(
                f"left running: worker http://{settings.worker.web_host}:"
                f"{settings.worker.web_port}/metrics, broker {settings.kafka.bootstrap_servers}; "
                "stop them with `stemedb-gate broker stop` and by the worker's PID"
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
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    log_path = DEMO_DIR / "worker.log"
    command = [sys.executable, "-m", "streams.cli"]
    if config_path:
        command += ["--config", config_path]
    command.append("worker")
    with log_path.open("ab") as log:
        worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    (DEMO_DIR / "worker.pid").write_text(f"{worker.pid}\n")
    _say(f"started the worker, pid {worker.pid}, log {log_path}")

    url = f"http://{settings.worker.web_host}:{settings.worker.web_port}/readyz"
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise DemoError(
                f"the worker exited with code {worker.returncode}; last log lines:\n"
                + "\n".join(tail)
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    _say(f"worker ready ({url})")
                    return worker
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    _stop_worker(worker)
    raise DemoError(
        f"the worker was not ready after {WORKER_READY_TIMEOUT_SECONDS:.0f}s; see {log_path}"
    )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    _say(f"stopping the worker, pid {worker.pid}")
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)
    (DEMO_DIR / "worker.pid").unlink(missing_ok=True)
