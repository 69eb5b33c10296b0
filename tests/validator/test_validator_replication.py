"""Replication in flight: logical replication from source to target, writes never pausing.

The source publishes a payments table, the target subscribes to it (standing in for DMS
CDC), and a writer thread keeps inserting, updating and deleting payments on the source
for the whole run. The validator must report nothing but the two rows corrupted on the
target directly, keys the writer never touches: in-flight changes differ in the first
pass, and the re-check after the grace period clears them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pgpair import Pair

from paymig.runtime.validator import Settings, Validator

pytestmark = pytest.mark.slow

ROWS = 20_000
HOT_KEYS = 10_000  # the writer updates and deletes only keys 1..HOT_KEYS


def _wait_for(conn: psycopg.Connection[Any], query: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row and row[0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {query}")


class Writer(threading.Thread):
    """Inserts, updates and deletes payments on the source until stopped."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.transactions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        next_id = 1_000_000
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    choice = rng.random()
                    if choice < 0.4:
                        next_id += 1
                        conn.execute(
                            "INSERT INTO payments VALUES (%s, %s, 12.34, 'new', now())",
                            [next_id, rng.randint(1, 500)],
                        )
                    elif choice < 0.9:
                        conn.execute(
                            "UPDATE payments SET status = 'settled', amount = amount + 1,"
                            " updated_at = now() WHERE id = %s",
                            [rng.randint(1, HOT_KEYS)],
                        )
                    else:
                        conn.execute(
                            "DELETE FROM payments WHERE id = %s", [rng.randint(1, HOT_KEYS)]
                        )
                    self.transactions += 1
                    time.sleep(0.002)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.fixture(scope="module")
def replicating(pair: Pair) -> Iterator[Pair]:
    ddl = (
        "CREATE TABLE payments (id bigint PRIMARY KEY, account int NOT NULL,"
        " amount numeric(12,2) NOT NULL, status text NOT NULL, updated_at timestamptz NOT NULL)"
    )
    pair.both(ddl)
    pair.execute(
        "source",
        f"INSERT INTO payments SELECT g, g % 500, g * 0.01, 'authorized', now()"
        f" FROM generate_series(1, {ROWS}) g",
    )
    pair.execute("source", "CREATE PUBLICATION paymig_pub FOR TABLE payments")
    pair.execute(
        "target",
        f"CREATE SUBSCRIPTION paymig_sub CONNECTION '{pair.source.dsn()}' PUBLICATION paymig_pub",
    )
    with psycopg.connect(pair.target.dsn(), autocommit=True) as conn:
        _wait_for(
            conn,
            "SELECT count(*) > 0 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel",
        )
    yield pair
    pair.execute("target", "DROP SUBSCRIPTION paymig_sub")


def test_no_false_report_with_replication_in_flight(replicating: Pair) -> None:
    pair = replicating
    # real corruption on the target, on keys the writer never touches
    pair.execute("target", "UPDATE payments SET amount = -1 WHERE id = 15000")
    pair.execute("target", "DELETE FROM payments WHERE id = 15001")
    writer = Writer(pair.source.dsn())
    writer.start()
    try:
        _wait_until_written(writer, 200)
        settings = Settings(workers=3, grace_seconds=3.0, range_rows=2_000, leaf_rows=100)
        report = Validator(pair.source.dsn(), pair.target.dsn(), settings).run(["public.payments"])
        written_during_run = writer.transactions
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, writer.error
    assert written_during_run > 200  # writes really continued through the validation
    entry = report.tables[0]
    assert (entry.missing_in_target.keys, entry.missing_in_target.count) == ([("15001",)], 1)
    assert (entry.different.keys, entry.different.count) == ([("15000",)], 1)
    assert (entry.extra_in_target.keys, entry.extra_in_target.count) == ([], 0)
    assert not report.consistent
    # every key reported was a first-pass candidate; in trials 20-55 in-flight keys were
    # candidates too and were cleared by the re-check (a count that depends on timing)
    assert entry.candidates >= 2


def _wait_until_written(writer: Writer, transactions: int) -> None:
    deadline = time.monotonic() + 60
    while writer.transactions < transactions and time.monotonic() < deadline:
        assert writer.error is None, writer.error
        time.sleep(0.05)
