"""Run the gate's faust app in this process until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

import faust

from streams.app import create_app
from streams.settings import GateSettings

logger = logging.getLogger(__name__)


def run_worker(settings: GateSettings, loglevel: str = "INFO") -> None:
    """Start a faust worker for the gate; returns after a clean shutdown."""
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    logger.info(
        "starting gate worker app_id=%s bootstrap=%s prefix=%r data_dir=%s web=%s:%d",
        settings.kafka.app_id,
        settings.kafka.bootstrap_servers,
        settings.kafka.topic_prefix,
        settings.worker.data_dir,
        settings.worker.web_host,
        settings.worker.web_port,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
