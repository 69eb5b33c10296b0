"""Check that every paymig login has exactly what it needs: nothing missing, nothing more.

Any login can read another role's privileges (``pg_roles``, ``pg_auth_members`` and the
``has_*_privilege`` functions are open to all), so one connection checks every login of
a server by the names in :mod:`paymig.logins`. The shell (:func:`gather_login_facts`)
reads them into :class:`LoginFacts`; the core (:func:`evaluate_logins`) compares them
with the model and returns one :class:`~paymig.runtime.checks.CheckResult` per role,
whose detail lists exactly what is missing and what is excess.

What is compared, for each user of a pair (and the single rotation admin):

* attributes: LOGIN; no SUPERUSER, CREATEDB or BYPASSRLS; CREATEROLE and REPLICATION
  exactly as the model says; INHERIT for pair users (their privileges come from the group);
* direct memberships: exactly the group plus the roles the model names;
* the database: CONNECT needed, CREATE excess;
* schemas (payments, DMS's, and those of the tables checked): USAGE where needed, CREATE
  only on the login's own DMS schema. USAGE elsewhere is not flagged: ``PUBLIC`` has it on
  ``public`` by default and it grants nothing on its own;
* every table checked (the payment tables and those the replication selects): each of
  SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER, missing when not held
  on the whole table, excess when held on the table or any of its columns.

And for each group role: NOLOGIN, no special attribute, a member of nothing, and no
member but the two users of its pair. ``TEMPORARY`` on the database is not checked (the
source grants it to ``PUBLIC`` by default, and a temporary table is private to its
session), nor are sequences (the model has none: its keys are uuids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from paymig.logins import (
    CONTROL_SCHEMA,
    HEARTBEAT_SCHEMA,
    MARKERS,
    PAYMENT_TABLES,
    PAYMENTS_SCHEMA,
    TABLE_PRIVILEGES,
    Login,
    Server,
    expected_table_privileges,
    logins_for,
)
from paymig.runtime.checks import CheckResult

Table = tuple[str, str]

#: Privileges PostgreSQL also grants per column (so "any column" can hold them).
COLUMN_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "REFERENCES"})


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class RoleFacts:
    """What one role is and holds, as the catalog says."""

    name: str
    attributes: frozenset[str]  # of LOGIN, SUPERUSER, CREATEROLE, CREATEDB, ...
    member_of: frozenset[str] = frozenset()  # direct memberships
    members: frozenset[str] = frozenset()  # direct members
    database: frozenset[str] = frozenset()  # CONNECT, CREATE held on this database
    schemas: Mapping[str, frozenset[str]] = field(default_factory=dict)  # USAGE, CREATE
    tables: Mapping[Table, frozenset[str]] = field(default_factory=dict)  # whole table
    any_column: Mapping[Table, frozenset[str]] = field(default_factory=dict)  # or a column


@dataclass(frozen=True)
class LoginFacts:
    """Every login role of one server that exists, and the objects checked."""

    server: Server
    database: str
    roles: Mapping[str, RoleFacts]
    tables: tuple[Table, ...]  # existing tables checked
    missing_tables: tuple[Table, ...] = ()  # payment tables that do not exist
    schemas: frozenset[str] = frozenset()  # existing schemas checked


# --------------------------------------------------------------------------- pure core

_ATTRIBUTES = ("LOGIN", "SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")


def expected_attributes(login: Login) -> dict[str, bool]:
    """Each attribute a user of `login` must have (True) or must not have (False)."""
    expected = dict.fromkeys(_ATTRIBUTES, False)
    expected.update(LOGIN=True, CREATEROLE=login.createrole, REPLICATION=login.replication)
    if login.paired:
        expected["INHERIT"] = True
    return expected


def _qualified(table: Table) -> str:
    return f"{table[0]}.{table[1]}"


def _bounded(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _table_findings(
    login: Login, role: RoleFacts, facts: LoginFacts
) -> tuple[list[str], list[str]]:
    """(missing, excess) table privileges, grouped per privilege over the tables."""
    missing: dict[str, list[str]] = {}
    excess: dict[str, list[str]] = {}
    # Cutover privileges: held on every payment table (after `paymig cutover`) or none.
    optional = frozenset(login.cutover_privileges)
    payment = [t for t in facts.tables if t in PAYMENT_TABLES]
    for privilege in sorted(optional, key=TABLE_PRIVILEGES.index):
        holding = [t for t in payment if privilege in role.tables.get(t, frozenset())]
        if 0 < len(holding) < len(payment):
            missing.setdefault(privilege, []).extend(
                _qualified(t) for t in payment if t not in holding
            )
    for table in facts.tables:
        expected = expected_table_privileges(login, table)
        required = expected - optional if table in PAYMENT_TABLES else expected
        whole = role.tables.get(table, frozenset())
        anywhere = role.any_column.get(table, frozenset()) | whole
        for privilege in sorted(required - whole, key=TABLE_PRIVILEGES.index):
            missing.setdefault(privilege, []).append(_qualified(table))
        for privilege in sorted(anywhere - expected, key=TABLE_PRIVILEGES.index):
            excess.setdefault(privilege, []).append(_qualified(table))
    order = TABLE_PRIVILEGES.index
    return (
        [f"{p} on {_bounded(t)}" for p, t in sorted(missing.items(), key=lambda i: order(i[0]))],
        [f"{p} on {_bounded(t)}" for p, t in sorted(excess.items(), key=lambda i: order(i[0]))],
    )


def _schema_findings(
    login: Login, role: RoleFacts, facts: LoginFacts
) -> tuple[list[str], list[str]]:
    """(missing, excess) schema privileges."""
    missing, excess = [], []
    needed = set(login.schemas()) | {
        t[0] for t in facts.tables if expected_table_privileges(login, t)
    }
    for schema in sorted(needed - facts.schemas):
        missing.append(f"schema {schema} (it does not exist)")
    for schema in sorted(facts.schemas):
        held = role.schemas.get(schema, frozenset())
        if schema in needed and "USAGE" not in held:
            missing.append(f"USAGE on schema {schema}")
        wants_create = schema == login.own_schema
        if wants_create and "CREATE" not in held:
            missing.append(f"CREATE on schema {schema}")
        elif not wants_create and "CREATE" in held:
            excess.append(f"CREATE on schema {schema}")
    return missing, excess


def _attribute_findings(
    expected: Mapping[str, bool], held: frozenset[str]
) -> tuple[list[str], list[str]]:
    missing = [a for a, want in expected.items() if want and a not in held]
    excess = [a for a, want in expected.items() if not want and a in held]
    return missing, excess


def _verdict(name: str, missing: list[str], excess: list[str], ok_detail: str) -> CheckResult:
    if not missing and not excess:
        return CheckResult(name, True, ok_detail)
    parts = ([f"missing: {'; '.join(missing)}"] if missing else []) + (
        [f"excess: {'; '.join(excess)}"] if excess else []
    )
    return CheckResult(name, False, " | ".join(parts))


def check_user(login: Login, user: str, facts: LoginFacts) -> CheckResult:
    """Compare one login user with the model."""
    name = f"login {user}"
    role = facts.roles.get(user)
    if role is None:
        return CheckResult(name, False, f"missing: role {user} (it does not exist)")
    missing, excess = _attribute_findings(expected_attributes(login), role.attributes)
    wanted = {r for r in (login.group, *login.member_of) if r}
    missing += [f"membership of {r}" for r in sorted(wanted - role.member_of)]
    excess += [f"membership of {r}" for r in sorted(role.member_of - wanted)]
    if "CONNECT" not in role.database:
        missing.append(f"CONNECT on database {facts.database}")
    if "CREATE" in role.database:
        excess.append(f"CREATE on database {facts.database}")
    if login.table_privileges:
        missing += [f"table {_qualified(t)} (it does not exist)" for t in facts.missing_tables]
    for more, less in (_schema_findings(login, role, facts), _table_findings(login, role, facts)):
        missing += more
        excess += less
    return _verdict(name, missing, excess, f"{user}: exactly what it needs ({_summary(login)})")


def _summary(login: Login) -> str:
    """What a login holds, in a few words (the detail of a passing check)."""
    powers = [
        a
        for a, want in expected_attributes(login).items()
        if want and a not in {"LOGIN", "INHERIT"}
    ]
    held = ", ".join(login.table_privileges)
    parts = [", ".join(powers)] if powers else []
    parts.append(f"{held} on the payment tables" if held else "no table privileges")
    if login.own_schema:
        parts.append(f"CREATE on schema {login.own_schema}")
    wanted = sorted(r for r in (login.group, *login.member_of) if r)
    if wanted:
        parts.append(f"member of {', '.join(wanted)}")
    return "; ".join(parts)


def check_group(login: Login, facts: LoginFacts) -> CheckResult | None:
    """Compare a login's group role with the model (None for a login without one)."""
    if login.group is None:
        return None
    name = f"group {login.group}"
    role = facts.roles.get(login.group)
    if role is None:
        return CheckResult(name, False, f"missing: role {login.group} (it does not exist)")
    expected = dict.fromkeys(_ATTRIBUTES, False)
    missing, excess = _attribute_findings(expected, role.attributes)
    excess += [f"membership of {r}" for r in sorted(role.member_of)]
    excess += [f"member {m}" for m in sorted(role.members - set(login.users))]
    missing += [f"member {u}" for u in login.users if u not in role.members]
    return _verdict(
        name, missing, excess, f"{login.group}: NOLOGIN, holds the privileges of {login.client}"
    )


