"""`paymig preflight`: prove a source PostgreSQL is ready for AWS DMS before anything starts.

The design is a pure core and a thin shell:

* :func:`gather_facts` (the shell) reads settings, roles and catalog rows from the source
  with psycopg 3 into a :class:`SourceFacts`;
* the ``check_*`` functions (the core) decide pass or fail from those facts alone, each
  returning a :class:`CheckResult` whose detail says why;
* :func:`run_preflight` ties the two together; the validation Lambda calls it directly.
  With ``check_logins`` it also checks every paymig login on the source by name
  (:mod:`paymig.runtime.login_checks`): each has what it needs and nothing more.

Nothing here writes to the source: every statement is a catalog read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from paymig.config import TableRule
from paymig.errors import PaymigError
from paymig.runtime import login_checks
from paymig.runtime.checks import CheckResult

#: PostgreSQL majors that AWS DMS 3.5 accepts as a source: 9.4-9.6 (as "9.x") and 10-16.
SUPPORTED_MAJORS: tuple[str, ...] = ("9.4", "9.5", "9.6", *(str(v) for v in range(10, 17)))

#: Replication slots and WAL senders one DMS full-load-and-CDC task needs on the source.
SLOTS_NEEDED = 1
WAL_SENDERS_NEEDED = 1

#: Types AWS DMS maps to a LOB (BLOB/CLOB/NCLOB) when reading a PostgreSQL source.
LOB_TYPE_NAMES = frozenset(
    {"text", "citext", "bytea", "json", "jsonb", "xml", "tsvector", "tsquery", "hstore"}
)

#: Default selection when neither tables nor rules are given: the config's default.
DEFAULT_RULES: tuple[TableRule, ...] = (
    TableRule(schema_name="public", table_name="%", action="include"),
)

LOB_MODES = ("none", "limited", "full")


class SourceConnectionError(PaymigError):
    """The source database cannot be reached or refused the connection (exit 2)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PreflightReport:
    """All check results; the source is ready only when every check passed."""

    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class ColumnFacts:
    """One column of a replicated table."""

    name: str
    type_name: str  # as `format_type` renders it, e.g. `character varying(20)`
    base_type: str  # `pg_type.typname` of the type, or of a domain's base type
    category: str  # `pg_type.typcategory` (`A` for arrays)
    kind: str  # `pg_type.typtype` (`c` for composite types)
    typmod: int  # `pg_attribute.atttypmod` (-1 when no length is given)

    @property
    def is_lob(self) -> bool:
        """Whether DMS treats the column as a LOB (BLOB/CLOB/NCLOB)."""
        if self.base_type in LOB_TYPE_NAMES or self.category == "A" or self.kind == "c":
            return True
        # VARCHAR without a length is read as NCLOB.
        return self.base_type == "varchar" and self.typmod < 0


