"""A clock corrected to AWS's: the audit trail orders events written by many machines.

Every AWS answer carries an HTTP `Date` header (one-second resolution). The clock
watches the answers of the clients it is attached to and, when the local clock is off
by more than the tolerated skew (`core.CLOCK_SKEW_SECONDS`), adds the measured offset.
Events, locks and validation results then carry AWS's time to within that skew, which
is what the gates and the phase replay tolerate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from paymig.runtime.controller.core import CLOCK_SKEW_SECONDS, utc_now


class ServerClock:
    """The local UTC clock, corrected by the offset AWS's answers show."""

    def __init__(self, local: Callable[[], datetime] = utc_now) -> None:
        """Start uncorrected; `local` is this machine's clock."""
        self.local = local
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """AWS's time, as well as the last answer told it."""
        return self.local() + self.offset

    def observe(self, server_date: str) -> None:
        """Learn from one answer's `Date` header; ignore one that does not parse."""
        try:
            server = parsedate_to_datetime(server_date)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            return
        measured = server - self.local()
        # The header truncates to the second: correct only a difference it can show.
        if abs(measured.total_seconds()) > CLOCK_SKEW_SECONDS:
            self.offset = measured
        else:
            self.offset = timedelta(0)

    def attach(self, client: Any) -> Any:
        """Watch every answer of a boto3 client; return the client."""

        def after_call(http_response: Any = None, **_: Any) -> None:
            """Read the answer's Date header (botocore's after-call event)."""
            date = getattr(http_response, "headers", {}).get("Date") if http_response else None
            if date:
                self.observe(str(date))

        client.meta.events.register("after-call", after_call)
        return client
