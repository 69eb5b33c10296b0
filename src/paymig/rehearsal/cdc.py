"""The replication lag, measured and published as the DMS CDC latency, from the start.

DMS publishes ``CDCLatencyTarget`` for as long as its task runs, so the cdc-latency
alarm (M of N periods, missing data breaching) always has its history. The rehearsal's
stand-in (logical replication) starts minutes before the traffic; publishing its
measured lag from that moment gives the alarm the same history, instead of an empty
range that CloudWatch's rules would rightly call breaching.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from paymig.config import PaymigConfig
from paymig.rehearsal import emulated
from paymig.rehearsal.data import LogicalReplication, ReplicationLag

#: Seconds between two measurements (DMS itself publishes once a minute).
PUBLISH_SECONDS = 1.0


class CdcPublisher(threading.Thread):
    """Measures the replication lag and publishes it as ``AWS/DMS CDCLatencyTarget``."""

    def __init__(
        self,
        replication: LogicalReplication,
        cloudwatch: Any,
        config: PaymigConfig,
        task_id: str,
    ) -> None:
        """`task_id` is the DMS task's resource id (a dimension of the metric)."""
        super().__init__(name="paymig-cdc-latency", daemon=True)
        self.replication, self.cloudwatch = replication, cloudwatch
        self.config, self.task_id = config, task_id
        self.latest: ReplicationLag | None = None
        self.max_lag = 0.0
        self.published = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Measure and publish until stopped."""
        conn: psycopg.Connection[Any] | None = None
        publisher = ""
        try:
            while not self._stop_event.wait(PUBLISH_SECONDS):
                try:
                    # After a cutover the reverse path runs: its lag is read on Aurora.
                    if conn is None or publisher != self.replication.publisher_dsn:
                        if conn is not None:
                            conn.close()
                        publisher = self.replication.publisher_dsn
                        conn = psycopg.connect(publisher, autocommit=True)
                    lag = self.replication.lag(conn)
                    emulated.publish_cdc_latency(
                        self.cloudwatch, self.config, self.task_id, lag.seconds
                    )
                except Exception as error:  # one failed sample must not end the publishing
                    self.errors.append(f"{type(error).__name__}: {error}")
                    if isinstance(error, psycopg.OperationalError) and conn is not None:
                        conn.close()
                        conn = None
                    continue
                self.latest = lag
                self.max_lag = max(self.max_lag, lag.seconds)
                self.published += 1
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """Stop publishing. Safe to call twice."""
        self._stop_event.set()
        if self.is_alive():
            self.join(10)
