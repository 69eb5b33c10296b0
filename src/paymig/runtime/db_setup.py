"""Set up the logins and the payments schema on Aurora; render the DBA's SQL for the source.

Both are planned from :mod:`paymig.logins` as lists of SQL statements (the pure core);
:func:`setup_aurora` runs the plan in one transaction as the RDS master user (the thin
shell), and :func:`source_setup_script` renders the same roles and grants as a script
the on-prem DBA reads and runs, because nothing of paymig's may act there.

What the Aurora setup does, idempotently (run it again and it converges: a privilege or
membership granted by hand since is revoked, a role's attributes are reset):

1. ``CREATE EXTENSION IF NOT EXISTS pgaudit`` (skipped only when the caller says the
   server is not Aurora: a local stand-in has no pgaudit) and ``pgaudit.log = all`` for
   the master user (:data:`paymig.logins.MASTER_PGAUDIT_LOG`, why is written there).
2. ``PUBLIC`` loses every database privilege and ``CREATE`` on the payments schema: each
   login gets ``CONNECT`` explicitly, and nothing it was not given.
3. The payments schema *without foreign keys* (``TABLES_DDL``), and the DMS schemas.
4. Each login's group role and both users (``LOGIN``, the password as a SCRAM verifier
   computed on the client, so no plaintext password crosses the wire or reaches a log),
   then the grants, each preceded by a ``REVOKE ALL`` from the group.

Why the foreign keys come later
-------------------------------
DMS loads tables in parallel and in no guaranteed order, and PostgreSQL checks a foreign
key per row with a trigger, so a child row loaded before its parent fails the load. The
DMS documentation's remedy is ``session_replication_role = replica`` for the DMS
session, which disables those triggers; on Aurora setting it needs ``rds_superuser``,
which would make the DMS login an administrator of the cluster holding every payment.
Instead the tables are created without foreign keys (primary keys, the unique
idempotency constraint and the checks are there from the start: they are what stop a
duplicate charge or a negative amount), and :func:`paymig.runtime.constraints.finalize_constraints`
adds the foreign keys afterwards. The DMS login stays a plain writer of four privileges.

Control tables and the pair
---------------------------
DMS creates its control tables as the user it logs in as. After a rotation the *other*
user of the pair logs in and must still write them, so default privileges give the group
``SELECT, INSERT, UPDATE, DELETE, TRUNCATE`` on every table either user creates in its
DMS schema. ``ALTER DEFAULT PRIVILEGES FOR ROLE`` needs membership of that role, which
the (non-superuser) RDS master gets for the statement and gives back at once.

Where DMS's documented needs were not followed: no ``CREATE`` on the database (the
control schema is created here) and no ``TRUNCATE`` on the payment tables (the task uses
``TargetTablePrepMode = DO_NOTHING`` and fails on a source truncation instead of
replaying it; see :mod:`paymig.infra.dms_settings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from paymig.errors import PaymigError
from paymig.logins import (
    CONTROL_SCHEMA,
    DMS_OWN_TABLE_PRIVILEGES,
    HEARTBEAT_SCHEMA,
    MASTER_PGAUDIT_LOG,
    PAYMENT_TABLES,
    PAYMENTS_SCHEMA,
    Login,
    Server,
    logins_for,
    user_names,
)
from paymig.payments_schema import TABLES_DDL, ddl_statements
from paymig.runtime.checks import CheckResult
from paymig.runtime.login_checks import check_logins

#: Schemas DMS creates its own tables in (created by the setup, owned by its runner).
DMS_SCHEMAS: tuple[str, ...] = (CONTROL_SCHEMA, HEARTBEAT_SCHEMA)

#: One SQL statement of a plan.
Statement = sql.SQL | sql.Composed

_SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCRAM_VERIFIER = re.compile(
    r"^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$"
)


class DbSetupError(PaymigError):
    """The setup cannot run: a missing password, a refused statement, a bad name."""


# --------------------------------------------------------------------------- names


def name(identifier: str) -> sql.Composable:
    """A role or schema name from :mod:`paymig.logins`, unquoted for readable SQL.

    Only plain lower-case names are accepted (a test keeps them clear of SQL keywords);
    anything else is a programming error, never user input.
    """
    if not _SIMPLE_NAME.match(identifier):
        raise DbSetupError(f"{identifier!r}: not a plain lower-case SQL name")
    return sql.SQL(identifier)


def _names(identifiers: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join([name(i) for i in identifiers])


def _words(words: Iterable[str]) -> sql.Composable:
    """Privilege keywords (from :mod:`paymig.logins`), space- or comma-joined by caller."""
    return sql.SQL(", ").join([sql.SQL(w) for w in words])


def _table(schema: str, table: str) -> sql.Composable:
    return sql.SQL("{}.{}").format(name(schema), name(table))


# --------------------------------------------------------------------------- roles


#: Attributes only a superuser may change on PostgreSQL 14/15, even to turn them off:
#: `ALTER ROLE` by the RDS master (not a superuser) must leave them unsaid.
SUPERUSER_ONLY_ATTRIBUTES: tuple[str, ...] = ("SUPERUSER", "REPLICATION", "BYPASSRLS")


def _attributes(words: Sequence[str], *, superuser: bool) -> sql.Composable:
    kept = [w for w in words if superuser or w.removeprefix("NO") not in SUPERUSER_ONLY_ATTRIBUTES]
    return sql.SQL(" ".join(kept))


def group_attributes(*, superuser: bool = True) -> sql.Composable:
    """A group role: no login and no special power."""
    words = ["NOLOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION",
             "NOBYPASSRLS"]  # fmt: skip
    return _attributes(words, superuser=superuser)


def expected_special_attributes(login: Login) -> frozenset[str]:
    """Which superuser-only attributes the users of `login` must have."""
    return frozenset({"REPLICATION"} if login.replication else set())


def user_attributes(login: Login, *, superuser: bool = True) -> sql.Composable:
    """Every attribute of a login user, spelled out so both users of a pair match.

    `superuser=False` leaves out the superuser-only ones (see SUPERUSER_ONLY_ATTRIBUTES).
    """
    words = [
        "LOGIN",
        "NOSUPERUSER",
        "NOCREATEDB",
        "CREATEROLE" if login.createrole else "NOCREATEROLE",
        # The rotation admin is a member of nothing; NOINHERIT keeps it that way in
        # effect even if it grants itself a role (see paymig.logins).
        "INHERIT" if login.paired else "NOINHERIT",
        "REPLICATION" if login.replication else "NOREPLICATION",
        "NOBYPASSRLS",
    ]
    return _attributes(words, superuser=superuser)


def _password(user: str, verifier: str | None) -> sql.Composable:
    if verifier is None:
        return sql.SQL("")
    if not _SCRAM_VERIFIER.match(verifier):
        # Never echo the value: it may be a plaintext password passed by mistake.
        raise DbSetupError(f"passwords: the value for {user} is not a SCRAM-SHA-256 verifier")
    return sql.SQL(" PASSWORD {}").format(sql.Literal(verifier))


def create_user(login: Login, user: str, verifier: str | None) -> sql.Composed:
    """``CREATE ROLE`` for one user of a login, with every attribute spelled out.

    Without a verifier the user has no password until one is set (the DBA's way).
    """
    return sql.SQL("CREATE ROLE {} {}{}").format(
        name(user), user_attributes(login), _password(user, verifier)
    )


def alter_user(
    login: Login, user: str, verifier: str | None, *, superuser: bool = True
) -> sql.Composed:
    """``ALTER ROLE`` resetting the attributes; the password only when one is given."""
    return sql.SQL("ALTER ROLE {} {}{}").format(
        name(user), user_attributes(login, superuser=superuser), _password(user, verifier)
    )


def membership_statements(login: Login) -> list[sql.Composed]:
    """Grant each user its group and the roles it must belong to directly."""
    roles = ([login.group] if login.group else []) + list(login.member_of)
    return [sql.SQL("GRANT {} TO {}").format(name(role), _names(login.users)) for role in roles]


# --------------------------------------------------------------------------- grants


def _grantee(login: Login) -> str:
    """Who holds the privileges: the group, or the single user of an admin login."""
    return login.group or login.base


def grant_statements(login: Login, database: str) -> list[sql.Composed]:
    """Every privilege `login` needs, granted to its group (the whole list, nothing else)."""
    to = name(_grantee(login))
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), to)
    ]
    statements += [
        sql.SQL("GRANT USAGE{} ON SCHEMA {} TO {}").format(
            sql.SQL(", CREATE") if schema == login.own_schema else sql.SQL(""), name(schema), to
        )
        for schema in login.schemas()
    ]
    if login.table_privileges:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                _words(login.table_privileges),
                sql.SQL(", ").join([_table(s, t) for s, t in PAYMENT_TABLES]),
                to,
            )
        )
    if login.sequence_privileges:
        statements.append(
            sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                _words(login.sequence_privileges), name(PAYMENTS_SCHEMA), to
            )
        )
    return statements


def revoke_statements(login: Login, database: str) -> list[sql.Composed]:
    """Take away every privilege the group may hold where the grants give them."""
    grantee = name(_grantee(login))
    statements = [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), grantee)
    ]
    for schema in (PAYMENTS_SCHEMA, *DMS_SCHEMAS):
        statements.append(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(name(schema), grantee))
    # Tables DMS created in its own schemas keep their default privileges.
    for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
        statements.append(
            sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(
                sql.SQL(kind), name(PAYMENTS_SCHEMA), grantee
            )
        )
    return statements


def default_privilege_statements(login: Login, *, borrow_membership: bool) -> list[sql.Composed]:
    """Give the group what either user creates in its DMS schema.

    `borrow_membership`: the runner is not a superuser (the RDS master) and must be a
    member of each user for ``ALTER DEFAULT PRIVILEGES FOR ROLE``; it is made one for the
    statement and removed right after.
    """
    if login.own_schema is None or login.group is None:
        return []
    statements: list[sql.Composed] = []
    for user in login.users:
        if borrow_membership:
            statements.append(sql.SQL("GRANT {} TO CURRENT_USER").format(name(user)))
        for kind, privileges in (
            ("TABLES", DMS_OWN_TABLE_PRIVILEGES),
            ("SEQUENCES", ("USAGE", "SELECT", "UPDATE")),
        ):
            statements.append(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} TO {}"
                ).format(
                    name(user),
                    name(login.own_schema),
                    _words(privileges),
                    sql.SQL(kind),
                    name(login.group),
                )
            )
        if borrow_membership:
            statements.append(sql.SQL("REVOKE {} FROM CURRENT_USER").format(name(user)))
    return statements


# --------------------------------------------------------------------------- Aurora plan


@dataclass(frozen=True)
class RoleCatalog:
    """What already exists of a server's login roles.

    `memberships`: the roles each is a direct member of; `members`: each one's direct
    members; `special`: the superuser-only attributes each has.
    """

    existing: frozenset[str] = frozenset()
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    special: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _revoke(role: str, member: str) -> sql.Composed:
    return sql.SQL("REVOKE {} FROM {}").format(name(role), name(member))


def _refuse_special(login: Login, catalog: RoleCatalog, *, superuser: bool) -> None:
    """A runner that is not a superuser cannot remove SUPERUSER or REPLICATION: stop."""
    if superuser:
        return
    for role in login.roles:
        expected = expected_special_attributes(login) if role in login.users else frozenset()
        extra = sorted(catalog.special.get(role, frozenset()) - expected)
        if extra:
            raise DbSetupError(
                f"{role} has {', '.join(extra)}: only a superuser can remove it; "
                "the setup will not run over it"
            )


def _group_statements(
    login: Login, group: str, catalog: RoleCatalog, *, superuser: bool
) -> list[sql.Composed]:
    """Create or reset a group; drop its memberships and any member outside the pair."""
    verb = "ALTER" if group in catalog.existing else "CREATE"
    statements = [
        sql.SQL("{} ROLE {} {}").format(
            sql.SQL(verb),
            name(group),
            group_attributes(superuser=superuser or verb == "CREATE"),
        )
    ]
    statements += [_revoke(role, group) for role in sorted(catalog.memberships.get(group, ()))]
    outsiders = sorted(catalog.members.get(group, frozenset()) - set(login.users))
    statements += [_revoke(group, member) for member in outsiders]
    return statements


def _role_statements(
    login: Login, catalog: RoleCatalog, verifiers: Mapping[str, str], *, superuser: bool
) -> list[sql.Composed]:
    """Create or reset the group and both users; remove memberships nobody granted here."""
    _refuse_special(login, catalog, superuser=superuser)
    statements: list[sql.Composed] = []
    if login.group is not None:
        statements += _group_statements(login, login.group, catalog, superuser=superuser)
    allowed = {login.group, *login.member_of} - {None}
    for user in login.users:
        verifier = verifiers.get(user)
        if user in catalog.existing:
            statements.append(alter_user(login, user, verifier, superuser=superuser))
        elif verifier is None:
            raise DbSetupError(f"passwords: {user} does not exist yet and has no password")
        else:
            statements.append(create_user(login, user, verifier))
        extra = sorted(catalog.memberships.get(user, frozenset()) - allowed)
        statements += [_revoke(role, user) for role in extra]
    statements += membership_statements(login)
    return statements


def plan_aurora_setup(
    database: str,
    catalog: RoleCatalog,
    verifiers: Mapping[str, str],
    *,
    aurora: bool = True,
    superuser: bool = False,
) -> list[Statement]:
    """Every statement of the Aurora setup, in order (see the module docstring).

    `verifiers` maps user names to SCRAM verifiers; a user that exists and has none keeps
    its password (rotation may have changed it). `superuser` says the runner is one (a
    local stand-in), so it needs no borrowed membership for default privileges.
    """
    unknown = sorted(set(verifiers) - set(user_names("aurora")))
    if unknown:
        raise DbSetupError(f"passwords: {', '.join(unknown)} not an Aurora login user")
    plan: list[Statement] = [sql.SQL("SET LOCAL search_path = {}").format(name(PAYMENTS_SCHEMA))]
    if aurora:
        plan.append(sql.SQL("CREATE EXTENSION IF NOT EXISTS pgaudit"))
    plan += [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(name(PAYMENTS_SCHEMA)),
        *(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name(s)) for s in DMS_SCHEMAS),
        *(sql.SQL(s) for s in ddl_statements(TABLES_DDL)),
    ]
    for login in logins_for("aurora"):
        plan += _role_statements(login, catalog, verifiers, superuser=superuser)
        plan += revoke_statements(login, database)
        plan += grant_statements(login, database)
        plan += default_privilege_statements(login, borrow_membership=not superuser)
    if aurora:
        plan.append(
            sql.SQL("ALTER ROLE CURRENT_USER SET pgaudit.log = {}").format(
                sql.Literal(MASTER_PGAUDIT_LOG)
            )
        )
    return plan


# --------------------------------------------------------------------------- Aurora shell

_CATALOG_SQL = """
SELECT r.rolname,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1),
       ARRAY(SELECT u.rolname FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
             WHERE m.roleid = r.oid ORDER BY 1),
       array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                          CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                          CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL)
