"""Add the payments model's foreign keys after the full load, and verify the schema.

The Aurora setup (:mod:`paymig.runtime.db_setup`) creates the tables without foreign
keys so DMS can load them in parallel. :func:`finalize_constraints` adds them in two
steps, each its own transaction:

1. ``ADD CONSTRAINT ... NOT VALID``: a catalog change, enforced from then on for every
   new or changed row, without reading existing rows. It takes a ``SHARE ROW EXCLUSIVE``
   lock on the child and parent table for an instant, under a ``lock_timeout`` so it
   never queues behind a long transaction with every writer queued behind it.
2. ``VALIDATE CONSTRAINT``: scans the existing rows under ``SHARE UPDATE EXCLUSIVE``,
   which does not block inserts, updates or deletes.

When to run it: after the full load, once no DMS change can arrive out of order. With
``BatchApplyEnabled`` DMS applies CDC changes per table, so a refund may be applied
before its payment; a foreign key present during CDC can then stop the task (the error
policies stop it rather than lose the row). The safe point is the write cutover, when
the source no longer takes writes and CDC has drained: step 1 is instant there, and
step 2 can run while the API already writes to Aurora.

:func:`verify_schema` compares the catalog with the model (:data:`CONSTRAINTS`,
:data:`INDEXES`) and names exactly what is missing, not valid, or orphaned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.pq import TransactionStatus

from paymig.errors import PaymigError
from paymig.payments_schema import (
    CONSTRAINTS,
    FOREIGN_KEYS,
    INDEXES,
    SCHEMA,
    TABLE_CONSTRAINTS,
    ForeignKey,
)

#: How many orphaned rows a report lists per foreign key.
ORPHAN_LIMIT = 20

#: How long adding a foreign key may wait for its lock before giving up.
LOCK_TIMEOUT = "5s"


class ConstraintError(PaymigError):
    """A foreign key cannot be added or validated (exit 1: the data must be fixed)."""

    exit_code = 1


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Orphans:
    """Rows of a child table whose parent row does not exist."""

    constraint: str
    table: str
    column: str
    rows: tuple[tuple[str, str], ...]  # (child id, missing parent id), ordered by id
    more: bool  # more rows exist than are listed

    def describe(self) -> str:
        """Render as one readable line."""
        listed = ", ".join(f"id={child} {self.column}={parent}" for child, parent in self.rows)
        return f"{self.constraint}: {self.table} rows without a parent: {listed}" + (
            f" (and more; first {len(self.rows)} shown)" if self.more else ""
        )


@dataclass(frozen=True)
class SchemaReport:
    """What the schema lacks against the model."""

    missing_constraints: tuple[str, ...]  # described constraints not found as expected
    not_valid_constraints: tuple[str, ...]  # found but `NOT VALID`
    missing_indexes: tuple[str, ...]
    invalid_indexes: tuple[str, ...]  # e.g. left by a failed CREATE INDEX CONCURRENTLY
    orphans: tuple[Orphans, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing is missing, invalid or orphaned."""
        return not (
            self.missing_constraints
            or self.not_valid_constraints
            or self.missing_indexes
            or self.invalid_indexes
            or self.orphans
        )

    def problems(self) -> list[str]:
        """Every finding as one line, in a fixed order."""
        lines = [f"missing constraint {c}" for c in self.missing_constraints]
        lines += [f"constraint {c} is NOT VALID" for c in self.not_valid_constraints]
        lines += [f"missing index {i}" for i in self.missing_indexes]
        lines += [f"index {i} is not valid" for i in self.invalid_indexes]
        lines += [o.describe() for o in self.orphans]
        return lines


# --------------------------------------------------------------------------- catalog

_CONSTRAINTS_SQL = """
SELECT c.conname, t.relname, c.contype::text, c.convalidated,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.n)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace s ON s.oid = t.relnamespace
WHERE s.nspname = %s AND t.relname = ANY(%s)
"""

_INDEXES_SQL = """
SELECT i.relname, t.relname, x.indisvalid
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace s ON s.oid = t.relnamespace
WHERE s.nspname = %s AND t.relname = ANY(%s)
"""

#: (name, table, kind, columns) -> validated, as found in the catalog.
CatalogConstraints = dict[tuple[str, str, str, tuple[str, ...]], bool]


def read_constraints(conn: psycopg.Connection[Any]) -> CatalogConstraints:
    """Every constraint on the model's tables, keyed by (name, table, kind, columns)."""
    tables = sorted({c.table for c in CONSTRAINTS})
    rows = conn.execute(_CONSTRAINTS_SQL, (SCHEMA, tables)).fetchall()
    return {(name, table, kind, tuple(cols)): valid for name, table, kind, valid, cols in rows}


