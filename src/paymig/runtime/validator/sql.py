"""SQL the validator sends, built with :mod:`psycopg.sql` so every name is quoted.

Each side builds its statements from its own :class:`TableSpec` (its own column types),
so a key value, exchanged as canonical text, is cast back to that side's key type and
range predicates stay index range scans on the primary key. A row's hash is
``hashtextextended`` of the row text of its columns in *name* order: both sides hash the
same text whatever their column positions are, and the row text keeps NULL (nothing)
apart from an empty string (``""``).

The row hash is ``hashint8extended(hash_record_extended(ROW(<columns in name order>), 0),
0)``. The outer hash matters: the record hash is a linear combination of its column
hashes, so a plain sum of record hashes could not tell two tables apart whose rows
exchanged values of a column (the same values, paired with other keys). A column is
hashed by its value only when both sides have the same type and that type is in
:data:`VALUE_HASH_TYPES`, types whose equality is exactly equality of their canonical
text (integers, booleans, uuids, dates, timestamps, bytea), which skips the costly text
conversion. Every other column is hashed as its text (``::text COLLATE "C"``, compared
byte for byte), so numerics keep their scale, floats and intervals their text form, and
jsonb is compared by value through its canonical text. NULL contributes nothing to the
hash and so differs from an empty string, which hashes like any other value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from paymig.runtime.validator.plan import Key, KeyRange

#: Session settings that fix every text form the hash depends on, on both sides.
SESSION_SETTINGS: dict[str, str] = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "application_name": "paymig-validate",
}

#: A validator query never waits this long (ms) for a lock: it gives way to DDL instead.
LOCK_TIMEOUT_MS = 10_000


def settings_query(statement_timeout_ms: int, idle_in_transaction_ms: int) -> sql.Composed:
    """One round trip that applies :data:`SESSION_SETTINGS` and the load bounds.

    ``statement_timeout`` caps every query; ``idle_in_transaction_session_timeout`` makes
    the server end a snapshot whose client died (a killed Lambda, a lost laptop), so a
    crash never holds vacuum back for longer than that.
    """
    values = {
        **SESSION_SETTINGS,
        "statement_timeout": str(statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(idle_in_transaction_ms),
        "lock_timeout": str(LOCK_TIMEOUT_MS),
    }
    return sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, false)").format(sql.Literal(k), sql.Literal(v))
            for k, v in values.items()
        )
    )


#: Types hashed by value: for these, equal values and equal canonical text coincide.
VALUE_HASH_TYPES = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "boolean",
        "uuid",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "bytea",
    }
)

Query = sql.Composed
Params = list[Any]


@dataclass(frozen=True)
class TableSpec:
    """One side's view of a table: its columns in name order and its primary key."""

    schema: str
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    key_types: tuple[str, ...]
    #: Columns hashed by value rather than by text (see :data:`VALUE_HASH_TYPES`).
    by_value: frozenset[str] = frozenset()

    @property
    def qualified(self) -> str:
        """``schema.name`` as the user wrote it."""
        return f"{self.schema}.{self.name}"

    @property
    def relation(self) -> sql.Identifier:
        """The quoted table name."""
        return sql.Identifier(self.schema, self.name)

    # ------------------------------------------------------------------ fragments

    def _cols(self, names: Sequence[str], alias: str | None = None) -> list[sql.Composable]:
        if alias is None:
            return [sql.Identifier(n) for n in names]
        return [sql.Identifier(alias, n) for n in names]

    def row_hash(self, alias: str | None = None) -> sql.Composed:
        """Build the row hash (see the module docstring)."""
        parts: list[sql.Composable] = []
        for name, column in zip(self.columns, self._cols(self.columns, alias), strict=True):
            if name in self.by_value:
                parts.append(column)
            else:
                parts.append(sql.SQL('CAST({} AS text) COLLATE "C"').format(column))
        return sql.SQL("hashint8extended(hash_record_extended(ROW({}), 0), 0)").format(
            sql.SQL(", ").join(parts)
        )

    def key_text(self, alias: str | None = None) -> sql.Composed:
        """Select the key columns as text, in key order."""
        cols = self._cols(self.key, alias)
        return sql.SQL(", ").join(sql.SQL("{}::text").format(c) for c in cols)

    def key_list(self) -> sql.Composed:
        """List the key columns in key order (for ORDER BY)."""
        return sql.SQL(", ").join(self._cols(self.key))

    def _key_expr(self) -> sql.Composable:
        cols = self._cols(self.key)
        return cols[0] if len(cols) == 1 else sql.SQL("ROW({})").format(sql.SQL(", ").join(cols))

    def _value_expr(self) -> sql.Composable:
        values = [sql.SQL("%s::{}").format(sql.SQL(t)) for t in self.key_types]
        if len(values) == 1:
            return values[0]
        return sql.SQL("ROW({})").format(sql.SQL(", ").join(values))

    def predicate(self, bounds: KeyRange) -> tuple[sql.Composable, Params]:
        """Build a WHERE clause selecting ``bounds`` with a row comparison on the key."""
        parts: list[sql.Composable] = []
        params: Params = []
        if bounds.lower is not None:
            parts.append(sql.SQL("{} >= {}").format(self._key_expr(), self._value_expr()))
            params.extend(bounds.lower)
        if bounds.upper is not None:
            parts.append(sql.SQL("{} < {}").format(self._key_expr(), self._value_expr()))
            params.extend(bounds.upper)
        if not parts:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(parts), params

    # ------------------------------------------------------------------ statements

    def aggregate(self, bounds: KeyRange) -> tuple[Query, Params]:
        """Row count and exact sum of row hashes over a key range."""
        where, params = self.predicate(bounds)
        query = sql.SQL("SELECT count(*), coalesce(sum({}), 0) FROM {} WHERE {}").format(
            self.row_hash(), self.relation, where
        )
        return query, params

    def split(self, bounds: KeyRange, step: int) -> tuple[Query, Params]:
        """Cut a range into pieces of ``step`` rows and aggregate each, in one scan.

        One row per piece, in key order: piece number, row count, hash sum, and the
        text of the piece's first key (its lower edge; the first piece's is the range's).
        """
        where, params = self.predicate(bounds)
        first_keys = sql.SQL(", ").join(
            sql.SQL("(array_agg({}::text) FILTER (WHERE (paymig_rn - 1) %% {} = 0))[1]").format(
                column, sql.Literal(step)
            )
            for column in self._cols(self.key)
        )
        query = sql.SQL(
            "SELECT (paymig_rn - 1) / {step} AS paymig_b, count(*), sum(paymig_h), {first}"
            " FROM (SELECT {cols}, {hash} AS paymig_h,"
            " row_number() OVER (ORDER BY {cols}) AS paymig_rn FROM {rel} WHERE {where}) AS s"
            " GROUP BY paymig_b ORDER BY paymig_b"
        ).format(
            step=sql.Literal(step),
            first=first_keys,
            cols=self.key_list(),
            hash=self.row_hash(),
            rel=self.relation,
            where=where,
        )
        return query, params

    def _bucket_tree(
        self, edges: Sequence[Key], low: int, high: int, params: Params
    ) -> sql.Composable:
        """Piece number of a key known to lie in pieces ``low..high``: a binary search."""
        if low == high:
            return sql.Literal(low)
        middle = (low + high + 1) // 2
        params.extend(edges[middle - 1])
        condition = sql.SQL("{} < {}").format(self._key_expr(), self._value_expr())
        below = self._bucket_tree(edges, low, middle - 1, params)
        above = self._bucket_tree(edges, middle, high, params)
        return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(condition, below, above)

    def buckets(self, bounds: KeyRange, edges: Sequence[Key]) -> tuple[Query, Params]:
        """Count and hash sum of each piece of a range cut at ``edges``, in one scan.

        Piece ``i`` holds the keys below ``edges[i]`` and not below ``edges[i - 1]``; the
        last piece holds the rest. A key's piece is found by binary search over the
        edges. Pieces without rows are absent from the result.
        """
        bucket_params: Params = []
        bucket = self._bucket_tree(edges, 0, len(edges), bucket_params)
        where, params = self.predicate(bounds)
        query = sql.SQL(
            "SELECT paymig_b, count(*), sum(paymig_h) FROM (SELECT {bucket} AS paymig_b,"
            " {hash} AS paymig_h FROM {rel} WHERE {where}) AS s GROUP BY paymig_b"
        ).format(bucket=bucket, hash=self.row_hash(), rel=self.relation, where=where)
        return query, bucket_params + params

    def rows(self, bounds: KeyRange) -> tuple[Query, Params]:
        """Key text and row hash of every row in a range."""
        where, params = self.predicate(bounds)
        query = sql.SQL("SELECT {}, {} FROM {} WHERE {}").format(
            self.key_text(), self.row_hash(), self.relation, where
        )
        return query, params

    def lookup(self, keys: Sequence[Key]) -> tuple[Query, Params]:
        """Key text and row hash of the rows with the given keys (those that exist)."""
        names = [f"k{i}" for i in range(len(self.key))]
        arrays = sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in names)
        match = sql.SQL(" AND ").join(
            sql.SQL("{} = {}::{}").format(
                sql.Identifier("t", col), sql.Identifier("u", n), sql.SQL(t)
            )
            for col, n, t in zip(self.key, names, self.key_types, strict=True)
        )
        query = sql.SQL(
            "SELECT {keys}, {hash} FROM {rel} AS t JOIN unnest({arrays}) AS u({names}) ON {match}"
        ).format(
            keys=self.key_text("t"),
            hash=self.row_hash("t"),
            rel=self.relation,
            arrays=arrays,
            names=sql.SQL(", ").join(sql.Identifier(n) for n in names),
            match=match,
        )
        params: Params = [[key[i] for key in keys] for i in range(len(self.key))]
        return query, params

    def changed_count(self, column: str, since: str) -> tuple[Query, Params]:
        """Count the rows whose ``column`` is at or after ``since`` (an index range scan)."""
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} >= %s::timestamptz").format(
            self.relation, sql.Identifier(column)
        )
        return query, [since]

    def changed_keys(self, column: str, since: str) -> tuple[Query, Params]:
        """Key text of the rows whose ``column`` is at or after ``since``."""
        query = sql.SQL("SELECT {} FROM {} WHERE {} >= %s::timestamptz").format(
            self.key_text(), self.relation, sql.Identifier(column)
        )
        return query, [since]

    def sample(self, method: str, percent: float, thin: int) -> tuple[Query, Params]:
        """Every ``thin``-th key of a ``TABLESAMPLE`` sample, in key order."""
        if method not in ("SYSTEM", "BERNOULLI"):
            raise ValueError(f"unknown sampling method {method!r}")
        columns = sql.SQL(", ").join(self._cols(self.key, "t"))
        query = sql.SQL(
            "SELECT {keys} FROM (SELECT {columns}, row_number() OVER (ORDER BY {columns})"
            " AS paymig_rn FROM {rel} AS t TABLESAMPLE {method} (%s)) AS s"
            " WHERE paymig_rn %% {thin} = 0 ORDER BY paymig_rn"
        ).format(
            keys=self.key_text("s"),
            columns=columns,
            rel=self.relation,
            method=sql.SQL(method),
            thin=sql.Literal(thin),
        )
        return query, [percent]


# --------------------------------------------------------------------------- catalog

TABLE_QUERY = sql.SQL(
    "SELECT c.oid, c.reltuples::bigint, c.relpages,"
    " (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::bigint"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')"
)

COLUMNS_QUERY = sql.SQL(
    "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
    " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attname"
)

PRIMARY_KEY_QUERY = sql.SQL(
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
    " FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = %s AND i.indisprimary"
    " ORDER BY array_position(i.indkey::int2[], a.attnum)"
)

BASE_TABLES_QUERY = sql.SQL(
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    " ORDER BY n.nspname, c.relname"
)

#: A table's size on disk with its indexes and TOAST, in bytes.
TOTAL_SIZE_QUERY = sql.SQL(
    "SELECT pg_total_relation_size(c.oid) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
)

#: Whether a column leads a valid index of the table (so a range on it is an index scan).
LEADING_INDEX_QUERY = sql.SQL(
    "SELECT count(*) FROM pg_index i JOIN pg_attribute a"
    " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
    " WHERE i.indrelid = %s AND a.attname = %s AND i.indisvalid"
)