FROM pg_roles r
WHERE r.rolname = ANY(%s)
"""


def read_role_catalog(conn: psycopg.Connection[Any], server: Server) -> RoleCatalog:
    """Which of a server's login roles exist, their memberships, members and powers."""
    names = [role for login in logins_for(server) for role in login.roles]
    rows = conn.execute(_CATALOG_SQL, (names,)).fetchall()
    return RoleCatalog(
        existing=frozenset(row[0] for row in rows),
        memberships={row[0]: frozenset(row[1]) for row in rows},
        members={row[0]: frozenset(row[2]) for row in rows},
        special={row[0]: frozenset(row[3]) for row in rows},
    )


def scram_verifiers(conn: psycopg.Connection[Any], passwords: Mapping[str, str]) -> dict[str, str]:
    """SCRAM-SHA-256 verifiers for `passwords` (user -> password), computed by libpq here."""
    return {
        user: conn.pgconn.encrypt_password(
            password.encode(), user.encode(), b"scram-sha-256"
        ).decode()
        for user, password in passwords.items()
    }


@dataclass(frozen=True)
class SetupReport:
    """What one run of the setup did, and the login checks run right after it."""

    created: tuple[str, ...]
    passwords_set: tuple[str, ...]
    statements: int
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """Whether every login now has exactly what it needs."""
        return all(check.ok for check in self.checks)


