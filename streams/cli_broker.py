"""``stemedb-gate broker start|stop|status`` and ``stemedb-gate topics setup``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from streams.localbroker import LocalBroker
from streams.settings import load_settings
from streams.topics import topic_specs
from streams.topicsetup import describe_spec, ensure_topics

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``broker`` and ``topics`` commands to the ``stemedb-gate`` parser."""
    broker = subparsers.add_parser(
        "broker",
        help="run the local single-node Kafka broker",
        description="Install (with Maven), start, stop or inspect a single-node Kafka "
        "broker on 127.0.0.1 whose files live in .cache/kafka of the repository.",
    )
    broker_commands = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")

    start = broker_commands.add_parser(
        "start", help="start the broker, or reuse the running one, and wait until it responds"
    )
    start.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="seconds to wait for the broker to respond (default: 120); the first start "
        "also copies the jars with Maven, which this limit does not include",
    )
    start.set_defaults(func=_broker_start)

    stop = broker_commands.add_parser("stop", help="stop the broker (SIGTERM, then SIGKILL)")
    stop.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds to wait after SIGTERM before sending SIGKILL (default: 30)",
    )
    stop.set_defaults(func=_broker_stop)

    status = broker_commands.add_parser(
        "status", help="show whether the broker runs; exit code 0 if it runs, 3 if not"
    )
    status.set_defaults(func=_broker_status)

    topics = subparsers.add_parser(
        "topics",
        help="manage the gate's Kafka topics",
        description="Create the gate's topics on kafka.bootstrap_servers and check existing ones.",
    )
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    setup = topic_commands.add_parser(
        "setup",
        help="create missing topics; fail if an existing topic has other partitions or configs",
    )
    setup.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds to wait for Kafka before giving up (default: 60)",
    )
    setup.set_defaults(func=_topics_setup)


def _broker_start(args: argparse.Namespace) -> int:
    status = LocalBroker().start(timeout_seconds=args.timeout)
    print(f"Kafka broker running at {status.bootstrap_servers} (pid {status.pid})")
    print(f"log: {status.log_path}")
    return 0


def _broker_stop(args: argparse.Namespace) -> int:
    broker = LocalBroker()
    if broker.stop(timeout_seconds=args.timeout):
        print("Kafka broker stopped")
    else:
        print("Kafka broker was not running")
    return 0


def _broker_status(args: argparse.Namespace) -> int:
    """Print the broker state; exit code 0 when it runs and 3 when it is stopped."""
    status = LocalBroker().status()
    pid = "-" if status.pid is None else str(status.pid)
    print(f"state: {status.state}")
    print(f"pid: {pid}")
    print(f"bootstrap: {status.bootstrap_servers}")
    print(f"log: {status.log_path}")
    return 0 if status.running else 3


def _topics_setup(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    report = asyncio.run(ensure_topics(settings, timeout_seconds=args.timeout))
    specs = {spec.name: spec for spec in topic_specs(settings)}
    for name in report.created:
        print(f"created {name} ({describe_spec(specs[name])})")
    for name in report.existing:
        print(f"exists  {name} ({describe_spec(specs[name])})")
    print(
        f"{len(report.created)} created, {len(report.existing)} already existed, on "
        f"{settings.kafka.bootstrap_servers}"
    )
    return 0
