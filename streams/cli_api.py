"""The ``admin-api`` subcommand: serve the admin HTTP API until stopped."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.settings import load_settings


def register(commands: Any) -> None:
    api = commands.add_parser(
        "admin-api",
        help="Run the admin HTTP API (quarantine review, breakers, thresholds) until stopped.",
        description="Serve the admin API on admin_api.host:admin_api.port, and the review "
        "page for operators at /quarantine on admin_api.review_port. It reads the "
        "gate's state topics into memory and publishes operator commands to "
        "admin-commands; the topics must exist (stemedb-gate topics setup). Options "
        "override the [admin_api] settings of the config file.",
    )
    api.add_argument("--host", help="address to bind (default: admin_api.host, 127.0.0.1)")
    api.add_argument("--port", type=int, help="TCP port to bind (default: admin_api.port, 18180)")
    api.add_argument(
        "--review-port",
        type=int,
        help="TCP port of the review page, /quarantine, on the same host "
        "(default: admin_api.review_port, 18188)",
    )
    api.add_argument(
        "--tokens-file",
        type=Path,
        metavar="FILE",
        help="file of 'operator-name token' lines (default: admin_api.tokens_file)",
    )
    api.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve without tokens, every command issued by 'anonymous'; only accepted "
        "with a loopback host",
    )
    api.set_defaults(func=_admin_api)


def _admin_api(args: argparse.Namespace) -> int:
    from admin_api.app import run_admin_api

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.review_port is not None:
        overrides["review_port"] = args.review_port
    if args.tokens_file is not None:
        overrides["tokens_file"] = args.tokens_file
    if args.allow_unauthenticated:
        overrides["allow_unauthenticated"] = True
    settings = load_settings(args.config, admin_api=overrides)
    run_admin_api(settings)
    return 0
