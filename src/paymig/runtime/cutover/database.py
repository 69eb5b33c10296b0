"""What a write cutover does inside the two databases, one idempotent operation each.

* **Fence** a database: the write logins (the payment API's group, the legacy
  application's roles) lose INSERT, UPDATE, DELETE and TRUNCATE on the payment tables,
  and their open sessions are ended, so nothing can commit a payment there any more.
  What was revoked is returned, so unfencing restores exactly that. A fence is then
  *proved*: no login other than the exempt ones (the admin running it, the replication
  apply login) may still write any payment table.
* **Markers**: a row written into ``paymig_markers`` after the fence travels through
  replication like any payment; once it is on the other side, everything committed
  before the fence is there too (logical replication applies in commit order). This
  measures "drained" exactly instead of guessing with a timer.
* **Sequences**: neither DMS nor logical replication carries sequence state, so each
  sequence on the new writer is moved past the old writer's value plus a margin.
* **Slots**: the replication slot the way back reads from is created at the cutover
  point, before the first write on the new side, so nothing is missed or replayed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from paymig.errors import PaymigError
from paymig.payments_schema import MARKERS_TABLE, SCHEMA, TABLES

#: The privileges that let a role change a payment.
WRITE_PRIVILEGES: tuple[str, ...] = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


class CutoverDatabaseError(PaymigError):
    """A database step of a cutover or fallback could not be done (names the step)."""


@dataclass(frozen=True)
class Grant:
    """One table privilege held by a role (what a fence revokes and unfence restores)."""

    role: str
    table: str
    privilege: str


def _table(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))


def write_grants(conn: psycopg.Connection[Any], roles: Sequence[str]) -> list[Grant]:
    """The write privileges ``roles`` hold directly on the payment tables."""
    rows = conn.execute(
        "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE table_schema = %s AND table_name = ANY(%s) AND grantee = ANY(%s)"
        " AND privilege_type = ANY(%s) ORDER BY 1, 2, 3",
        (SCHEMA, list(TABLES), list(roles), list(WRITE_PRIVILEGES)),
    ).fetchall()
    return [Grant(role, table, privilege) for role, table, privilege in rows]


def fence(conn: psycopg.Connection[Any], roles: Sequence[str]) -> list[Grant]:
    """Revoke every write privilege of ``roles`` on the payment tables; end their sessions.

    Returns what was revoked (empty when the database was fenced already). Sessions of
    every login that is, or is a member of, one of ``roles`` are terminated, so an
    open transaction cannot commit after the fence.
    """
    existing = _existing_roles(conn, roles)
    with conn.transaction():
        revoked = write_grants(conn, existing)
        for role in existing:
            conn.execute(
                sql.SQL("REVOKE {} ON {} FROM {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in WRITE_PRIVILEGES),
                    sql.SQL(", ").join(_table(t) for t in TABLES),
                    sql.Identifier(role),
                )
            )
    terminate_sessions(conn, existing)
    return revoked


def unfence(conn: psycopg.Connection[Any], grants: Iterable[Grant]) -> None:
    """Give back exactly the privileges a fence revoked (granting twice changes nothing)."""
    with conn.transaction():
        for grant in grants:
            conn.execute(
                sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(grant.privilege), _table(grant.table), sql.Identifier(grant.role)
                )
            )


def _existing_roles(conn: psycopg.Connection[Any], roles: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1", (list(roles),)
    ).fetchall()
    return [row[0] for row in rows]


def terminate_sessions(conn: psycopg.Connection[Any], roles: Sequence[str]) -> int:
    """End every session of a login that is, or is a member of, one of ``roles``.

    Superusers are left alone: ``pg_has_role`` counts them members of every role, and
    their sessions include the replication that must drain what the fence stopped.
    """
    row = conn.execute(
        "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a"
        " JOIN pg_roles u ON u.rolname = a.usename"
        " WHERE a.pid <> pg_backend_pid() AND NOT u.rolsuper AND EXISTS ("
        "   SELECT 1 FROM pg_roles r WHERE r.rolname = ANY(%s)"
        "   AND pg_has_role(u.oid, r.oid, 'MEMBER'))",
        (list(roles),),
    ).fetchone()
    return int(row[0]) if row else 0


def writers(conn: psycopg.Connection[Any], exempt: Sequence[str]) -> list[str]:
    """Login roles, other than superusers and ``exempt``, that may still write a payment."""
    rows = conn.execute(
        "SELECT DISTINCT r.rolname FROM pg_roles r CROSS JOIN unnest(%s::text[]) AS t(name)"
        " CROSS JOIN unnest(%s::text[]) AS p(privilege)"
        " WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname <> ALL(%s::text[])"
        " AND has_table_privilege(r.oid, format('%%I.%%I', %s::text, t.name), p.privilege)"
        " ORDER BY 1",
        (list(TABLES), list(WRITE_PRIVILEGES), list(exempt), SCHEMA),
    ).fetchall()
    return [row[0] for row in rows]


def prove_fenced(conn: psycopg.Connection[Any], exempt: Sequence[str]) -> None:
    """Fail naming every login that could still write after a fence."""
    left = writers(conn, exempt)
    if left:
        raise CutoverDatabaseError(
            f"fence: these logins can still write the payment tables: {', '.join(left)}"
        )


# --------------------------------------------------------------------------- markers


def write_marker(conn: psycopg.Connection[Any], kind: str) -> str:
    """Commit one marker row; return its id (a uuid), to be waited for on the other side."""
    marker = str(uuid.uuid4())
    with conn.transaction():
        conn.execute(
            sql.SQL("INSERT INTO {} (id, kind) VALUES (%s, %s)").format(_table(MARKERS_TABLE)),
            (marker, kind),
        )
    return marker


def marker_arrived(conn: psycopg.Connection[Any], marker: str) -> bool:
    """Whether the marker row has reached this database."""
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(_table(MARKERS_TABLE)), (marker,)
    ).fetchone()
    return row is not None


def wait_for_marker(
    conn: psycopg.Connection[Any],
    marker: str,
    timeout_seconds: float,
    *,
    poll_seconds: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until the marker arrives; return how long it took. Times out with one line."""
    start = clock()
    while not marker_arrived(conn, marker):
        if clock() - start > timeout_seconds:
            raise CutoverDatabaseError(
                f"drain: marker {marker} did not arrive within {timeout_seconds:g} s "
                "(replication stopped or lagging): nothing was switched"
            )
        sleep(poll_seconds)
    return clock() - start


