"""The API's in-memory view of the gate, rebuilt from Kafka topics at every start.

:class:`ReadModel` takes one record at a time through :meth:`ReadModel.apply` and has
no Kafka client, so tests feed it by hand; :mod:`admin_api.read_model.feed` reads the
topics into it.

========================  ==============================  ==============================
topic                     key                             value
========================  ==============================  ==============================
``quarantine-state``      item id                         QuarantineItem, or a tombstone
``breaker-state``         agent id                        BreakerSnapshot, or a tombstone
``config-state``          ``thresholds``                  ThresholdsState
``config-state``          ``allowlist/<agent id>``        AllowlistEntry, or a tombstone
``admin-commands``        agent id                        AdminCommand (kind and issuer)
``admin-events``          agent id                        AdminEvent (command results)
========================  ==============================  ==============================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from admin_api.read_model.breakers import BreakerIndex
from admin_api.read_model.commands import CommandLog
from admin_api.read_model.config import ALLOWLIST_PREFIX, THRESHOLDS_KEY, ConfigIndex
from admin_api.read_model.quarantine import QuarantineIndex
from schemas.admin import (
    AdminCommand,
    AdminCommandKind,
    AdminEvent,
    AdminEventKind,
    AllowlistEntry,
    ThresholdsState,
)
from schemas.breaker import BreakerSnapshot
from schemas.quarantine import QuarantineItem
from streams.settings import GateSettings
from streams.topics import (
    ADMIN_COMMANDS,
    ADMIN_EVENTS,
    BREAKER_STATE,
    CONFIG_STATE,
    QUARANTINE_STATE,
)

logger = logging.getLogger(__name__)

READ_TOPICS = (QUARANTINE_STATE, BREAKER_STATE, CONFIG_STATE, ADMIN_COMMANDS, ADMIN_EVENTS)
LOG_INVALID_EVERY_SECONDS = 10.0

ResultListener = Callable[[AdminEvent], None]


class ReadModel:
    """Quarantine items, breakers, thresholds, allow-list and command status."""

    def __init__(self, settings: GateSettings) -> None:
        self.quarantine = QuarantineIndex()
        self.breakers = BreakerIndex()
        self.config = ConfigIndex(settings)
        self.commands = CommandLog()
        self.invalid_records: dict[str, int] = {}
        self.ready = False
        self._result_listeners: list[ResultListener] = []
        self._last_invalid_log = 0.0

    def add_result_listener(self, listener: ResultListener) -> None:
        """Call ``listener`` with every command result event that arrives from now on."""
        self._result_listeners.append(listener)

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of ``topic`` (a name without prefix from :data:`READ_TOPICS`).

        A record that does not decode is counted in :attr:`invalid_records`, logged at
        most once per :data:`LOG_INVALID_EVERY_SECONDS`, and skipped.
        """
        try:
            self._apply(topic, key, value)
        except (ValidationError, UnicodeDecodeError, ValueError) as exc:
            self.invalid_records[topic] = self.invalid_records.get(topic, 0) + 1
            now = time.monotonic()
            if now - self._last_invalid_log >= LOG_INVALID_EVERY_SECONDS:
                self._last_invalid_log = now
                logger.warning(
                    "skipping an invalid %s record with key %r (%d invalid so far): %s",
                    topic,
                    key[:100] if key else key,
                    self.invalid_records[topic],
                    str(exc)[:300],
                )

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if topic == QUARANTINE_STATE:
            self._apply_quarantine(key, value)
        elif topic == BREAKER_STATE:
            self._apply_breaker(key, value)
        elif topic == CONFIG_STATE:
            self._apply_config(key, value)
        elif topic == ADMIN_COMMANDS:
            if value is not None:
                command = AdminCommand.model_validate_json(value)
                # The worker's sweeper sends these for itself; no operator asks about them.
                if command.kind is not AdminCommandKind.EXPIRE_STATE:
                    self.commands.record_command(command)
        elif topic == ADMIN_EVENTS:
            if value is not None:
                self._apply_event(AdminEvent.model_validate_json(value))
        else:
            raise ValueError(f"topic {topic!r} is not read by the admin API")

    def _apply_quarantine(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.quarantine.remove(key.decode())
            return
        self.quarantine.upsert(QuarantineItem.model_validate_json(value))

    def _apply_breaker(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.breakers.remove(key.decode())
            return
        self.breakers.upsert(BreakerSnapshot.model_validate_json(value))

    def _apply_config(self, key: bytes | None, value: bytes | None) -> None:
        name = key.decode() if key is not None else ""
        if name == THRESHOLDS_KEY:
            if value is not None:
                self.config.thresholds_state = ThresholdsState.model_validate_json(value)
        elif name.startswith(ALLOWLIST_PREFIX):
            agent_id = name[len(ALLOWLIST_PREFIX) :]
            if value is None:
                self.config.allowlist.pop(agent_id, None)
            else:
                self.config.allowlist[agent_id] = AllowlistEntry.model_validate_json(value)
        else:
            raise ValueError(f"unknown config-state key {name!r}")

    def _apply_event(self, event: AdminEvent) -> None:
        if event.kind is not AdminEventKind.COMMAND_RESULT:
            return
        self.commands.record_result(event)
        for listener in self._result_listeners:
            listener(event)

    def counts(self) -> dict[str, Any]:
        """Return sizes of the indexes, for logs and the metrics page."""
        return {
            "items": len(self.quarantine),
            "pending": self.quarantine.count("pending"),
            "breakers": len(self.breakers),
            "allowlist": len(self.config.allowlist),
            "commands": len(self.commands),
        }