def evaluate_logins(facts: LoginFacts) -> list[CheckResult]:
    """Check every login of the server: each group, then each user, in model order."""
    results: list[CheckResult] = []
    for login in logins_for(facts.server):
        group = check_group(login, facts)
        if group is not None:
            results.append(group)
        results += [check_user(login, user, facts) for user in login.users]
    return results


# --------------------------------------------------------------------------- shell

_ROLES_SQL = """
SELECT r.rolname,
       array_remove(ARRAY[
         CASE WHEN r.rolcanlogin THEN 'LOGIN' END, CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
         CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
         CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
         CASE WHEN r.rolreplication THEN 'REPLICATION' END,
         CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,
         CASE WHEN r.rolinherit THEN 'INHERIT' END], NULL),
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid),
       ARRAY(SELECT u.rolname FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
             WHERE m.roleid = r.oid),
       array_remove(ARRAY[
         CASE WHEN has_database_privilege(r.oid, current_database(), 'CONNECT')
              THEN 'CONNECT' END,
         CASE WHEN has_database_privilege(r.oid, current_database(), 'CREATE')
              THEN 'CREATE' END], NULL)
FROM pg_roles r WHERE r.rolname = ANY(%s)
"""

_TABLE_OIDS_SQL = """
SELECT n.nspname, c.relname, c.oid::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS w(s, t) ON w.s = n.nspname AND w.t = c.relname
WHERE c.relkind IN ('r', 'p')
"""