# --------------------------------------------------------------------------- sequences


@dataclass(frozen=True)
class SequenceSync:
    """One sequence moved past the old writer's value."""

    name: str
    source_value: int | None
    target_value: int


def sync_sequences(
    old_writer: psycopg.Connection[Any], new_writer: psycopg.Connection[Any], margin: int
) -> list[SequenceSync]:
    """Set every sequence of the payments schema on the new writer past the old one's.

    A sequence is never moved backwards: its value becomes the larger of its own and
    the old writer's plus ``margin``. A sequence missing on the new writer is an error.
    """
    rows = old_writer.execute(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s ORDER BY 1",
        (SCHEMA,),
    ).fetchall()
    synced: list[SequenceSync] = []
    with new_writer.transaction():
        for name, last_value in rows:
            qualified = f"{SCHEMA}.{name}"
            found = new_writer.execute(
                "SELECT last_value FROM pg_sequences WHERE schemaname = %s AND sequencename = %s",
                (SCHEMA, name),
            ).fetchone()
            if found is None:
                raise CutoverDatabaseError(f"sequences: {qualified} is missing on the new writer")
            wanted = max((last_value or 0) + margin, found[0] or 0)
            new_writer.execute("SELECT setval(%s::regclass, %s, true)", (qualified, wanted))
            synced.append(SequenceSync(qualified, last_value, wanted))
    return synced


# --------------------------------------------------------------------------- slots


def ensure_slot(conn: psycopg.Connection[Any], slot: str, plugin: str) -> str:
    """Create the logical replication slot if absent; return its start LSN.

    An existing slot keeps its position (a resumed cutover reads from where the first
    attempt created it; nothing writes on this side in between).
    """
    row = conn.execute(
        "SELECT confirmed_flush_lsn::text, restart_lsn::text, plugin FROM pg_replication_slots"
        " WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    if row is not None:
        if row[2] != plugin:
            raise CutoverDatabaseError(
                f"slot {slot}: exists with plugin {row[2]}, not {plugin}; drop it first"
            )
        return str(row[0] or row[1])
    created = conn.execute(
        "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, %s)", (slot, plugin)
    ).fetchone()
    if created is None:  # pragma: no cover - the function always returns a row
        raise CutoverDatabaseError(f"slot {slot}: not created")
    return str(created[0])


def drop_slot(conn: psycopg.Connection[Any], slot: str) -> bool:
    """Drop the slot if it exists and nothing reads from it; True if it was dropped."""
    row = conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name = %s AND NOT active",
        (slot,),
    ).fetchone()
    return row is not None


def slots_held_by(conn: psycopg.Connection[Any], users: Sequence[str]) -> list[str]:
    """The replication slots that sessions of ``users`` are reading now (active ones).

    The slot DMS creates for a forward task that names none has a name DMS chooses; while
    the task runs it is the one slot held by a session of the DMS source login, which is
    how a cutover finds exactly it (the catalog records no owner of an inactive slot).
    """
    rows = conn.execute(
        "SELECT s.slot_name FROM pg_replication_slots s"
        " JOIN pg_stat_activity a ON a.pid = s.active_pid"
        " WHERE s.active AND a.usename = ANY(%s) ORDER BY 1",
        (list(users),),
    ).fetchall()
    return [str(row[0]) for row in rows]
