"""Subcommands that run the gate: ``worker``, ``demo`` and ``schemas export``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.settings import load_settings


def register(commands: Any) -> None:
    worker = commands.add_parser("worker", help="Run the gate worker (faust) until stopped.")
    worker.set_defaults(func=_worker)

    demo = commands.add_parser(
        "demo",
        help="Start the local broker and a worker, play sample traffic, print a routing summary.",
    )
    demo.add_argument(
        "--seed", type=int, default=None, help="Seed of the sample data (default: the time)"
    )
    demo.add_argument(
        "--honest-agents", type=int, default=8, help="Honest agents to play (default: 8)"
    )
    demo.add_argument(
        "--per-agent", type=int, default=40, help="Records per honest agent (default: 40)"
    )
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="Leave the worker and the local broker running after the summary.",
    )
    demo.add_argument(
        "--timeout", type=float, default=180.0, help="Seconds to wait for routing (default: 180)"
    )
    demo.set_defaults(func=_demo)

    faults = commands.add_parser(
        "faults",
        help="Run the fault harness: kills, a rebalance and a broker restart, then an audit.",
        description="Run gate workers through kill -9, a second worker joining and leaving, "
        "and a broker restart, then check every input's outputs and every agent's state. "
        "It starts its own broker on 127.0.0.1:19192 under .cache/faults and takes a few "
        "minutes at the default size. See docs/faults.md.",
    )
    faults.add_argument(
        "--records",
        type=int,
        default=100_000,
        help="Input records to produce, rounded up to whole agent streams (default: 100000)",
    )
    faults.add_argument(
        "--kills", type=int, default=5, help="How many times to kill -9 a worker (default: 5)"
    )
    faults.add_argument(
        "--guarantee",
        choices=["at_least_once", "exactly_once"],
        default="at_least_once",
        help="Processing guarantee of the workers (default: at_least_once)",
    )
    faults.add_argument(
        "--seed", type=int, default=1, help="Seed of input and fault points (default: 1)"
    )
    faults.add_argument("--out", type=Path, help="Write the report as JSON to this file")
    faults.set_defaults(func=_faults)

    schemas = commands.add_parser("schemas", help="Work with the JSON Schemas of the records.")
    schemas_commands = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_commands.add_parser("export", help="Write each record's JSON Schema.")
    export.add_argument(
        "--out", type=Path, default=Path("docs/schemas"), help="Folder (default: docs/schemas)"
    )
    export.set_defaults(func=_export_schemas)


def _worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    settings = load_settings(args.config)
    run_worker(settings, loglevel=args.log_level)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(
        load_settings(args.config),
        config_path=args.config,
        seed=args.seed,
        honest_agents=args.honest_agents,
        per_agent=args.per_agent,
        keep_running=args.keep_running,
        timeout_seconds=args.timeout,
    )


def _faults(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from streams.faults import run_faults

    def progress(text: str) -> None:
        print(f"faults: {text}", file=sys.stderr, flush=True)

    report = asyncio.run(run_faults(args.records, args.kills, args.guarantee, args.seed, progress))
    print(report.format())
    if args.out:
        args.out.write_text(report.to_json() + "\n", encoding="utf-8")
    return 0 if report.passed else 1


def _export_schemas(args: argparse.Namespace) -> int:
    from schemas.export import export_schemas

    for path in export_schemas(args.out):
        print(path)
    return 0
