"""The admin commands of ``stemedb-gate``: requests to the admin API and their output.

Each coroutine takes the open :class:`AdminClient` and the parsed arguments of its
command (see :mod:`streams.cli_admin`), prints a table or, with ``--json``, the API's
JSON, and returns the exit code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streams.admin_client import AdminClient, AdminClientError, ApiResponse, UsageError
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

BULK_MAX_IDS = 10_000
"""Largest ``ids`` list the bulk approve and reject routes accept in one request."""
CLAIM_CHARS = 60
REASON_CHARS = 40


# Quarantine


async def quarantine_list(client: AdminClient, args: argparse.Namespace) -> int:
    params = _query(
        agent_id=args.agent_id,
        reason=args.reason,
        status=args.status,
        older_than_seconds=args.older_than_seconds,
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


async def quarantine_show(client: AdminClient, args: argparse.Namespace) -> int:
    response = await client.get("quarantine", args.item_id)
    if args.json_output:
        _print_json(response.body)
        return 0
    item = _object(response.body)
    print(_item_details(item))
    return 0


async def quarantine_summary(client: AdminClient, args: argparse.Namespace) -> int:
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


async def quarantine_decide(client: AdminClient, args: argparse.Namespace) -> int:
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
        target = f"agent {args.agent_id}"
        batches: list[dict[str, Any]] = [{"agent_id": args.agent_id, **body}]
    else:
        target = f"{len(item_ids)} item IDs"
        if len(item_ids) > BULK_MAX_IDS and args.idempotency_key:
            raise UsageError(
                f"--idempotency-key works with at most {BULK_MAX_IDS} item IDs, got "
                f"{len(item_ids)}. Split the IDs over several commands"
            )
        batches = [
            {"ids": item_ids[start : start + BULK_MAX_IDS], **body}
            for start in range(0, len(item_ids), BULK_MAX_IDS)
        ]
    # NOTE: when a later batch fails, the error is raised and the decisions of the
    # earlier batches, already applied, are not printed.
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
    return _print_bulk_decision(responses, decision, target, args.json_output)


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
    responses: Sequence[ApiResponse], decision: str, target: str, json_output: bool
) -> int:
    """Print the bulk responses and return 1 when some items were not applied or left out."""
    bodies = [_object(response.body) for response in responses]
    command_ids: list[Any] = []
    count = 0
    # A bulk request by agent covers at most 10000 of its pending items, and the API
    # reports how many it left out as "remaining".
    remaining = 0
    results: dict[str, int] = {}
    for body in bodies:
        command_ids.extend(_list(body, "command_ids"))
        count += _count(body.get("count", 0))
        remaining += _count(body.get("remaining", 0))
        for result, number in _object(body.get("results") or {}).items():
            results[result] = results.get(result, 0) + _count(number)
    waited = all(response.status == 200 for response in responses)
    not_applied = sum(number for result, number in results.items() if result != "applied")
    exit_code = 1 if not_applied or remaining else 0

    if json_output:
        if len(bodies) == 1:
            _print_json(bodies[0])
        else:
            merged: dict[str, Any] = {"command_ids": command_ids, "count": count}
            if waited:
                merged["results"] = results
            _print_json(merged)
        return exit_code

    if waited:
        print(f"{decision} of {target}: {count} commands")
        if results:
            print(
                format_table(
                    [Column("RESULT"), Column("ITEMS", align_right=True)],
                    [[cell(result), str(number)] for result, number in results.items()],
                )
            )
    else:
        print(f"{decision} of {target}: {count} commands published, pending:")
        print("\n".join(cell(command_id) for command_id in command_ids))
        print("check each with 'stemedb-gate command show COMMAND_ID'")
    if remaining:
        print(f"{remaining} more pending items were left out. Run the command again for them.")
    return exit_code


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AdminClientError(
            f"the admin API returned count {value!r} where an integer was expected"
        )
    return value


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


async def breaker_list(client: AdminClient, args: argparse.Namespace) -> int:
    params = _query(state=args.state, limit=args.limit, cursor=args.cursor)
    body = await _fetch_pages(
        client, ("circuit_breakers",), params, "circuit_breakers", args.all_pages
    )
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


async def breaker_show(client: AdminClient, args: argparse.Namespace) -> int:
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


async def breaker_open(client: AdminClient, args: argparse.Namespace) -> int:
    sent = await _send_command(
        client,
        args,
        "POST",
        ("circuit_breakers", args.agent_id, "open"),
        {"reason": args.reason, "duration_seconds": args.duration_seconds},
        pending=f"open of the breaker of agent {cell(args.agent_id)}",
    )
    if sent is not None:
        body, command_id = sent
        print(
            f"breaker of agent {cell(body.get('agent_id', args.agent_id))} is "
            f"{cell(body.get('state'))} until {format_time(body.get('until'))} "
            f"(command {command_id})"
        )
    return 0


async def breaker_reset(client: AdminClient, args: argparse.Namespace) -> int:
    sent = await _send_command(
        client,
        args,
        "POST",
        ("circuit_breakers", args.agent_id, "reset"),
        _present(reason=args.reason),
        pending=f"reset of the breaker of agent {cell(args.agent_id)}",
    )
    if sent is not None:
        body, command_id = sent
        print(
            f"breaker of agent {cell(body.get('agent_id', args.agent_id))} is "
            f"{cell(body.get('state'))} (command {command_id})"
        )
    return 0


# Allow-list


async def allowlist_add(client: AdminClient, args: argparse.Namespace) -> int:
    body = {
        "agent_id": args.agent_id,
        "reason": args.reason,
        **_present(expires_at=args.expires_at),
    }
    sent = await _send_command(
        client,
        args,
        "POST",
        ("content_defense", "allowlist"),
        body,
        pending=f"allow-listing of agent {cell(args.agent_id)}",
    )
    if sent is not None:
        result, command_id = sent
        expires_at = result.get("expires_at")
        until = f"until {format_time(expires_at)}" if expires_at else "with no expiry"
        print(
            f"agent {cell(result.get('agent_id', args.agent_id))} is allow-listed {until} "
            f"(command {command_id})"
        )
    return 0


async def allowlist_list(client: AdminClient, args: argparse.Namespace) -> int:
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


async def allowlist_remove(client: AdminClient, args: argparse.Namespace) -> int:
    sent = await _send_command(
        client,
        args,
        "DELETE",
        ("content_defense", "allowlist", args.agent_id),
        pending=f"removal of agent {cell(args.agent_id)}",
    )
    if sent is not None:
        result, command_id = sent
        print(
            f"agent {cell(result.get('agent_id', args.agent_id))} is no longer allow-listed "
            f"(command {command_id})"
        )
    return 0


# Thresholds


async def thresholds_show(client: AdminClient, args: argparse.Namespace) -> int:
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


async def thresholds_set(client: AdminClient, args: argparse.Namespace) -> int:
    changes: dict[str, int | float] = {}
    for key, value in args.assignments:
        if key in changes:
            raise UsageError(f"threshold {key} is given twice")
        changes[key] = value
    assignments = " ".join(f"{cell(key)}={format_number(value)}" for key, value in changes.items())
    sent = await _send_command(
        client,
        args,
        "PUT",
        ("content_defense", "thresholds"),
        changes,
        pending=f"thresholds {assignments}",
    )
    if sent is not None:
        body, command_id = sent
        print(f"thresholds {cell(body.get('status'))}: {assignments} (command {command_id})")
    return 0


# Commands


async def command_show(client: AdminClient, args: argparse.Namespace) -> int:
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
    """GET a paginated list. With ``all_pages``, follow ``next_cursor`` and join the pages.

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
                f"{'/'.join(segments)}. Stopped after {len(records)} records"
            )
        seen_cursors.add(cursor)
        body = _object((await client.get(*segments, params={**params, "cursor": cursor})).body)
        records.extend(_list(body, list_key))
    return {**body, list_key: records, "next_cursor": None}


