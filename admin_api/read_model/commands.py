"""Status of admin commands, from ``admin-commands`` and the results on ``admin-events``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from schemas.admin import AdminCommand, AdminCommandKind, AdminEvent, CommandResult

# NOTE: a guessed bound. Commands beyond it are forgotten oldest first, and a status
# request for one of them returns 404 although the worker applied it.
MAX_COMMANDS_KEPT = 200_000
PENDING = "pending"


@dataclass
class CommandRecord:
    """The read model's record of one command id."""

    command_id: str
    kind: str | None = None
    issued_by: str | None = None
    agent_id: str | None = None
    item_id: str | None = None
    expected_results: int = 1
    results: list[CommandResult] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    partitions_reported: set[int] = field(default_factory=set)

    @property
    def status(self) -> str:
        """``pending`` until every expected result arrived, else the first non-applied result."""
        for result in self.results:
            if result is not CommandResult.APPLIED:
                return result.value
        if self.results and len(self.results) >= self.expected_results:
            return CommandResult.APPLIED.value
        return PENDING

    def view(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "kind": self.kind,
            "status": self.status,
            "issued_by": self.issued_by,
            "agent_id": self.agent_id,
            "item_id": self.item_id,
            "results": list(self.details),
        }

    def add_result(self, event: AdminEvent) -> bool:
        """Record a result event; return False for a repeat that changes nothing.

        A ``set_thresholds`` command has one result per partition of
        ``admin-commands``, distinguished by ``detail["partition"]``. Of every other
        kind only the first result counts, so repeats (``detail["duplicate"]``) are
        ignored once a result is known.
        """
        if event.result is None:
            return False
        detail = dict(event.detail)
        partition = detail.get("partition")
        if isinstance(partition, int) and not isinstance(partition, bool):
            if partition in self.partitions_reported:
                return False
            self.partitions_reported.add(partition)
        elif self.results:
            return False
        if self.issued_by is None:
            self.issued_by = event.issued_by
        if self.agent_id is None:
            self.agent_id = event.agent_id
        self.results.append(event.result)
        self.details.append({"result": event.result.value, **detail})
        return True


class CommandLog:
    """The most recent :data:`MAX_COMMANDS_KEPT` commands by id."""

    def __init__(self, max_kept: int = MAX_COMMANDS_KEPT) -> None:
        self.max_kept = max_kept
        self.partitions = 1
        self._records: OrderedDict[str, CommandRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, command_id: str) -> CommandRecord | None:
        return self._records.get(command_id)

    def expected_results(self, kind: AdminCommandKind) -> int:
        return self.partitions if kind is AdminCommandKind.SET_THRESHOLDS else 1

    def record_command(self, command: AdminCommand) -> CommandRecord:
        """Note a published command; a repeat of a known id keeps the first one's fields."""
        record = self._record(command.command_id)
        if record.kind is None:
            record.kind = command.kind.value
            record.issued_by = command.issued_by
            record.agent_id = command.agent_id
            record.item_id = command.item_id
            record.expected_results = self.expected_results(command.kind)
        return record

    def record_result(self, event: AdminEvent) -> CommandRecord | None:
        if event.command_id is None or event.result is None:
            return None
        record = self._record(event.command_id)
        record.add_result(event)
        return record

    def _record(self, command_id: str) -> CommandRecord:
        record = self._records.get(command_id)
        if record is None:
            record = self._records[command_id] = CommandRecord(command_id)
            while len(self._records) > self.max_kept:
                self._records.popitem(last=False)
        return record