@dataclass(frozen=True)
class TableFacts:
    """What the checks need to know about one table."""

    schema: str
    name: str
    has_primary_key: bool
    can_select: bool
    columns: tuple[ColumnFacts, ...] = ()

    @property
    def qualified(self) -> str:
        """`schema.table`."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class SourceFacts:
    """Everything read from the source, once."""

    server_version_num: int
    wal_level: str
    max_replication_slots: int
    used_replication_slots: int
    max_wal_senders: int
    used_wal_senders: int
    ssl: bool
    role: str
    role_can_replicate: bool
    role_is_superuser: bool
    role_in_rds_replication: bool
    tables: tuple[TableFacts, ...]
    missing_tables: tuple[str, ...] = ()
    selection: str = "the named tables"


# --------------------------------------------------------------------------- pure core


def parse_table_name(text: str) -> tuple[str, str]:
    """Split `schema.table` (or `table`, meaning `public.table`); reject anything else."""
    parts = text.split(".")
    pattern = re.compile(r"^[A-Za-z0-9_$]+$")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(pattern.match(p) for p in parts):
        raise PaymigError(f"--table: {text!r} is not a table name (expected schema.table)")
    return parts[0], parts[1]


def _dms_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a DMS object name, where `%` matches any characters and nothing else is special."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")))


def select_tables(
    candidates: Sequence[tuple[str, str]], rules: Sequence[TableRule]
) -> list[tuple[str, str]]:
    """Return the tables DMS would replicate: matched by an include, by no exclude."""

    def matches(rule: TableRule, schema: str, table: str) -> bool:
        return bool(
            _dms_pattern(rule.schema_name).fullmatch(schema)
            and _dms_pattern(rule.table_name).fullmatch(table)
        )

    chosen = []
    for schema, table in candidates:
        included = any(r.action == "include" and matches(r, schema, table) for r in rules)
        excluded = any(r.action == "exclude" and matches(r, schema, table) for r in rules)
        if included and not excluded:
            chosen.append((schema, table))
    return chosen


def _names(items: Sequence[str], limit: int = 10) -> str:
    """Join names into a readable, bounded list."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def major_version(server_version_num: int) -> str:
    """Render `server_version_num` as a major version: 150004 -> `15`, 90624 -> `9.6`."""
    if server_version_num >= 100000:
        return str(server_version_num // 10000)
    return f"{server_version_num // 10000}.{server_version_num // 100 % 100}"


def check_version(facts: SourceFacts) -> CheckResult:
    """Pass when the server's major version is one DMS supports as a source."""
    major = major_version(facts.server_version_num)
    supported = "9.4-9.6 and 10-16"
    if major in SUPPORTED_MAJORS:
        return CheckResult(
            "version", True, f"PostgreSQL {major}; DMS 3.5 supports {supported} as a source"
        )
    return CheckResult(
        "version", False, f"PostgreSQL {major} is not a DMS 3.5 source (supported: {supported})"
    )


def check_wal_level(facts: SourceFacts) -> CheckResult:
    """Pass when `wal_level = logical` (CDC reads logical decoding)."""
    if facts.wal_level == "logical":
        return CheckResult("wal_level", True, "wal_level = logical")
    return CheckResult(
        "wal_level",
        False,
        f"wal_level = {facts.wal_level}; CDC needs logical (set it and restart the server)",
    )


def check_replication_slots(facts: SourceFacts) -> CheckResult:
    """Pass when a logical replication slot is free for the task."""
    free = facts.max_replication_slots - facts.used_replication_slots
    detail = (
        f"{free} of max_replication_slots = {facts.max_replication_slots} free "
        f"({facts.used_replication_slots} in use); DMS needs {SLOTS_NEEDED}"
    )
    return CheckResult("replication_slots", free >= SLOTS_NEEDED, detail)


def check_wal_senders(facts: SourceFacts) -> CheckResult:
    """Pass when a WAL sender is free to stream the slot's changes."""
    free = facts.max_wal_senders - facts.used_wal_senders
    detail = (
        f"{free} of max_wal_senders = {facts.max_wal_senders} free "
        f"({facts.used_wal_senders} in use); DMS needs {WAL_SENDERS_NEEDED}"
    )
    return CheckResult("wal_senders", free >= WAL_SENDERS_NEEDED, detail)


def check_tables_found(facts: SourceFacts) -> CheckResult:
    """Pass when every named table exists and the selection is not empty."""
    if facts.missing_tables:
        return CheckResult(
            "tables_found", False, f"not found on the source: {_names(facts.missing_tables)}"
        )
    if not facts.tables:
        return CheckResult("tables_found", False, f"{facts.selection} select no table")
    return CheckResult(
        "tables_found", True, f"{len(facts.tables)} tables selected by {facts.selection}"
    )


def check_primary_keys(facts: SourceFacts) -> CheckResult:
    """Pass when every table has a primary key (DMS validation and CDC apply need one)."""
    lacking = [t.qualified for t in facts.tables if not t.has_primary_key]
    if lacking:
        return CheckResult("primary_keys", False, f"no primary key: {_names(lacking)}")
    return CheckResult("primary_keys", True, f"all {len(facts.tables)} tables have a primary key")


def check_lob_columns(facts: SourceFacts, lob_mode: str) -> CheckResult:
    """Pass when no column would be dropped or cut in the chosen LOB mode."""
    lobs = [
        f"{t.qualified}.{c.name} ({c.type_name})"
        for t in facts.tables
        for c in t.columns
        if c.is_lob
    ]
    if lob_mode == "none" and lobs:
        return CheckResult(
            "lob_columns",
            False,
            f"lob_mode none would drop these LOB columns: {_names(lobs)}; use limited or full",
        )
    if lob_mode == "limited" and lobs:
        return CheckResult(
            "lob_columns",
            True,
            f"{len(lobs)} LOB columns copied up to lob_max_size_kb; the task stops on a "
            "larger value (fail_tasks_on_lob_truncation)",
        )
    return CheckResult("lob_columns", True, f"{len(lobs)} LOB columns; lob_mode {lob_mode}")


def check_tls(facts: SourceFacts) -> CheckResult:
    """Pass when the server offers TLS (DMS connects with `ssl_mode = verify-full`)."""
    if facts.ssl:
        return CheckResult("tls", True, "ssl = on")
    return CheckResult("tls", False, "ssl = off; DMS connects with verify-full and would fail")


def check_replication_privilege(facts: SourceFacts) -> CheckResult:
    """Pass when the role may create and read a logical replication slot."""
    if facts.role_is_superuser:
        return CheckResult("replication_privilege", True, f"{facts.role} is a superuser")
    if facts.role_can_replicate:
        return CheckResult("replication_privilege", True, f"{facts.role} has REPLICATION")
    if facts.role_in_rds_replication:
        return CheckResult(
            "replication_privilege", True, f"{facts.role} is a member of rds_replication"
        )
    return CheckResult(
        "replication_privilege",
        False,
        f"{facts.role} has neither REPLICATION nor rds_replication membership",
    )


def check_select_privilege(facts: SourceFacts) -> CheckResult:
    """Pass when the role can read every replicated table."""
    denied = [t.qualified for t in facts.tables if not t.can_select]
    if denied:
        return CheckResult(
            "select_privilege", False, f"{facts.role} cannot SELECT: {_names(denied)}"
        )
    return CheckResult(
        "select_privilege", True, f"{facts.role} can SELECT all {len(facts.tables)} tables"
    )


def evaluate(facts: SourceFacts, lob_mode: str) -> PreflightReport:
    """Run every check over the facts, in a fixed order."""
    if lob_mode not in LOB_MODES:
        raise PaymigError(f"lob_mode: {lob_mode!r} is not one of {', '.join(LOB_MODES)}")
    simple: list[Callable[[SourceFacts], CheckResult]] = [
        check_version,
        check_wal_level,
        check_replication_slots,
        check_wal_senders,
        check_tls,
        check_replication_privilege,
        check_tables_found,
        check_primary_keys,
        check_select_privilege,
    ]
    results = [check(facts) for check in simple]
    results.append(check_lob_columns(facts, lob_mode))
    return PreflightReport(results)


# --------------------------------------------------------------------------- shell

_SETTINGS_SQL = """
SELECT current_setting('server_version_num')::int,
       current_setting('wal_level'),
       current_setting('max_replication_slots')::int,
       (SELECT count(*) FROM pg_replication_slots)::int,
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_replication)::int,
       current_setting('ssl') = 'on',
       r.rolname, r.rolreplication, r.rolsuper,
       EXISTS (SELECT 1 FROM pg_roles g
               WHERE g.rolname = 'rds_replication' AND pg_has_role(r.oid, g.oid, 'member'))
FROM pg_roles r WHERE r.rolname = current_user
"""

_TABLES_SQL = """
SELECT n.nspname, c.relname, c.oid::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 1, 2
"""

_TABLE_FACTS_SQL = """
SELECT c.oid::int,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       has_table_privilege(c.oid, 'SELECT')
FROM pg_class c WHERE c.oid = ANY(%s::oid[])
"""

_COLUMNS_SQL = """
SELECT a.attrelid::int, a.attname, format_type(a.atttypid, a.atttypmod),
       b.typname, b.typcategory, b.typtype, a.atttypmod
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""


def gather_facts(
    conn: psycopg.Connection[Any],
    tables: Sequence[str] | None,
    rules: Sequence[TableRule],
) -> SourceFacts:
    """Read everything the checks need from an open connection (catalog reads only)."""
    settings = conn.execute(_SETTINGS_SQL).fetchone()
    if settings is None:  # pragma: no cover - current_user always has a pg_roles row
        raise SourceConnectionError("source: cannot read the connecting role")
    catalog = {(s, t): oid for s, t, oid in conn.execute(_TABLES_SQL).fetchall()}
    if tables:
        wanted = [parse_table_name(t) for t in tables]
        missing = tuple(f"{s}.{t}" for s, t in wanted if (s, t) not in catalog)
        chosen = [(s, t) for s, t in dict.fromkeys(wanted) if (s, t) in catalog]
        selection = "the named tables"
    else:
        missing = ()
        chosen = select_tables(list(catalog), rules)
        selection = "table_rules " + ", ".join(
            f"{r.action} {r.schema_name}.{r.table_name}" for r in rules
        )
    oids = [catalog[key] for key in chosen]
    flags = {oid: (pk, sel) for oid, pk, sel in conn.execute(_TABLE_FACTS_SQL, (oids,))}
    columns: dict[int, list[ColumnFacts]] = {}
    for oid, name, type_name, base, category, kind, typmod in conn.execute(_COLUMNS_SQL, (oids,)):
        columns.setdefault(oid, []).append(
            ColumnFacts(name, type_name, base, category, kind, typmod)
        )
    table_facts = tuple(
        TableFacts(
            schema,
            name,
            has_primary_key=flags[catalog[(schema, name)]][0],
            can_select=flags[catalog[(schema, name)]][1],
            columns=tuple(columns.get(catalog[(schema, name)], [])),
        )
        for schema, name in chosen
    )
    (version, wal_level, max_slots, used_slots, max_senders, used_senders, ssl, role,
     can_replicate, superuser, rds_replication) = settings  # fmt: skip
    return SourceFacts(
        server_version_num=version,
        wal_level=wal_level,
        max_replication_slots=max_slots,
        used_replication_slots=used_slots,
        max_wal_senders=max_senders,
        used_wal_senders=used_senders,
        ssl=ssl,
        role=role,
        role_can_replicate=can_replicate,
        role_is_superuser=superuser,
        role_in_rds_replication=rds_replication,
        tables=table_facts,
        missing_tables=missing,
        selection=selection,
    )


def _connection_error(exc: psycopg.Error) -> SourceConnectionError:
    """One line naming the problem; libpq never echoes the password."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return SourceConnectionError(
        f"--source-dsn: cannot connect to the source: {lines[-1] if lines else type(exc).__name__}"
    )


