"""The two replication paths a cutover stops and starts, behind one small interface.

Forward: on-prem source to Aurora (DMS full load and CDC). Reverse: Aurora to on-prem
(DMS, CDC only), the way back after a cutover. :class:`Replication` is what the
orchestration needs of them; :class:`~paymig.runtime.cutover.dms.DmsReplication` drives
the two DMS tasks, :class:`LogicalReplicationPaths` drives PostgreSQL logical
replication, which stands in for DMS on this machine (the tests, the rehearsal): it
moves rows the same way, in commit order, without DDL or sequence state.

Every method is idempotent: stopping what is stopped, or starting what runs, changes
nothing, so a resumed cutover may call it again.
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
from psycopg import sql

from paymig.payments_schema import REPLICATED_TABLES


class Replication(Protocol):
    """What a cutover and a fallback do to the forward and reverse replication."""

    #: Logical decoding plugin of the slots a start point is created in.
    plugin: str

    def stop_forward(self) -> str:
        """Stop forward replication for good: nothing of the source is read any more."""
        ...

    def start_reverse(self, slot: str, lsn: str) -> str:
        """Start Aurora -> source from ``slot``, created on Aurora at ``lsn``."""
        ...

    def stop_reverse(self) -> str:
        """Stop reverse replication; its slot may then be dropped."""
        ...

    def start_forward(self, slot: str, lsn: str) -> str:
        """Restart source -> Aurora, CDC only, from ``slot``, created on the source at ``lsn``."""
        ...


def _subscription_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone()
    return row is not None


def _ensure_publication(conn: psycopg.Connection[Any], name: str) -> None:
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return
    conn.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(t) for t in REPLICATED_TABLES)
        )
    )


class LogicalReplicationPaths:
    """Forward and reverse replication as PostgreSQL publications and subscriptions.

    Forward: publication ``forward`` on the source, subscription ``forward`` on the
    target. Reverse: publication ``reverse`` on the target, subscription ``reverse`` on
    the source, reading the slot the cutover created at its cutover point (never a slot
    of its own, so nothing before that point is replayed). The DSNs are administrators'
    (a subscription is created by a superuser).
    """

    plugin = "pgoutput"

    def __init__(self, source_dsn: str, target_dsn: str, *, forward: str, reverse: str) -> None:
        """The two servers and the names of the two paths."""
        self.source_dsn = source_dsn
        self.target_dsn = target_dsn
        self.forward = forward
        self.reverse = reverse

    def _connect(self, dsn: str) -> psycopg.Connection[Any]:
        return psycopg.connect(dsn, autocommit=True)

    def _drop(self, dsn: str, name: str) -> str:
        """Drop a subscription and, with it, its slot on the publishing side."""
        with self._connect(dsn) as conn:
            if not _subscription_exists(conn, name):
                return f"subscription {name} absent"
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(name)))
        return f"subscription {name} dropped with its slot"

    def _subscribe(self, dsn: str, publisher_dsn: str, name: str, slot: str) -> str:
        """Subscribe to ``name`` from an existing slot, without copying any row."""
        with self._connect(dsn) as conn:
            if _subscription_exists(conn, name):
                return f"subscription {name} already there"
            conn.execute(
                sql.SQL(
                    "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH "
                    "(copy_data = false, create_slot = false, slot_name = {})"
                ).format(
                    sql.Identifier(name),
                    sql.Literal(f"{publisher_dsn} application_name={name}"),
                    sql.Identifier(name),
                    sql.Literal(slot),
                )
            )
        return f"subscription {name} reads slot {slot}"

    def stop_forward(self) -> str:
        """Drop the forward subscription (its slot on the source goes with it)."""
        return self._drop(self.target_dsn, self.forward)

    def start_reverse(self, slot: str, lsn: str) -> str:
        """Publish on the target, subscribe on the source from the cutover's slot."""
        with self._connect(self.target_dsn) as conn:
            _ensure_publication(conn, self.reverse)
        detail = self._subscribe(self.source_dsn, self.target_dsn, self.reverse, slot)
        return f"{detail} (from {lsn})"

    def stop_reverse(self) -> str:
        """Drop the reverse subscription (its slot on the target goes with it)."""
        return self._drop(self.source_dsn, self.reverse)

    def start_forward(self, slot: str, lsn: str) -> str:
        """Subscribe the target again, from the fallback's slot on the source."""
        with self._connect(self.source_dsn) as conn:
            _ensure_publication(conn, self.forward)
        detail = self._subscribe(self.target_dsn, self.source_dsn, self.forward, slot)
        return f"{detail} (from {lsn})"