def _error_line(exc: psycopg.Error) -> str:
    """The server's primary message only: never the statement, which may hold a verifier."""
    primary = exc.diag.message_primary if exc.diag else None
    return primary or type(exc).__name__


def setup_aurora(
    conn: psycopg.Connection[Any], passwords: Mapping[str, str], *, aurora: bool = True
) -> SetupReport:
    """Run the whole Aurora setup in one transaction (all of it or nothing), then check.

    `passwords` maps login users to their passwords (from Secrets Manager); only their
    SCRAM verifiers are sent. A user that exists keeps its password unless given one.
    `aurora=False` is for a local PostgreSQL stand-in without pgaudit. The report's
    `checks` are :func:`paymig.runtime.login_checks.check_logins` run afterwards.
    """
    row = conn.execute("SELECT current_database(), rolsuper FROM pg_roles "
                       "WHERE rolname = current_user").fetchone()  # fmt: skip
    if row is None:  # pragma: no cover - current_user always has a pg_roles row
        raise DbSetupError("aurora setup: cannot read the connecting role")
    database, superuser = row
    catalog = read_role_catalog(conn, "aurora")
    plan = plan_aurora_setup(
        database, catalog, scram_verifiers(conn, passwords), aurora=aurora, superuser=superuser
    )
    try:
        with conn.transaction():
            for statement in plan:
                conn.execute(statement)
    except psycopg.Error as exc:
        raise DbSetupError(f"aurora setup: {_error_line(exc)}") from None
    created = tuple(
        role
        for login in logins_for("aurora")
        for role in login.roles
        if role not in catalog.existing
    )
    # What the server did is what counts: e.g. a REVOKE from PUBLIC that the server
    # ignores (the runner not owning the schema) shows up here as excess CREATE.
    checks = tuple(check_logins(conn, "aurora"))
    return SetupReport(created, tuple(sorted(passwords)), len(plan), checks)