def _orphans(conn: psycopg.Connection[Any], fk: ForeignKey, limit: int) -> Orphans | None:
    """The child rows of `fk` that reference no parent, at most `limit` of them."""
    query = sql.SQL(
        "SELECT c.id::text, c.{col}::text FROM {schema}.{child} c "
        "WHERE c.{col} IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM {schema}.{parent} p WHERE p.{pcol} = c.{col}) "
        "ORDER BY c.id LIMIT %s"
    ).format(
        col=sql.Identifier(fk.column),
        schema=sql.Identifier(SCHEMA),
        child=sql.Identifier(fk.table),
        parent=sql.Identifier(fk.parent),
        pcol=sql.Identifier(fk.parent_column),
    )
    rows = conn.execute(query, (limit + 1,)).fetchall()
    if not rows:
        return None
    return Orphans(
        fk.name, fk.table, fk.column, tuple((r[0], r[1]) for r in rows[:limit]), len(rows) > limit
    )


def compare_constraints(
    found: CatalogConstraints, *, foreign_keys: bool = True
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(missing, not valid) expected constraints, described, in model order."""
    expected = CONSTRAINTS if foreign_keys else TABLE_CONSTRAINTS
    missing, not_valid = [], []
    for constraint in expected:
        key = (constraint.name, constraint.table, constraint.kind, constraint.columns)
        if key not in found:
            missing.append(constraint.describe())
        elif not found[key]:
            not_valid.append(constraint.describe())
    return tuple(missing), tuple(not_valid)


def verify_schema(
    conn: psycopg.Connection[Any], *, foreign_keys: bool = True, orphan_limit: int = ORPHAN_LIMIT
) -> SchemaReport:
    """Compare the database with the model; read-only.

    `foreign_keys=False` checks the pre-load shape (no foreign keys expected). Orphans
    are looked for either way: before :func:`finalize_constraints` they are the rows
    that would make its validation fail.
    """
    missing, not_valid = compare_constraints(read_constraints(conn), foreign_keys=foreign_keys)
    tables = sorted({table for _, table in INDEXES})
    indexes = {(n, t): valid for n, t, valid in conn.execute(_INDEXES_SQL, (SCHEMA, tables))}
    missing_indexes = tuple(f"{n} on {t}" for n, t in INDEXES if (n, t) not in indexes)
    invalid = tuple(sorted(f"{n} on {t}" for (n, t), valid in indexes.items() if not valid))
    orphans = tuple(o for fk in FOREIGN_KEYS if (o := _orphans(conn, fk, orphan_limit)))
    return SchemaReport(missing, not_valid, missing_indexes, invalid, orphans)


# --------------------------------------------------------------------------- finalize


@dataclass(frozen=True)
class FinalizeReport:
    """What :func:`finalize_constraints` did to each foreign key."""

    added: tuple[str, ...]
    validated: tuple[str, ...]
    already_valid: tuple[str, ...]


def _primary(exc: psycopg.Error) -> str:
    return (exc.diag.message_primary if exc.diag else None) or type(exc).__name__


def _add_not_valid(conn: psycopg.Connection[Any], fk: ForeignKey, lock_timeout: str) -> None:
    """Add `fk` as NOT VALID in its own short transaction, under a lock timeout."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)))
            conn.execute(fk.add_not_valid_sql().encode())
    except errors.LockNotAvailable:
        raise ConstraintError(
            f"{fk.name}: could not lock {fk.table} and {fk.parent} within {lock_timeout} "
            "(a long transaction holds them); nothing changed, run it again"
        ) from None
    except psycopg.Error as exc:
        raise ConstraintError(f"{fk.name}: cannot add it: {_primary(exc)}") from None


def _validate(conn: psycopg.Connection[Any], fk: ForeignKey, orphan_limit: int) -> None:
    """Validate `fk`; on orphaned rows, name them (the constraint stays NOT VALID)."""
    try:
        with conn.transaction():
            conn.execute(fk.validate_sql().encode())
    except errors.ForeignKeyViolation:
        found = _orphans(conn, fk, orphan_limit)
        detail = found.describe() if found else f"{fk.name}: rows without a parent"
        raise ConstraintError(
            f"{detail}; {fk.name} stays NOT VALID (new rows are checked)"
        ) from None


def finalize_constraints(
    conn: psycopg.Connection[Any],
    *,
    foreign_keys: Sequence[ForeignKey] = FOREIGN_KEYS,
    orphan_limit: int = ORPHAN_LIMIT,
    lock_timeout: str = LOCK_TIMEOUT,
) -> FinalizeReport:
    """Add and validate the model's foreign keys; safe to run again (see module docstring).

    `conn` must not be inside a transaction: each step commits on its own so the brief
    lock of the first is released before the long scan of the second.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ConstraintError("finalize: the connection is inside a transaction; each step "
                              "must commit on its own")  # fmt: skip
    with conn.transaction():
        found = read_constraints(conn)
    added, validated, already = [], [], []
    for fk in foreign_keys:
        key = (fk.name, fk.table, "f", (fk.column,))
        if found.get(key) is True:
            already.append(fk.name)
            continue
        if key not in found:
            _add_not_valid(conn, fk, lock_timeout)
            added.append(fk.name)
        _validate(conn, fk, orphan_limit)
        validated.append(fk.name)
    return FinalizeReport(tuple(added), tuple(validated), tuple(already))


__all__ = [
    "ConstraintError",
    "FinalizeReport",
    "Orphans",
    "SchemaReport",
    "compare_constraints",
    "finalize_constraints",
    "verify_schema",
]