def run_preflight(
    source_dsn: str,
    tables: list[str] | None,
    lob_mode: str,
    *,
    table_rules: Sequence[TableRule] | None = None,
    connect_timeout: int = 10,
    check_logins: bool = False,
) -> PreflightReport:
    """Connect to the source, gather facts and evaluate every check.

    `tables` (``schema.table``) takes precedence; otherwise the tables are those
    `table_rules` select (default: every table in `public`). `check_logins` adds one
    check per login role of :mod:`paymig.logins`, over the payment tables and the
    selected ones.
    """
    if lob_mode not in LOB_MODES:
        raise PaymigError(f"lob_mode: {lob_mode!r} is not one of {', '.join(LOB_MODES)}")
    if tables:
        for name in tables:
            parse_table_name(name)
    try:
        with psycopg.connect(source_dsn, autocommit=True, connect_timeout=connect_timeout) as conn:
            facts = gather_facts(conn, tables, list(table_rules or DEFAULT_RULES))
            selected = [(t.schema, t.name) for t in facts.tables]
            logins = login_checks.check_logins(conn, "source", selected) if check_logins else []
    except psycopg.ProgrammingError as exc:
        # A malformed DSN is a usage error too.
        raise _connection_error(exc) from None
    except psycopg.OperationalError as exc:
        raise _connection_error(exc) from None
    return PreflightReport(evaluate(facts, lob_mode).checks + logins)


__all__ = [
    "CheckResult",
    "PreflightReport",
    "SourceConnectionError",
    "SourceFacts",
    "TableFacts",
    "evaluate",
    "gather_facts",
    "run_preflight",
    "select_tables",
]
