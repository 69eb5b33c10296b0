"""What the write figures of a rehearsal are, computed from what was measured (pure).

* The write-unavailability window of a cutover or fallback, from the clients'
  acknowledgements: the gap between the last payment acknowledged before the writes
  stopped on the old database and the first acknowledged after they started on the new
  one. The load sends a payment every 1/rate seconds, so outside a switch consecutive
  acknowledgements are far closer than any window; the switch's gap is the largest one
  between the last acknowledgement at or before its start and the first at or after its
  end.
* Duplicates: an idempotency key (per merchant) held under more than one payment id, in
  one database or across both (one copy written on each side would show here).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Gap:
    """The window of one switch: last acknowledgement before, first after."""

    last_before: float
    first_after: float

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.first_after - self.last_before


def write_window(acks: Sequence[float], start: float, end: float) -> Gap | None:
    """The largest gap between consecutive acknowledgements spanning [start, end].

    ``acks`` are acknowledgement times (sorted or not); None when no acknowledgement
    precedes ``start`` or none follows ``end`` (the window cannot be bounded).
    """
    times = sorted(acks)
    low = bisect.bisect_right(times, start) - 1
    high = bisect.bisect_left(times, end)
    if low < 0 or high >= len(times):
        return None
    span = times[low : high + 1]
    best = max(range(len(span) - 1), key=lambda i: span[i + 1] - span[i])
    return Gap(span[best], span[best + 1])


def duplicated_keys(rows: Iterable[tuple[str, str, str]]) -> int:
    """Keys (merchant, idempotency key) held under more than one payment id.

    ``rows`` are (merchant_id, idempotency_key, payment_id) from one or several
    databases; the same payment replicated to both counts once.
    """
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for merchant, key, payment in rows:
        ids[(merchant, key)].add(payment)
    return sum(1 for found in ids.values() if len(found) > 1)


@dataclass(frozen=True)
class Accounting:
    """The acknowledged payments against one database's rows."""

    acknowledged: int
    exactly_once: int
    lost: int
    duplicated: int


def account(acknowledged: Iterable[str], held: Mapping[str, int]) -> Accounting:
    """Each acknowledged id against how many rows hold it (``held``: id -> rows)."""
    acked = Counter(acknowledged)
    once = sum(1 for pid in acked if held.get(pid, 0) == 1)
    lost = sum(1 for pid in acked if held.get(pid, 0) == 0)
    twice = sum(1 for pid in acked if held.get(pid, 0) > 1)
    return Accounting(len(acked), once, lost, twice)