_TABLE_PRIVILEGES_SQL = """
SELECT r.rolname, c.oid::int,
       ARRAY(SELECT p FROM unnest(%(privileges)s::text[]) p
             WHERE has_table_privilege(r.oid, c.oid, p)),
       ARRAY(SELECT p FROM unnest(%(columns)s::text[]) p
             WHERE has_any_column_privilege(r.oid, c.oid, p))
FROM pg_roles r CROSS JOIN pg_class c
WHERE r.rolname = ANY(%(roles)s) AND c.oid = ANY(%(oids)s::oid[])
"""

_SCHEMA_PRIVILEGES_SQL = """
SELECT r.rolname, s.nspname,
       array_remove(ARRAY[CASE WHEN has_schema_privilege(r.oid, s.oid, 'USAGE') THEN 'USAGE' END,
                          CASE WHEN has_schema_privilege(r.oid, s.oid, 'CREATE') THEN 'CREATE' END],
                    NULL)
FROM pg_roles r CROSS JOIN pg_namespace s
WHERE r.rolname = ANY(%s) AND s.nspname = ANY(%s)
"""


def _tables_to_check(extra: Sequence[Table]) -> list[Table]:
    """The payment tables, then the other tables given, without duplicates."""
    return list(dict.fromkeys([*PAYMENT_TABLES, MARKERS, *extra]))


def gather_login_facts(
    conn: psycopg.Connection[Any], server: Server, tables: Sequence[Table] = ()
) -> LoginFacts:
    """Read the privileges of every login role of `server` (catalog reads only).

    `tables`: the tables the replication selects; the payment tables are always checked.
    """
    names = [role for login in logins_for(server) for role in login.roles]
    rows = conn.execute(_ROLES_SQL, (names,)).fetchall()
    wanted = _tables_to_check(tables)
    found = {
        (s, t): oid
        for s, t, oid in conn.execute(
            _TABLE_OIDS_SQL, ([s for s, _ in wanted], [t for _, t in wanted])
        )
    }
    checked = [t for t in wanted if t in found]
    by_oid = {oid: table for table, oid in found.items()}
    whole: dict[str, dict[Table, frozenset[str]]] = {}
    column: dict[str, dict[Table, frozenset[str]]] = {}
    params = {"privileges": list(TABLE_PRIVILEGES), "columns": sorted(COLUMN_PRIVILEGES),
              "roles": names, "oids": list(found.values())}  # fmt: skip
    for role, oid, held, any_column in conn.execute(_TABLE_PRIVILEGES_SQL, params):
        whole.setdefault(role, {})[by_oid[oid]] = frozenset(held)
        column.setdefault(role, {})[by_oid[oid]] = frozenset(any_column)
    schema_names = sorted(
        {PAYMENTS_SCHEMA, CONTROL_SCHEMA, HEARTBEAT_SCHEMA} | {s for s, _ in checked}
    )
    schemas: dict[str, dict[str, frozenset[str]]] = {}
    for role, schema, held in conn.execute(_SCHEMA_PRIVILEGES_SQL, (names, schema_names)):
        schemas.setdefault(role, {})[schema] = frozenset(held)
    database = conn.execute("SELECT current_database()").fetchone()
    roles = {
        role: RoleFacts(
            role,
            frozenset(attributes),
            frozenset(member_of),
            frozenset(members),
            frozenset(db),
            schemas.get(role, {}),
            whole.get(role, {}),
            column.get(role, {}),
        )
        for role, attributes, member_of, members, db in rows
    }
    existing_schemas = {
        row[0]
        for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (schema_names,)
        )
    }
    return LoginFacts(
        server=server,
        database=str(database[0]) if database else "",
        roles=roles,
        tables=tuple(checked),
        missing_tables=tuple(t for t in PAYMENT_TABLES if t not in found),
        schemas=frozenset(existing_schemas),
    )


def check_logins(
    conn: psycopg.Connection[Any], server: Server, tables: Sequence[Table] = ()
) -> list[CheckResult]:
    """Gather and evaluate: one result per group and per user of `server`'s logins."""
    return evaluate_logins(gather_login_facts(conn, server, tables))


__all__ = [
    "LoginFacts",
    "RoleFacts",
    "check_group",
    "check_logins",
    "check_user",
    "evaluate_logins",
    "gather_login_facts",
]
