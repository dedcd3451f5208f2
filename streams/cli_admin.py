"""``stemedb-gate quarantine|breaker|allowlist|thresholds|command``: the admin API from a shell.

This module builds the parsers. :mod:`streams.cli_admin_commands` makes the requests and
prints a table, or the API's JSON with ``--json``. Exit codes:

- 0: done.
- 1: a bulk approve or reject left some items not applied.
- 2: an error (invalid arguments, an API error response, no connection), which
  ``stemedb-gate`` prints as ``stemedb-gate: error: ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias

from streams import cli_admin_commands as commands
from streams.admin_client import (
    API_TOKEN_ENV,
    API_URL_ENV,
    DEFAULT_API_URL,
    AdminClient,
    check_idempotency_key,
    resolve_api_url,
    resolve_token,
)

DEFAULT_TIMEOUT_SECONDS = 60.0
QUARANTINE_STATUSES = ("pending", "approved", "rejected", "all")
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")

AdminCommandFn = Callable[[AdminClient, argparse.Namespace], Awaitable[int]]
if TYPE_CHECKING:
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: SubParsers) -> None:
    """Add the admin API commands to the ``stemedb-gate`` parser."""
    common = _common_options()
    writes = _write_options()
    _register_quarantine(subparsers, common, writes)
    _register_breaker(subparsers, common, writes)
    _register_allowlist(subparsers, common, writes)
    _register_thresholds(subparsers, common, writes)
    _register_command(subparsers, common)


# Options


def _common_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    api = options.add_argument_group("admin API options")
    api.add_argument(
        "--api-url",
        metavar="URL",
        help=f"base URL of the admin API (default: ${API_URL_ENV}, else {DEFAULT_API_URL})",
    )
    # Not a mutually exclusive group: argparse would list such a group, copied from a
    # parent parser, outside its argument group. resolve_token rejects both options.
    api.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"bearer token (default: ${API_TOKEN_ENV}). Other users can read it in the "
        "process list, so prefer --token-file or the variable",
    )
    api.add_argument(
        "--token-file", metavar="FILE", help="file that contains only the bearer token"
    )
    api.add_argument(
        "--json",
        dest="json_output",
        action="store_true",
        help="print the API's JSON response instead of a table",
    )
    api.add_argument(
        "--timeout",
        type=_positive_number,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"seconds to wait for each response (default: {DEFAULT_TIMEOUT_SECONDS:g}). Keep "
        "it above the API's admin_api.command_timeout_seconds",
    )
    return options


def _write_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    write = options.add_argument_group("command options")
    write.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the API has published the command, with its command id, instead "
        "of waiting for the worker's result",
    )
    write.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="command id to use (1 to 200 characters). Repeating a request with the same key "
        "returns the first result instead of applying the command twice",
    )
    return options


def _positive_number(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return float(value)


def _number(text: str) -> int | float:
    """Parse ``text`` as an int when it is written as one, else as a finite float."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def _rfc3339(text: str) -> str:
    """Check that ``text`` is an RFC 3339 timestamp with a UTC offset and return it unchanged."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 timestamp such as 2026-02-12T00:00:00Z, got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"timestamp {text!r} has no UTC offset. Add Z or an offset such as +01:00"
        )
    return text


def _threshold_assignment(text: str) -> tuple[str, int | float]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, _number(value.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r} for {key}: expected a number"
        ) from None


def _breaker_state(text: str) -> str:
    state = text.upper().replace("-", "_")
    if state not in BREAKER_STATES:
        raise argparse.ArgumentTypeError(
            f"invalid state {text!r}: expected one of {', '.join(BREAKER_STATES)}"
        )
    return state


# Commands


def _register_quarantine(
    subparsers: SubParsers, common: argparse.ArgumentParser, writes: argparse.ArgumentParser
) -> None:
    quarantine = subparsers.add_parser(
        "quarantine",
        help="review the assertions the gate held back",
        description="List, inspect, approve and reject quarantined assertions through the "
        "admin API.",
    )
    actions = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", parents=[common], help="list quarantine items, oldest first"
    )
    listing.add_argument("--agent-id", metavar="AGENT", help="only items of this agent")
    listing.add_argument(
        "--reason", metavar="REASON", help="only items with this reason, such as LowQuality"
    )
    listing.add_argument(
        "--status",
        choices=QUARANTINE_STATUSES,
        help="only items in this review status (default: the API's, pending)",
    )
    listing.add_argument(
        "--older-than-seconds",
        type=_positive_number,
        metavar="SECONDS",
        help="only items quarantined more than this many seconds ago",
    )
    listing.add_argument(
        "--limit", type=_positive_int, metavar="N", help="items per page (default: the API's, 100)"
    )
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--cursor", metavar="CURSOR", help="page to start at, from a previous list")
    pages.add_argument(
        "--all-pages", action="store_true", help="follow the pages to the last matching item"
    )
    listing.set_defaults(func=_runs(commands.quarantine_list))

    show = actions.add_parser("show", parents=[common], help="show one quarantine item in full")
    show.add_argument("item_id", metavar="ID", help="quarantine item id, such as q5f0c…")
    show.set_defaults(func=_runs(commands.quarantine_show))

    summary = actions.add_parser(
        "summary",
        parents=[common],
        help="count pending items by agent and by reason, with the oldest pending age",
    )
    summary.set_defaults(func=_runs(commands.quarantine_summary))

    for action, verb in (("approve", "approve"), ("reject", "reject")):
        decide = actions.add_parser(
            action,
            parents=[common, writes],
            help=f"{verb} items by id, or every pending item of one agent",
            description=f"{verb.capitalize()} quarantine items. One ID uses the item's route, and "
            "several IDs or --agent-id use the bulk route, and the exit code is 1 when some "
            "items were not found or already decided.",
        )
        decide.add_argument("item_ids", nargs="*", metavar="ID", help="quarantine item ids")
        decide.add_argument(
            "--agent-id", metavar="AGENT", help=f"{verb} every pending item of this agent"
        )
        decide.add_argument("--reason", help="reason recorded with the decision")
        decide.add_argument("--note", help="note added to each item")
        decide.set_defaults(func=_runs(commands.quarantine_decide), decision=action)


def _register_breaker(
    subparsers: SubParsers, common: argparse.ArgumentParser, writes: argparse.ArgumentParser
) -> None:
    breaker = subparsers.add_parser(
        "breaker",
        help="inspect, open (ban) and reset agents' circuit breakers",
        description="Inspect and control per-agent circuit breakers through the admin API.",
    )
    actions = breaker.add_subparsers(dest="breaker_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="list the agents' breakers")
    listing.add_argument(
        "--state",
        type=_breaker_state,
        metavar="STATE",
        help=f"only breakers in this state: {', '.join(BREAKER_STATES)}",
    )
    listing.add_argument(
        "--limit", type=_positive_int, metavar="N", help="breakers per page (default: the API's)"
    )
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--cursor", metavar="CURSOR", help="page to start at, from a previous list")
    pages.add_argument(
        "--all-pages", action="store_true", help="follow the pages to the last breaker"
    )
    listing.set_defaults(func=_runs(commands.breaker_list))

    show = actions.add_parser("show", parents=[common], help="show one agent's breaker")
    show.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    show.set_defaults(func=_runs(commands.breaker_show))

    open_ = actions.add_parser(
        "open",
        parents=[common, writes],
        help="ban an agent: open its breaker for a fixed time",
        description="Open the agent's breaker by hand. A manual open is a ban: it lasts the "
        "whole duration, whatever the agent sends, until 'breaker reset'.",
    )
    open_.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    open_.add_argument("--reason", required=True, help="why the agent is banned")
    open_.add_argument(
        "--duration-seconds",
        required=True,
        type=_number,
        metavar="SECONDS",
        help="seconds the breaker stays OPEN (the API accepts up to 31536000, one year)",
    )
    open_.set_defaults(func=_runs(commands.breaker_open))

    reset = actions.add_parser(
        "reset",
        parents=[common, writes],
        help="close an agent's breaker and clear its window counts",
    )
    reset.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    reset.add_argument("--reason", help="why the breaker is reset")
    reset.set_defaults(func=_runs(commands.breaker_reset))


def _register_allowlist(
    subparsers: SubParsers, common: argparse.ArgumentParser, writes: argparse.ArgumentParser
) -> None:
    allowlist = subparsers.add_parser(
        "allowlist",
        help="manage agents that skip content defense",
        description="Allow-listed agents skip the content checks until their entry expires. "
        "They are still counted, rate-limited and signature-checked.",
    )
    actions = allowlist.add_subparsers(dest="allowlist_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", parents=[common, writes], help="allow-list an agent")
    add.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    add.add_argument("--reason", required=True, help="why the agent is allow-listed")
    add.add_argument(
        "--expires-at",
        type=_rfc3339,
        metavar="TIME",
        help="RFC 3339 time the entry ends, such as 2026-02-12T00:00:00Z (default: never)",
    )
    add.set_defaults(func=_runs(commands.allowlist_add))

    listing = actions.add_parser("list", parents=[common], help="list allow-listed agents")
    listing.add_argument(
        "--include-expired", action="store_true", help="also list entries that have expired"
    )
    listing.set_defaults(func=_runs(commands.allowlist_list))

    remove = actions.add_parser(
        "remove", parents=[common, writes], help="remove an agent from the allow-list"
    )
    remove.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    remove.set_defaults(func=_runs(commands.allowlist_remove))


def _register_thresholds(
    subparsers: SubParsers, common: argparse.ArgumentParser, writes: argparse.ArgumentParser
) -> None:
    thresholds = subparsers.add_parser(
        "thresholds",
        help="show or change content-defense and circuit-breaker thresholds",
        description="Thresholds set here apply to every worker without a restart.",
    )
    actions = thresholds.add_subparsers(dest="thresholds_command", required=True, metavar="ACTION")

    show = actions.add_parser("show", parents=[common], help="show the thresholds in force")
    show.set_defaults(func=_runs(commands.thresholds_show))

    set_ = actions.add_parser(
        "set",
        parents=[common, writes],
        help="change one or more thresholds",
        description="Change thresholds, such as quality_threshold=0.5 min_requests=30. The "
        "API rejects an unknown key or a value out of bounds with a 400 that names the key.",
    )
    set_.add_argument(
        "assignments",
        nargs="+",
        type=_threshold_assignment,
        metavar="KEY=VALUE",
        help="threshold and its new value (a number)",
    )
    set_.set_defaults(func=_runs(commands.thresholds_set))


def _register_command(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    command = subparsers.add_parser(
        "command",
        help="look up an admin command by its id",
        description="Show the status and results of a command, such as one sent with --no-wait.",
    )
    actions = command.add_subparsers(dest="command_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[common], help="show a command's status")
    show.add_argument("command_id", metavar="COMMAND_ID")
    show.set_defaults(func=_runs(commands.command_show))


def _runs(command: AdminCommandFn) -> Callable[[argparse.Namespace], int]:
    """Wrap an async admin command into an argparse handler that opens the API client."""

    def handler(args: argparse.Namespace) -> int:
        base_url = resolve_api_url(args.api_url)
        token = resolve_token(args.token, args.token_file)
        check_idempotency_key(getattr(args, "idempotency_key", None))

        async def run() -> int:
            async with AdminClient(base_url, token, args.timeout) as client:
                return await command(client, args)

        return asyncio.run(run())

    return handler