def _page_footer(body: Mapping[str, Any], record_count: int, noun: str) -> str:
    footer = f"{record_count} of {cell(body.get('total', record_count))} {noun}"
    cursor = body.get("next_cursor")
    if cursor:
        footer += f". Next page: --cursor {cell(cursor)}, or --all-pages for all"
    return footer


async def _send_command(
    client: AdminClient,
    args: argparse.Namespace,
    method: str,
    segments: tuple[str, ...],
    body: Mapping[str, Any] | None = None,
    *,
    pending: str,
) -> tuple[dict[str, Any], str] | None:
    """Send a command and return its result body and command id to print.

    Returns None when nothing is left to print: with --json the body was printed as it
    came, and a command still pending (202) got the line naming ``pending``.
    """
    response = await client.write(
        method, segments, body, wait=not args.no_wait, idempotency_key=args.idempotency_key
    )
    if args.json_output:
        _print_json(response.body)
        return None
    result = _object(response.body)
    command_id = cell(result.get("command_id"))
    if response.status == 202:
        print(_pending_line(pending, command_id))
        return None
    return result, command_id


def _pending_line(action: str, command_id: str) -> str:
    return (
        f"{action} is pending as command {command_id}. Check it with "
        f"'stemedb-gate command show {command_id}'"
    )


def _present(**values: Any) -> dict[str, Any]:
    """Return the keyword arguments that are not None, for optional query and body fields."""
    return {key: value for key, value in values.items() if value is not None}


def _query(**values: Any) -> dict[str, str]:
    """Return the query parameters that are not None, numbers written without a needless .0."""
    return {
        key: value if isinstance(value, str) else format_number(value)
        for key, value in values.items()
        if value is not None
    }


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
