"""Subcommands of ``stemedb-gate drill``: reproduce quarantine-overflow causes."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from streams.drills import (
    EXPECTED_ALERTS,
    Drill,
    format_report,
    query_evidence,
    restore_thresholds,
    run_drill,
    wait_for_alert,
    write_prometheus_config,
)
from streams.settings import load_settings

MONITORING_PROMETHEUS = Path("monitoring/prometheus")
DRILL_PROMETHEUS_DIR = Path(".cache/prometheus")


def register(commands: Any) -> None:
    drill = commands.add_parser(
        "drill",
        help="Reproduce a cause of quarantine overflow on a running gate, to practise the "
        "runbooks.",
    )
    actions = drill.add_subparsers(dest="drill_command", required=True, metavar="DRILL")

    for kind, help_text in (
        (Drill.FLOOD, "One agent in a retry loop, sending far above the flood limit."),
        (
            Drill.STRICT_THRESHOLDS,
            "A too strict threshold at runtime, then reviewers approving what it held back.",
        ),
        (Drill.LOW_QUALITY, "Several agents of a broken pipeline sending placeholder claims."),
        (Drill.SURGE, "A legitimate backfill by many new agents."),
    ):
        run = actions.add_parser(kind.value, help=help_text)
        run.add_argument(
            "--seed", type=int, default=None, help="Seed of the agents' keys (default: the time)"
        )
        run.add_argument(
            "--prometheus",
            metavar="URL",
            help="Wait until the expected alert fires on this Prometheus and print the "
            "values behind it (for example http://127.0.0.1:19090)",
        )
        run.add_argument(
            "--timeout",
            type=float,
            default=600.0,
            help="Seconds to wait for the alert with --prometheus (default: 600)",
        )
        if kind is Drill.FLOOD:
            run.add_argument(
                "--rate", type=float, default=3.0, help="Records a second (default: 3)"
            )
            run.add_argument(
                "--seconds", type=float, default=120.0, help="Seconds to flood (default: 120)"
            )
        run.set_defaults(func=_run, drill=kind)

    restore = actions.add_parser(
        "restore-thresholds",
        help="Set the thresholds the strict-thresholds drill changed back to the configured "
        "values.",
    )
    restore.set_defaults(func=_restore)

    config = actions.add_parser(
        "prometheus-config",
        help="Write a Prometheus config for the local stack whose alerts wait seconds, not "
        "minutes.",
    )
    config.add_argument(
        "--out",
        type=Path,
        default=DRILL_PROMETHEUS_DIR,
        help=f"Folder to write to (default: {DRILL_PROMETHEUS_DIR})",
    )
    config.add_argument(
        "--for-seconds",
        type=int,
        default=30,
        help="Seconds every alert waits before firing (default: 30); 0 keeps the rules' own",
    )
    config.set_defaults(func=_prometheus_config)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    drill: Drill = args.drill
    seed = args.seed if args.seed is not None else int(time.time())

    def say(text: str) -> None:
        print(f"==> {text}", file=sys.stderr, flush=True)

    options: dict[str, Any] = {}
    if drill is Drill.FLOOD:
        options = {"flood_rate": args.rate, "flood_seconds": args.seconds}
    report = asyncio.run(run_drill(settings, drill, seed=seed, say=say, **options))
    if args.prometheus:
        alert = EXPECTED_ALERTS[drill][0]
        say(f"waiting up to {args.timeout:.0f}s for {alert} on {args.prometheus}")
        report.alerts = asyncio.run(wait_for_alert(args.prometheus, alert, args.timeout))
        report.evidence = asyncio.run(query_evidence(args.prometheus))
    print(format_report(report))
    return 0


def _restore(args: argparse.Namespace) -> int:
    values = asyncio.run(restore_thresholds(load_settings(args.config)))
    print(f"set thresholds {values} on every partition")
    return 0


def _prometheus_config(args: argparse.Namespace) -> int:
    for_seconds = args.for_seconds or None
    config = write_prometheus_config(MONITORING_PROMETHEUS, args.out, for_seconds)
    print(config)
    print(
        f"run: prometheus --config.file={config} --web.listen-address=127.0.0.1:19090 "
        f"--storage.tsdb.path={args.out / 'data'}"
    )
    return 0
