"""Circuit breaker snapshots from ``breaker-state``, listed by agent id."""

from __future__ import annotations

from typing import Any

from sortedcontainers import SortedList

from admin_api.read_model.pages import Page, decode_cursor, encode_cursor, take_page
from schemas.breaker import BreakerSnapshot, BreakerState

ALL_STATES = "all"


def closed_view(agent_id: str) -> dict[str, Any]:
    """Return the snapshot view of an agent that no breaker record exists for."""
    return BreakerSnapshot(agent_id=agent_id, state=BreakerState.CLOSED).model_dump(mode="json")


class BreakerIndex:
    """Latest snapshot per agent, with agent ids sorted per state for paging."""

    def __init__(self) -> None:
        self.views: dict[str, dict[str, Any]] = {}
        self._states: dict[str, str] = {}
        self._ids: dict[str, SortedList[str]] = {ALL_STATES: SortedList()}

    def __len__(self) -> int:
        return len(self.views)

    def count(self, state: str) -> int:
        listed = self._ids.get(state)
        return len(listed) if listed is not None else 0

    def upsert(self, snapshot: BreakerSnapshot) -> None:
        self.remove(snapshot.agent_id)
        agent_id = snapshot.agent_id
        self.views[agent_id] = snapshot.model_dump(mode="json")
        self._states[agent_id] = snapshot.state.value
        self._ids[ALL_STATES].add(agent_id)
        self._ids.setdefault(snapshot.state.value, SortedList()).add(agent_id)

    def remove(self, agent_id: str) -> None:
        state = self._states.pop(agent_id, None)
        if state is None:
            return
        del self.views[agent_id]
        self._ids[ALL_STATES].discard(agent_id)
        self._ids[state].discard(agent_id)

    def get(self, agent_id: str) -> dict[str, Any] | None:
        return self.views.get(agent_id)

    def page(self, state: str | None, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
        """Return snapshots in agent id order, of one state or of all, after ``cursor``."""
        after = decode_cursor(cursor, 1)[0] if cursor is not None else None
        listed = self._ids.get(state or ALL_STATES)
        if not listed:
            return Page([], 0, None)
        start = listed.bisect_right(after) if after is not None else 0
        entries, next_cursor = take_page(
            listed.islice(start),
            limit,
            None,
            lambda agent_id: self.views[agent_id],
            encode_cursor,
        )
        return Page(entries, len(listed), next_cursor)
