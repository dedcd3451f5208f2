"""The ``stemedb-gate`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from streams import __version__
from streams.errors import GateError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stemedb-gate",
        description="Ingest gate of StemeDB: score, rate-limit and route assertions on Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: /etc/stemedb/config.toml)"
    )
    parser.add_argument("--log-level", default="INFO", help="Logging level (default: INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Each module registers its own subcommands; handlers are set with set_defaults(func=...).
    from streams.cli_admin import register as register_admin_commands
    from streams.cli_api import register as register_api_commands
    from streams.cli_broker import register as register_broker_commands
    from streams.cli_drills import register as register_drill_commands
    from streams.cli_gate import register as register_gate_commands

    register_broker_commands(commands)
    register_gate_commands(commands)
    register_drill_commands(commands)
    register_admin_commands(commands)
    register_api_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except GateError as exc:
        print(f"stemedb-gate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`stemedb-gate ... | head`). Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
