"""Quarantine items from ``quarantine-state``, indexed for pages, filters and summaries.

Every item sits in sorted lists keyed by ``(quarantined_at in microseconds, item id)``:
one list per status, one per status and agent, one per status and first reason, each
also under the pseudo-status ``all``. A page bisects to its cursor in the most
selective list and reads forward, so a request never sorts the items, and a change of
status moves an item between lists in O(log n).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sortedcontainers import SortedList

from admin_api.errors import InvalidRequest
from admin_api.read_model.pages import Page, decode_cursor, encode_cursor, take_page
from schemas.quarantine import QuarantineItem, QuarantineStatus

ALL_STATUSES = "all"
STATUS_CHOICES = (*(status.value for status in QuarantineStatus), ALL_STATUSES)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The largest code point sorts after every item id, so a key built with it ends a range.
AFTER_ANY_ID = "\U0010ffff"

SortKey = tuple[int, str]


def timestamp_us(moment: datetime) -> int:
    """Return microseconds since the Unix epoch; a naive datetime counts as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def item_view(item: QuarantineItem) -> dict[str, Any]:
    """Render an item as the API's item view: the runbook's flat fields plus the assertion."""
    data = item.model_dump(mode="json")
    verdict = data["verdict"]
    assertion = data["assertion"]
    reasons = verdict.get("reasons") or []
    return {
        "id": data["id"],
        "agent_id": data["agent_id"],
        "assertion_id": assertion.get("id"),
        "reason": reasons[0] if reasons else None,
        "reasons": reasons,
        "status": data["status"],
        "quality_score": verdict.get("quality_score"),
        "score_breakdown": verdict.get("score_breakdown", {}),
        "quarantined_at": data["quarantined_at"],
        "decided_at": data["decided_at"],
        "decided_by": data["decided_by"],
        "notes": data["notes"],
        "subject": assertion.get("subject"),
        "predicate": assertion.get("predicate"),
        "object": assertion.get("object"),
        "confidence": assertion.get("confidence"),
        "sources": assertion.get("sources", []),
        "assertion": assertion,
    }


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One item as the read model keeps it: the index fields and the rendered view."""

    id: str
    agent_id: str
    status: str
    reason: str | None
    sort_key: SortKey
    view: dict[str, Any]

    @classmethod
    def from_item(cls, item: QuarantineItem) -> StoredItem:
        view = item_view(item)
        return cls(
            id=item.id,
            agent_id=item.agent_id,
            status=item.status.value,
            reason=view["reason"],
            sort_key=(timestamp_us(item.quarantined_at), item.id),
            view=view,
        )


@dataclass(frozen=True)
class ItemFilter:
    """Filters of a quarantine listing; ``None`` means any value."""

    status: str = "pending"
    agent_id: str | None = None
    reason: str | None = None
    older_than_seconds: float | None = None


def parse_item_cursor(cursor: str) -> SortKey:
    """Decode a quarantine page cursor; raise :class:`InvalidRequest` for field ``cursor``."""
    micros, item_id = decode_cursor(cursor, 2)
    try:
        return int(micros), item_id
    except ValueError:
        raise InvalidRequest(
            "cursor", "invalid cursor; pass the next_cursor of a previous page unchanged"
        ) from None


def _new_list() -> SortedList[SortKey]:
    return SortedList()


class QuarantineIndex:
    """All quarantine items by id, with the sorted lists that pages and summaries read."""

    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self._by_status: defaultdict[str, SortedList[SortKey]] = defaultdict(_new_list)
        self._by_agent: defaultdict[str, dict[str, SortedList[SortKey]]] = defaultdict(dict)
        self._by_reason: defaultdict[str, dict[str, SortedList[SortKey]]] = defaultdict(dict)
        self._watchers: dict[str, list[asyncio.Future[StoredItem]]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def count(self, status: str) -> int:
        """Return how many items have ``status`` (or any status for ``all``)."""
        listed = self._by_status.get(status)
        return len(listed) if listed is not None else 0

    def get(self, item_id: str) -> StoredItem | None:
        return self.items.get(item_id)

    # -- changes ------------------------------------------------------------------

    def upsert(self, item: QuarantineItem) -> StoredItem:
        """Add or replace an item and wake the requests that watch it."""
        stored = StoredItem.from_item(item)
        old = self.items.get(stored.id)
        if old is not None:
            self._unindex(old)
        self.items[stored.id] = stored
        self._index(stored)
        for future in self._watchers.pop(stored.id, []):
            if not future.done():
                future.set_result(stored)
        return stored

    def remove(self, item_id: str) -> None:
        """Drop an item after a tombstone on ``quarantine-state``."""
        old = self.items.pop(item_id, None)
        if old is not None:
            self._unindex(old)

    def watch(self, item_id: str) -> asyncio.Future[StoredItem]:
        """Return a future that the next change of ``item_id`` resolves.

        The caller cancels it when it stops waiting; :meth:`unwatch` then drops it.
        """
        future: asyncio.Future[StoredItem] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(item_id, []).append(future)
        return future

    def unwatch(self, item_id: str, future: asyncio.Future[StoredItem]) -> None:
        watchers = self._watchers.get(item_id)
        if watchers is None:
            return
        if future in watchers:
            watchers.remove(future)
        if not watchers:
            del self._watchers[item_id]

    def _lists_of(self, stored: StoredItem) -> list[tuple[dict[str, SortedList[SortKey]], str]]:
        lists: list[tuple[dict[str, SortedList[SortKey]], str]] = []
        for status in (stored.status, ALL_STATUSES):
            lists.append((self._by_status, status))
            lists.append((self._by_agent[status], stored.agent_id))
            if stored.reason is not None:
                lists.append((self._by_reason[status], stored.reason))
        return lists

    def _index(self, stored: StoredItem) -> None:
        for family, value in self._lists_of(stored):
            listed = family.get(value)
            if listed is None:
                listed = family[value] = SortedList()
            listed.add(stored.sort_key)

    def _unindex(self, stored: StoredItem) -> None:
        for family, value in self._lists_of(stored):
            listed = family.get(value)
            if listed is None:
                continue
            listed.discard(stored.sort_key)
            # Empty per-agent and per-reason lists go, so summaries only visit live ones.
            if not listed and family is not self._by_status:
                del family[value]

    # -- reads --------------------------------------------------------------------

    def page(
        self, item_filter: ItemFilter, limit: int, cursor: str | None, now: datetime
    ) -> Page[dict[str, Any]]:
        """Return the oldest-first page of items matching ``item_filter`` after ``cursor``.

        Reads the shortest list that the filters name and checks the other filter item
        by item. ``total`` counts every match, not only those after the cursor.
        """
        after = parse_item_cursor(cursor) if cursor is not None else None

        # 1. Pick the list to read: the status list, or the shorter of the agent's and
        # the reason's lists within that status, checking the other one item by item.
        status = item_filter.status
        status_list = self._by_status.get(status)
        agent_list = reason_list = None
        if item_filter.agent_id is not None:
            agent_list = self._by_agent[status].get(item_filter.agent_id)
        if item_filter.reason is not None:
            reason_list = self._by_reason[status].get(item_filter.reason)
        missing = (
            status_list is None
            or (item_filter.agent_id is not None and agent_list is None)
            or (item_filter.reason is not None and reason_list is None)
        )
        if missing or status_list is None:
            return Page([], 0, None)
        named = [listed for listed in (agent_list, reason_list) if listed is not None]
        source = min(named, key=len) if named else status_list
        matches: Callable[[SortKey], bool] | None = None
        if len(named) == 2 and source is agent_list:
            matches = self._has_reason(item_filter.reason)
        elif len(named) == 2:
            matches = self._has_agent(item_filter.agent_id)

        # 2. Bound the range: items up to the age cutoff, after the cursor.
        end = len(source)
        if item_filter.older_than_seconds is not None:
            cutoff = now - timedelta(seconds=item_filter.older_than_seconds)
            end = source.bisect_right((timestamp_us(cutoff), AFTER_ANY_ID))
        start = source.bisect_right(after) if after is not None else 0

        # 3. Count and read the page.
        total = end
        if matches is not None:
            total = sum(1 for key in source.islice(0, end) if matches(key))
        entries, next_cursor = take_page(
            source.islice(start, end) if start < end else (),
            limit,
            matches,
            lambda key: self.items[key[1]].view,
            lambda key: encode_cursor(key[0], key[1]),
        )
        return Page(entries, total, next_cursor)

    def _has_reason(self, reason: str | None) -> Callable[[SortKey], bool]:
        return lambda key: self.items[key[1]].reason == reason

    def _has_agent(self, agent_id: str | None) -> Callable[[SortKey], bool]:
        return lambda key: self.items[key[1]].agent_id == agent_id

    def oldest(self, status: str) -> StoredItem | None:
        listed = self._by_status.get(status)
        if not listed:
            return None
        return self.items[listed[0][1]]

    def summary(self, now: datetime) -> dict[str, Any]:
        """Return counts of pending items by agent and by first reason, and the oldest one."""
        oldest = self.oldest("pending")
        agents = sorted(
            self._by_agent["pending"].items(), key=lambda pair: (-len(pair[1]), pair[0])
        )
        by_agent = [
            {
                "agent_id": agent_id,
                "count": len(listed),
                "oldest_pending_at": self.items[listed[0][1]].view["quarantined_at"],
            }
            for agent_id, listed in agents
        ]
        reasons = sorted(
            self._by_reason["pending"].items(), key=lambda pair: (-len(pair[1]), pair[0])
        )
        by_reason = [{"reason": reason, "count": len(listed)} for reason, listed in reasons]
        age_seconds = None
        if oldest is not None:
            age_seconds = max(0.0, (timestamp_us(now) - oldest.sort_key[0]) / 1_000_000)
        return {
            "total_pending": self.count("pending"),
            "oldest_pending_at": oldest.view["quarantined_at"] if oldest else None,
            "oldest_pending_age_seconds": age_seconds,
            "by_agent": by_agent,
            "by_reason": by_reason,
        }
