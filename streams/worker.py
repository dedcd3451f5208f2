"""Run the gate's faust app in this process until SIGTERM or SIGINT.

The local RocksDB stores are a cache of the changelog topics. After a clean stop they
are consistent with Kafka and are reused. After a crash or kill -9 they may hold writes
whose changelog records never committed (an aborted transaction, or an unacknowledged
send), and faust then either refuses to start or keeps state that Kafka does not have.
So the worker writes a marker file on a clean stop. At start it discards the stores
when the marker is missing, and faust then rebuilds them from the changelogs.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import faust

from streams.app import create_app
from streams.settings import GateSettings

logger = logging.getLogger(__name__)

CLEAN_STOP_MARKER = "clean-stop"


def discard_state_after_crash(data_dir: Path) -> bool:
    """Delete the table stores under ``data_dir`` unless the last run stopped cleanly.

    Returns whether stores were deleted. The marker is removed, so a crash of this run
    is detected by the next one.
    """
    marker = data_dir / CLEAN_STOP_MARKER
    stores = [path for path in data_dir.iterdir() if path.name != CLEAN_STOP_MARKER]
    if marker.exists():
        marker.unlink()
        return False
    if not stores:
        return False
    logger.warning(
        "the last worker run with data_dir %s did not stop cleanly; deleting its local "
        "table stores to rebuild them from the changelog topics",
        data_dir,
    )
    for path in stores:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return True


def run_worker(settings: GateSettings, loglevel: str = "INFO") -> None:
    """Start a faust worker for the gate; returns after a clean shutdown."""
    data_dir = settings.worker.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    discard_state_after_crash(data_dir)
    app = create_app(settings)
    logger.info(
        "starting gate worker app_id=%s bootstrap=%s security=%s prefix=%r data_dir=%s web=%s:%d",
        settings.kafka.app_id,
        settings.kafka.bootstrap_servers,
        settings.kafka.security_protocol,
        settings.kafka.topic_prefix,
        data_dir,
        settings.worker.web_host,
        settings.worker.web_port,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        if worker.crashed:
            logger.error("worker stopped after a crash: %r", worker.crash_reason)
        else:
            (data_dir / CLEAN_STOP_MARKER).write_text(
                f"stopped cleanly at {datetime.now(UTC).isoformat()}\n", encoding="utf-8"
            )
