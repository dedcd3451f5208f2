"""``stemedb-gate quarantine|breaker|allowlist|thresholds|command``: the admin API from a shell.

Each command makes one or a few requests to the admin API (docs/admin-api.md) and prints
a table, or the API's JSON with ``--json``. Exit codes: 0 done; 1 a bulk approve or
reject left some items not applied; 2 an error (bad arguments, an API error response,
no connection), printed by ``stemedb-gate`` as ``stemedb-gate: error: ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streams.admin_client import (
    API_TOKEN_ENV,
    API_URL_ENV,
    DEFAULT_API_URL,
    AdminClient,
    AdminClientError,
    ApiResponse,
    UsageError,
    check_idempotency_key,
    resolve_api_url,
    resolve_token,
)
from streams.cli_tables import (
    Column,
    cell,
    format_duration,
    format_fields,
    format_number,
    format_table,
    format_time,
    short_agent,
)

DEFAULT_TIMEOUT_SECONDS = 60.0
BULK_MAX_IDS = 10_000
"""Largest ``ids`` list the bulk approve and reject routes accept in one request."""
CLAIM_CHARS = 60
REASON_CHARS = 40
QUARANTINE_STATUSES = ("pending", "approved", "rejected", "all")
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")

AdminCommandFn = Callable[[AdminClient, argparse.Namespace], Awaitable[int]]
SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]


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
    token = api.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"bearer token (default: ${API_TOKEN_ENV}); other users can read it in the "
        "process list, so prefer --token-file or the variable",
    )
    token.add_argument(
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
        help=f"seconds to wait for each response (default: {DEFAULT_TIMEOUT_SECONDS:g}); keep "
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
        help="command id to use (1 to 200 characters); repeating a request with the same key "
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
            f"timestamp {text!r} has no UTC offset; add Z or an offset such as +01:00"
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
    listing.set_defaults(func=_runs(_quarantine_list))

    show = actions.add_parser("show", parents=[common], help="show one quarantine item in full")
    show.add_argument("item_id", metavar="ID", help="quarantine item id, such as q5f0c…")
    show.set_defaults(func=_runs(_quarantine_show))

    summary = actions.add_parser(
        "summary",
        parents=[common],
        help="count pending items by agent and by reason, with the oldest pending age",
    )
    summary.set_defaults(func=_runs(_quarantine_summary))

    for action, verb in (("approve", "approve"), ("reject", "reject")):
        decide = actions.add_parser(
            action,
            parents=[common, writes],
            help=f"{verb} items by id, or every pending item of one agent",
            description=f"{verb.capitalize()} quarantine items. One ID uses the item's route; "
            "several IDs or --agent-id use the bulk route, and the exit code is 1 when some "
            "items were not found or already decided.",
        )
        decide.add_argument("item_ids", nargs="*", metavar="ID", help="quarantine item ids")
        decide.add_argument(
            "--agent-id", metavar="AGENT", help=f"{verb} every pending item of this agent"
        )
        decide.add_argument("--reason", help="reason recorded with the decision")
        decide.add_argument("--note", help="note added to each item")
        decide.set_defaults(func=_runs(_quarantine_decide), decision=action)


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
    listing.set_defaults(func=_runs(_breaker_list))

    show = actions.add_parser("show", parents=[common], help="show one agent's breaker")
    show.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    show.set_defaults(func=_runs(_breaker_show))

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
    open_.set_defaults(func=_runs(_breaker_open))

    reset = actions.add_parser(
        "reset",
        parents=[common, writes],
        help="close an agent's breaker and clear its window counts",
    )
    reset.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    reset.add_argument("--reason", help="why the breaker is reset")
    reset.set_defaults(func=_runs(_breaker_reset))


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
    add.set_defaults(func=_runs(_allowlist_add))

    listing = actions.add_parser("list", parents=[common], help="list allow-listed agents")
    listing.add_argument(
        "--include-expired", action="store_true", help="also list entries that have expired"
    )
    listing.set_defaults(func=_runs(_allowlist_list))

    remove = actions.add_parser(
        "remove", parents=[common, writes], help="remove an agent from the allow-list"
    )
    remove.add_argument("agent_id", metavar="AGENT", help="agent id (64 hex characters)")
    remove.set_defaults(func=_runs(_allowlist_remove))


def _register_thresholds(
    subparsers: SubParsers, common: argparse.ArgumentParser, writes: argparse.ArgumentParser
) -> None:
    thresholds = subparsers.add_parser(
        "thresholds",
        help="show or change content-defense and circuit-breaker thresholds",
        description="Thresholds set here apply to every worker without a restart.",
    )
    actions = thresholds.add_subparsers(
        dest="thresholds_command", required=True, metavar="ACTION"
    )

    show = actions.add_parser("show", parents=[common], help="show the thresholds in force")
    show.set_defaults(func=_runs(_thresholds_show))

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
    set_.set_defaults(func=_runs(_thresholds_set))


def _register_command(subparsers: SubParsers, common: argparse.ArgumentParser) -> None:
    command = subparsers.add_parser(
        "command",
        help="look up an admin command by its id",
        description="Show the status and results of a command, such as one sent with --no-wait.",
    )
    actions = command.add_subparsers(dest="command_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[common], help="show a command's status")
    show.add_argument("command_id", metavar="COMMAND_ID")
    show.set_defaults(func=_runs(_command_show))


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


# Quarantine


async def _quarantine_list(client: AdminClient, args: argparse.Namespace) -> int:
    params = _present(
        agent_id=args.agent_id,
        reason=args.reason,
        status=args.status,
        older_than_seconds=_query_number(args.older_than_seconds),
        limit=args.limit,
        cursor=args.cursor,
    )
    body = await _fetch_pages(client, ("quarantine",), params, "items", args.all_pages)
    if args.json_output:
        _print_json(body)
        return 0

    items = _records(body, "items")
    if not items:
        print("no quarantine items match")
        return 0
    columns = [
        Column("ID"),
        Column("AGENT"),
        Column("REASON"),
        Column("STATUS"),
        Column("SCORE", align_right=True),
        Column("QUARANTINED_AT"),
        Column("CLAIM"),
    ]
    rows = [
        [
            cell(item.get("id")),
            short_agent(item.get("agent_id")),
            cell(item.get("reason"), REASON_CHARS),
            cell(item.get("status")),
            _score(item.get("quality_score")),
            format_time(item.get("quarantined_at")),
            _claim(item),
        ]
        for item in items
    ]
    print(format_table(columns, rows))
    print(_page_footer(body, len(items), "items"))
    return 0


async def _quarantine_show(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("quarantine", args.item_id)
    if args.json_output:
        _print_json(response.body)
        return 0
    item = _object(response.body)
    print(_item_details(item))
    return 0


async def _quarantine_summary(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("quarantine", "summary")
    if args.json_output:
        _print_json(response.body)
        return 0

    summary = _object(response.body)
    oldest = summary.get("oldest_pending_at")
    lines = [f"pending items: {cell(summary.get('total_pending'))}"]
    if oldest is not None:
        age = format_duration(summary.get("oldest_pending_age_seconds"))
        lines.append(f"oldest pending: {format_time(oldest)} ({age} ago)")
    print("\n".join(lines))

    by_agent = _records(summary, "by_agent")
    if by_agent:
        print()
        print(
            format_table(
                [Column("AGENT"), Column("PENDING", align_right=True), Column("OLDEST_PENDING_AT")],
                [
                    [
                        short_agent(row.get("agent_id")),
                        cell(row.get("count")),
                        format_time(row.get("oldest_pending_at")),
                    ]
                    for row in by_agent
                ],
            )
        )
    by_reason = _records(summary, "by_reason")
    if by_reason:
        print()
        print(
            format_table(
                [Column("REASON"), Column("PENDING", align_right=True)],
                [[cell(row.get("reason")), cell(row.get("count"))] for row in by_reason],
            )
        )
    return 0


async def _quarantine_decide(client: AdminClient, args: argparse.Namespace) -> int:
    """Approve or reject by one id, by a list of ids, or every pending item of an agent."""
    decision: str = args.decision
    item_ids = list(dict.fromkeys(args.item_ids))
    if item_ids and args.agent_id:
        raise UsageError(f"give item IDs or --agent-id to {decision}, not both")
    if not item_ids and not args.agent_id:
        raise UsageError(f"give the item IDs to {decision}, or --agent-id for all of an agent's")
    body = _present(reason=args.reason, note=args.note)

    if len(item_ids) == 1:
        response = await client.write(
            "POST",
            ("quarantine", item_ids[0], decision),
            body,
            wait=not args.no_wait,
            idempotency_key=args.idempotency_key,
        )
        return _print_item_decision(response, decision, item_ids[0], args.json_output)

    if args.agent_id:
        batches: list[dict[str, Any]] = [{"agent_id": args.agent_id, **body}]
    else:
        if len(item_ids) > BULK_MAX_IDS and args.idempotency_key:
            raise UsageError(
                f"--idempotency-key works with at most {BULK_MAX_IDS} item IDs, got "
                f"{len(item_ids)}; split the IDs over several commands"
            )
        batches = [
            {"ids": item_ids[start : start + BULK_MAX_IDS], **body}
            for start in range(0, len(item_ids), BULK_MAX_IDS)
        ]
    responses = [
        await client.write(
            "POST",
            ("quarantine", decision),
            batch,
            wait=not args.no_wait,
            idempotency_key=args.idempotency_key,
        )
        for batch in batches
    ]
    return _print_bulk_decision(responses, decision, args)


def _print_item_decision(
    response: ApiResponse, decision: str, item_id: str, json_output: bool
) -> int:
    if json_output:
        _print_json(response.body)
        return 0
    body = _object(response.body)
    command_id = cell(body.get("command_id"))
    if response.status == 202:
        print(_pending_line(f"{decision} of item {cell(item_id)}", command_id))
        return 0
    item = body.get("item")
    if not isinstance(item, dict):
        print(f"{decision}: {cell(body.get('result'))} (command {command_id})")
        return 0
    print(
        f"item {cell(item.get('id'))} of agent {cell(item.get('agent_id'))} is now "
        f"{cell(item.get('status'))} (command {command_id})"
    )
    return 0


def _print_bulk_decision(
    responses: Sequence[ApiResponse], decision: str, args: argparse.Namespace
) -> int:
    bodies = [_object(response.body) for response in responses]
    command_ids: list[Any] = []
    count = 0
    results: dict[str, int] = {}
    for body in bodies:
        command_ids.extend(_list(body, "command_ids"))
        count += int(body.get("count") or 0)
        for result, number in _object(body.get("results") or {}).items():
            results[result] = results.get(result, 0) + int(number)
    waited = all(response.status == 200 for response in responses)
    not_applied = sum(number for result, number in results.items() if result != "applied")

    if args.json_output:
        if len(bodies) == 1:
            _print_json(bodies[0])
        else:
            merged: dict[str, Any] = {"command_ids": command_ids, "count": count}
            if waited:
                merged["results"] = results
            _print_json(merged)
        return 1 if not_applied else 0

    target = f"agent {args.agent_id}" if args.agent_id else f"{len(args.item_ids)} item IDs"
    if not waited:
        print(f"{decision} of {target}: {count} commands published, pending:")
        print("\n".join(cell(command_id) for command_id in command_ids))
        print("check each with 'stemedb-gate command show COMMAND_ID'")
        return 0
    print(f"{decision} of {target}: {count} commands")
    if results:
        print(
            format_table(
                [Column("RESULT"), Column("ITEMS", align_right=True)],
                [[cell(result), str(number)] for result, number in results.items()],
            )
        )
    return 1 if not_applied else 0


def _item_details(item: Mapping[str, Any]) -> str:
    reasons = item.get("reasons")
    sources = item.get("sources")
    notes = item.get("notes")
    pairs = [
        ("id", cell(item.get("id"))),
        ("agent_id", cell(item.get("agent_id"))),
        ("assertion_id", cell(item.get("assertion_id"))),
        ("status", cell(item.get("status"))),
        ("reasons", _joined(reasons)),
        ("quality_score", _score(item.get("quality_score"))),
        ("score_breakdown", _breakdown(item.get("score_breakdown"))),
        ("quarantined_at", format_time(item.get("quarantined_at"))),
        ("decided_at", format_time(item.get("decided_at"))),
        ("decided_by", cell(item.get("decided_by"))),
        ("subject", cell(item.get("subject"))),
        ("predicate", cell(item.get("predicate"))),
        ("object", cell(item.get("object"))),
        ("confidence", cell(item.get("confidence"))),
        ("sources", _joined(sources)),
        ("notes", _joined(notes, separator=" | ")),
    ]
    return format_fields(pairs)


def _claim(item: Mapping[str, Any]) -> str:
    parts = [item.get("subject"), item.get("predicate"), item.get("object")]
    text = " ".join(str(part) for part in parts if part is not None)
    return cell(text, CLAIM_CHARS) if text else "-"


def _score(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}"
    return cell(value)


def _breakdown(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return cell(value) if value else "-"
    return ", ".join(f"{cell(key)}={format_number(number)}" for key, number in value.items())


def _joined(value: Any, separator: str = ", ") -> str:
    if isinstance(value, list):
        return separator.join(cell(part) for part in value) if value else "-"
    return cell(value)


# Breakers


async def _breaker_list(client: AdminClient, args: argparse.Namespace) -> int:
    params = _present(state=args.state, limit=args.limit, cursor=args.cursor)
    body = await _fetch_pages(client, ("circuit_breakers",), params, "circuit_breakers", args.all_pages)
    if args.json_output:
        _print_json(body)
        return 0

    breakers = _records(body, "circuit_breakers")
    if not breakers:
        print("no circuit breakers match")
        return 0
    columns = [
        Column("AGENT"),
        Column("STATE"),
        Column("MANUAL"),
        Column("TRIPS", align_right=True),
        Column("OPENED_AT"),
        Column("UNTIL"),
        Column("REASON"),
    ]
    rows = [
        [
            short_agent(snapshot.get("agent_id")),
            cell(snapshot.get("state")),
            cell(snapshot.get("manual")),
            cell(snapshot.get("trips")),
            format_time(snapshot.get("opened_at")),
            format_time(snapshot.get("until")),
            cell(snapshot.get("reason"), REASON_CHARS),
        ]
        for snapshot in breakers
    ]
    print(format_table(columns, rows))
    print(_page_footer(body, len(breakers), "breakers"))
    return 0


async def _breaker_show(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("circuit_breakers", args.agent_id)
    if args.json_output:
        _print_json(response.body)
        return 0
    snapshot = _object(response.body)
    pairs = [
        ("agent_id", cell(snapshot.get("agent_id"))),
        ("state", cell(snapshot.get("state"))),
        ("manual", cell(snapshot.get("manual"))),
        ("trips", cell(snapshot.get("trips"))),
        ("reason", cell(snapshot.get("reason"))),
        ("opened_at", format_time(snapshot.get("opened_at"))),
        ("until", format_time(snapshot.get("until"))),
    ]
    print(format_fields(pairs))
    return 0


async def _breaker_open(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.write(
        "POST",
        ("circuit_breakers", args.agent_id, "open"),
        {"reason": args.reason, "duration_seconds": args.duration_seconds},
        wait=not args.no_wait,
        idempotency_key=args.idempotency_key,
    )
    if args.json_output:
        _print_json(response.body)
        return 0
    body = _object(response.body)
    command_id = cell(body.get("command_id"))
    if response.status == 202:
        print(_pending_line(f"open of the breaker of agent {cell(args.agent_id)}", command_id))
        return 0
    print(
        f"breaker of agent {cell(body.get('agent_id', args.agent_id))} is "
        f"{cell(body.get('state'))} until {format_time(body.get('until'))} (command {command_id})"
    )
    return 0


async def _breaker_reset(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.write(
        "POST",
        ("circuit_breakers", args.agent_id, "reset"),
        _present(reason=args.reason),
        wait=not args.no_wait,
        idempotency_key=args.idempotency_key,
    )
    if args.json_output:
        _print_json(response.body)
        return 0
    body = _object(response.body)
    command_id = cell(body.get("command_id"))
    if response.status == 202:
        print(_pending_line(f"reset of the breaker of agent {cell(args.agent_id)}", command_id))
        return 0
    print(
        f"breaker of agent {cell(body.get('agent_id', args.agent_id))} is "
        f"{cell(body.get('state'))} (command {command_id})"
    )
    return 0


# Allow-list


async def _allowlist_add(client: AdminClient, args: argparse.Namespace) -> int:
    body = {"agent_id": args.agent_id, "reason": args.reason, **_present(expires_at=args.expires_at)}
    response = await client.write(
        "POST",
        ("content_defense", "allowlist"),
        body,
        wait=not args.no_wait,
        idempotency_key=args.idempotency_key,
    )
    if args.json_output:
        _print_json(response.body)
        return 0
    result = _object(response.body)
    command_id = cell(result.get("command_id"))
    if response.status == 202:
        print(_pending_line(f"allow-listing of agent {cell(args.agent_id)}", command_id))
        return 0
    expires_at = result.get("expires_at")
    until = f"until {format_time(expires_at)}" if expires_at else "with no expiry"
    print(
        f"agent {cell(result.get('agent_id', args.agent_id))} is allow-listed {until} "
        f"(command {command_id})"
    )
    return 0


async def _allowlist_list(client: AdminClient, args: argparse.Namespace) -> int:
    params = {"include_expired": "true"} if args.include_expired else None
    response = await client.get("content_defense", "allowlist", params=params)
    if args.json_output:
        _print_json(response.body)
        return 0

    body = _object(response.body)
    entries = _records(body, "allowlist")
    if not entries:
        print("no agents are allow-listed")
        return 0
    now = datetime.now(UTC)
    rows = [
        [
            short_agent(entry.get("agent_id")),
            _expiry(entry.get("expires_at"), now),
            cell(entry.get("added_by")),
            format_time(entry.get("added_at")),
            cell(entry.get("reason"), REASON_CHARS),
        ]
        for entry in entries
    ]
    columns = [
        Column("AGENT"),
        Column("EXPIRES_AT"),
        Column("ADDED_BY"),
        Column("ADDED_AT"),
        Column("REASON"),
    ]
    print(format_table(columns, rows))
    print(f"{len(entries)} of {cell(body.get('total', len(entries)))} entries")
    return 0


def _expiry(value: Any, now: datetime) -> str:
    if value is None:
        return "never"
    text = format_time(value)
    try:
        expired = datetime.fromisoformat(str(value)) <= now
    except (TypeError, ValueError):
        return text
    return f"{text} (expired)" if expired else text


async def _allowlist_remove(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.write(
        "DELETE",
        ("content_defense", "allowlist", args.agent_id),
        wait=not args.no_wait,
        idempotency_key=args.idempotency_key,
    )
    if args.json_output:
        _print_json(response.body)
        return 0
    result = _object(response.body)
    command_id = cell(result.get("command_id"))
    if response.status == 202:
        print(_pending_line(f"removal of agent {cell(args.agent_id)}", command_id))
        return 0
    print(
        f"agent {cell(result.get('agent_id', args.agent_id))} is no longer allow-listed "
        f"(command {command_id})"
    )
    return 0


# Thresholds


async def _thresholds_show(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("content_defense", "thresholds")
    if args.json_output:
        _print_json(response.body)
        return 0

    body = _object(response.body)
    metadata = ("updated_by", "updated_at")
    rows = [[cell(key), format_number(value)] for key, value in body.items() if key not in metadata]
    print(format_table([Column("KEY"), Column("VALUE", align_right=True)], rows))
    if body.get("updated_by") or body.get("updated_at"):
        print(
            f"last set by {cell(body.get('updated_by'))} at {format_time(body.get('updated_at'))}"
        )
    else:
        print("not changed at runtime: these are the configured values")
    return 0


async def _thresholds_set(client: AdminClient, args: argparse.Namespace) -> int:
    changes: dict[str, int | float] = {}
    for key, value in args.assignments:
        if key in changes:
            raise UsageError(f"threshold {key} is given twice")
        changes[key] = value
    response = await client.write(
        "PUT",
        ("content_defense", "thresholds"),
        changes,
        wait=not args.no_wait,
        idempotency_key=args.idempotency_key,
    )
    if args.json_output:
        _print_json(response.body)
        return 0
    body = _object(response.body)
    command_id = cell(body.get("command_id"))
    assignments = " ".join(f"{cell(key)}={format_number(value)}" for key, value in changes.items())
    if response.status == 202:
        print(_pending_line(f"thresholds {assignments}", command_id))
        return 0
    print(f"thresholds {cell(body.get('status'))}: {assignments} (command {command_id})")
    return 0


# Commands


async def _command_show(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("commands", args.command_id)
    if args.json_output:
        _print_json(response.body)
        return 0
    body = _object(response.body)
    pairs = [
        ("command_id", cell(body.get("command_id"))),
        ("kind", cell(body.get("kind"))),
        ("status", cell(body.get("status"))),
        ("issued_by", cell(body.get("issued_by"))),
    ]
    results = body.get("results")
    if isinstance(results, list):
        for index, detail in enumerate(results, start=1):
            pairs.append((f"result {index}", _detail(detail)))
    print(format_fields(pairs))
    return 0


def _detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return cell(detail)
    return " ".join(f"{cell(key)}={_detail_value(value)}" for key, value in detail.items())


def _detail_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return cell(json.dumps(value, separators=(",", ":")))
    if isinstance(value, str):
        return format_time(value)
    return format_number(value)


# Shared helpers


async def _fetch_pages(
    client: AdminClient,
    segments: tuple[str, ...],
    params: dict[str, str],
    list_key: str,
    all_pages: bool,
) -> dict[str, Any]:
    """GET a paginated list; with ``all_pages``, follow ``next_cursor`` and join the pages.

    The joined body keeps the last page's other fields, with every record under
    ``list_key`` and ``next_cursor`` null.
    """
    body = _object((await client.get(*segments, params=params)).body)
    if not all_pages:
        return body
    records = list(_list(body, list_key))
    seen_cursors: set[str] = set()
    while body.get("next_cursor"):
        cursor = str(body["next_cursor"])
        if cursor in seen_cursors:
            raise AdminClientError(
                f"the admin API returned cursor {cursor!r} twice while paging "
                f"{'/'.join(segments)}; stopped after {len(records)} records"
            )
        seen_cursors.add(cursor)
        body = _object((await client.get(*segments, params={**params, "cursor": cursor})).body)
        records.extend(_list(body, list_key))
    return {**body, list_key: records, "next_cursor": None}


def _page_footer(body: Mapping[str, Any], shown: int, noun: str) -> str:
    footer = f"{shown} of {cell(body.get('total', shown))} {noun}"
    cursor = body.get("next_cursor")
    if cursor:
        footer += f"; next page: --cursor {cell(cursor)}, or --all-pages for all"
    return footer


def _pending_line(what: str, command_id: str) -> str:
    return (
        f"{what} is pending as command {command_id}; check it with "
        f"'stemedb-gate command show {command_id}'"
    )


def _present(**values: Any) -> dict[str, Any]:
    """Return the keyword arguments that are not None, for optional query and body fields."""
    return {key: value for key, value in values.items() if value is not None}


def _query_number(value: float | None) -> str | None:
    return None if value is None else format_number(value)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdminClientError(
            f"the admin API returned {type(value).__name__} where a JSON object was expected"
        )
    return value


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise AdminClientError(f"the admin API response has no list {key!r}")
    return value


def _records(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [_object(record) for record in _list(body, key)]


def _print_json(body: Any) -> None:
    print(json.dumps(body, indent=2))