# --------------------------------------------------------------------------- source SQL


@dataclass(frozen=True)
class SourceScript:
    """The DBA's script for the on-prem source: SQL to run, then passwords to set."""

    database: str
    sql: str  # plain SQL in one transaction (what a test runs)
    password_commands: tuple[str, ...]  # psql `\password <user>`, one per user

    @property
    def text(self) -> str:
        """The whole script as the runbook prints it, for `psql -f` or pasting."""
        return "\n".join(
            [
                "-- paymig logins on the on-prem source. Run as a superuser with psql:",
                f"-- psql -v ON_ERROR_STOP=1 -d {self.database} -f this-file.sql",
                self.sql,
                "",
                "-- Then set each password. psql prompts for it and sends only its SCRAM",
                "-- verifier: the password itself never reaches shell history, the server",
                "-- log or pg_stat_activity. Store each in the login's secret.",
                *self.password_commands,
                "",
            ]
        )


def _source_login_block(login: Login, database: str) -> list[str]:
    """The statements that create one login on the source, as text."""
    lines = [f"-- {login.base}: {login.purpose}"]
    if login.reads_replicated_tables:
        lines.append(
            "-- Any other table the replication selects needs SELECT too: "
            "paymig preflight --check-logins names it."
        )
    if login.createrole:
        lines += [
            "-- CREATEROLE lets it change the users' passwords. On PostgreSQL 14 it also",
            "-- lets it grant itself any non-superuser role: the preflight reports any it joins.",
        ]
    statements: list[sql.Composable] = []
    if login.group is not None:
        statements.append(
            sql.SQL("CREATE ROLE {} {}").format(name(login.group), group_attributes())
        )
    statements += [create_user(login, user, None) for user in login.users]
    statements += membership_statements(login)
    statements += grant_statements(login, database)
    statements += default_privilege_statements(login, borrow_membership=False)
    return lines + [s.as_string(None) + ";" for s in statements]


