"""A load generator: payments written into the source at a steady rate.

Each payment is one committed transaction with a uuid chosen by the writer. Its id goes
into the acknowledged log (a file, one id per line, flushed) only after the commit
returned: these are the payments a client was told succeeded, the ones that must all
be found in the target at the end.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import psycopg

_CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP", "CAD")


class LoadGenerator(threading.Thread):
    """Writes payments at `rate` per second until :meth:`stop`."""

    def __init__(self, dsn: str, rate: float, log_path: Path, *, seed: int = 7) -> None:
        """Prepare the generator; it writes once started."""
        super().__init__(name="paymig-load", daemon=True)
        if rate <= 0:
            raise ValueError(f"--rate: must be positive, got {rate}")
        self.dsn = dsn
        self.rate = rate
        self.log_path = log_path
        self.acknowledged: list[str] = []
        self.attempted = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - test data, not secrets

    @property
    def written(self) -> int:
        """Payments acknowledged so far."""
        with self._lock:
            return len(self.acknowledged)

    def acknowledged_ids(self) -> list[str]:
        """A copy of the acknowledged ids."""
        with self._lock:
            return list(self.acknowledged)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop writing and wait for the thread to finish."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        """Write until stopped; a failed write is counted, never acknowledged."""
        interval = 1.0 / self.rate
        with self.log_path.open("w", encoding="utf-8") as log:
            conn: psycopg.Connection[Any] | None = None
            account: str | None = None
            next_at = time.monotonic()
            while not self._stop_event.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                        row = conn.execute("SELECT id::text FROM accounts LIMIT 1").fetchone()
                        account = None if row is None else str(row[0])
                    if account is not None:
                        self._write_one(conn, account, log)
                except Exception as exc:  # any failed write is counted; the load goes on
                    self.errors.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200])
                    if conn is not None:
                        conn.close()
                    conn = None
                next_at += interval
                self._stop_event.wait(max(0.0, next_at - time.monotonic()))
            if conn is not None:
                conn.close()

    def _write_one(self, conn: psycopg.Connection[Any], account: str, log: TextIO) -> None:
        """Insert one payment; log its id once the commit is acknowledged."""
        payment_id = str(uuid.uuid4())
        key = f"load-{payment_id}"
        self.attempted += 1
        conn.execute(
            "INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, "
            "currency, status, request_fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                payment_id,
                account,
                f"merchant-{self._random.randrange(97)}",
                key,
                f"{self._random.uniform(1, 500):.2f}",
                self._random.choice(_CURRENCIES),
                "succeeded",
                hashlib.sha256(key.encode()).hexdigest(),
            ),
        )
        log.write(payment_id + "\n")
        log.flush()
        with self._lock:
            self.acknowledged.append(payment_id)
