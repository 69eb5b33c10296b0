"""A rate limit in rows per second, shared by the workers of one side.

Each query is charged, before it runs, with the rows it is expected to read (a range's
known row count, or the planned rows of a top-level range). The bucket holds at most one
second of rows and may go into debt for a query larger than that; the debtor then waits
until the debt is paid, so the long-run average never exceeds the limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RowThrottle:
    """At most ``rows_per_second`` rows on average, in bursts of at most one second's worth."""

    def __init__(
        self,
        rows_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Start with a full bucket."""
        if rows_per_second <= 0:
            raise ValueError(f"rows_per_second must be positive, got {rows_per_second!r}")
        self.rate = float(rows_per_second)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.rate
        self._stamp = clock()
        self._lock = threading.Lock()
        #: Seconds slept in all, for reports.
        self.slept = 0.0

    def acquire(self, rows: int) -> float:
        """Charge ``rows``; sleep until the bucket is out of debt. Return the seconds slept."""
        if rows <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= rows
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            self.slept += wait
        if wait > 0:
            self._sleep(wait)
        return wait