def source_setup_script(database: str) -> SourceScript:
    """Render the exact SQL the DBA runs on the on-prem source (deterministic).

    The roles get no password: the DBA sets each with psql's password command. The
    rotation admin may then change the pair users' passwords (``CREATEROLE``); nothing
    else is granted to it.
    """
    lines = [
        "BEGIN;",
        "",
        "-- Only owners create objects in the payments schema (PostgreSQL 15's default;",
        "-- on 14 every role may, which would give each login CREATE it must not have).",
        f"REVOKE CREATE ON SCHEMA {PAYMENTS_SCHEMA} FROM PUBLIC;",
        "-- DMS's heartbeat table lives apart from the replicated tables",
        f"-- (source endpoint setting HeartbeatSchema = {HEARTBEAT_SCHEMA}).",
        f"CREATE SCHEMA IF NOT EXISTS {HEARTBEAT_SCHEMA};",
    ]
    for login in logins_for("source"):
        lines += ["", *_source_login_block(login, database)]
    lines += ["", "COMMIT;"]
    users = user_names("source")
    return SourceScript(
        database=database,
        sql="\n".join(lines),
        password_commands=tuple(f"\\password {user}" for user in users),
    )


def plan_text(plan: Sequence[Statement]) -> list[str]:
    """Render a plan as SQL text (for review and tests); verifiers appear as given."""
    return [statement.as_string(None) for statement in plan]


__all__ = [
    "DbSetupError",
    "RoleCatalog",
    "SetupReport",
    "SourceScript",
    "grant_statements",
    "plan_aurora_setup",
    "plan_text",
    "read_role_catalog",
    "setup_aurora",
    "source_setup_script",
]
