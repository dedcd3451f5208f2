"""Per-agent tumbling windows and the sliding estimate used for flood detection.

An agent keeps two windows: the current one and the one before it. Counting in fixed
windows alone lets a burst straddling a boundary through at twice the limit (the limit
in the last second of one window, again in the first second of the next). The sliding
estimate weights the previous window by the share of it that a window ending now would
still cover::

    estimate = previous * (1 - elapsed / size) + current

All times are broker timestamps in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class WindowCounts:
    start_ms: int = 0
    submissions: int = 0
    scored: int = 0
    quarantined: int = 0
    previous_submissions: int = 0

    @property
    def is_empty(self) -> bool:
        return self.submissions == 0 and self.previous_submissions == 0


EMPTY = WindowCounts()


def window_start(timestamp_ms: int, size_ms: int) -> int:
    return timestamp_ms - timestamp_ms % size_ms


def advance(counts: WindowCounts, timestamp_ms: int, size_ms: int) -> WindowCounts:
    """Return the counts with the window that contains ``timestamp_ms`` as the current one.

    A timestamp before the current window (the broker clock stepped back) counts in the
    current window, so counts never move backwards.
    """
    start = window_start(timestamp_ms, size_ms)
    if counts.is_empty or start >= counts.start_ms + 2 * size_ms:
        return WindowCounts(start_ms=start)
    if start == counts.start_ms + size_ms:
        return WindowCounts(start_ms=start, previous_submissions=counts.submissions)
    return counts


def count(counts: WindowCounts, *, scored: bool, quarantined: bool) -> WindowCounts:
    return replace(
        counts,
        submissions=counts.submissions + 1,
        scored=counts.scored + int(scored),
        quarantined=counts.quarantined + int(quarantined),
    )


def count_late(
    counts: WindowCounts, timestamp_ms: int, size_ms: int, *, scored: bool, quarantined: bool
) -> WindowCounts:
    """Count a record decided after later records of its agent, in the window it fell in.

    The counts are those a decision in offset order would have left: the current window
    counts it in full, the previous one only as a submission, and older windows are gone.
    """
    start = window_start(timestamp_ms, size_ms)
    if counts.is_empty or start >= counts.start_ms:
        return count(counts, scored=scored, quarantined=quarantined)
    if start == counts.start_ms - size_ms:
        return replace(counts, previous_submissions=counts.previous_submissions + 1)
    return counts


def sliding_estimate(counts: WindowCounts, timestamp_ms: int, size_ms: int) -> float:
    """Estimate the submissions of the window of ``size_ms`` that ends at ``timestamp_ms``."""
    elapsed = min(max(timestamp_ms - counts.start_ms, 0), size_ms)
    return counts.previous_submissions * (1.0 - elapsed / size_ms) + counts.submissions


def limit_per_window(max_per_minute: float, size_ms: int) -> float:
    return max_per_minute * size_ms / 60_000.0


def failure_rate(counts: WindowCounts) -> float:
    return counts.quarantined / counts.scored if counts.scored else 0.0


def expired(counts: WindowCounts, now_ms: int, size_ms: int, retention_ms: int) -> bool:
    """Return whether both windows ended at least ``retention_ms`` before ``now_ms``."""
    return counts.start_ms + size_ms + retention_ms <= now_ms
