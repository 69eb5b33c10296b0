"""Set up the logins and the payments schema on Aurora, as the RDS master user.

:func:`plan_aurora_setup` (the pure core) plans every statement from :mod:`paymig.logins`
with the builders of :mod:`paymig.runtime.role_sql`; :func:`setup_aurora` (the thin
shell) runs the plan in one transaction and checks the logins afterwards. The same
roles and grants for the on-prem source, where only the DBA acts, are rendered by
:mod:`paymig.runtime.source_sql`.

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
5. Never the API's write grants on the payment tables (``cutover_privileges`` in
   :mod:`paymig.logins`): only `paymig cutover`'s unfence gives them, and a fallback's
   fence takes them back. The setup re-grants exactly those it found held (read in the
   same transaction, before its ``REVOKE ALL``), so it neither lifts a fence (after a
   fallback the API writing Aurora while the source takes the writes is a split) nor
   fences a cut-over Aurora. An apply may re-run it in any stage.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from paymig.logins import (
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
from paymig.runtime.role_sql import (
    DMS_SCHEMAS,
    DbSetupError,
    Statement,
    alter_user,
    create_user,
    default_privilege_statements,
    expected_special_attributes,
    grant_statements,
    group_attributes,
    membership_statements,
    name,
    revoke_statements,
)

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
    #: (role, table, privilege) of the cutover privileges held now on payment tables.
    cutover_grants: frozenset[tuple[str, str, str]] = frozenset()


def _keep_cutover_grants(login: Login, catalog: RoleCatalog) -> list[sql.Composed]:
    """Give back, after the ``REVOKE ALL``, exactly the cutover privileges found held."""
    held = sorted(
        (table, privilege)
        for role, table, privilege in catalog.cutover_grants
        if role == login.group and privilege in login.cutover_privileges
    )
    return [
        sql.SQL("GRANT {} ON TABLE {}.{} TO {}").format(
            sql.SQL(privilege), name(PAYMENTS_SCHEMA), name(table), name(str(login.group))
        )
        for table, privilege in held
    ]


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
        plan += _keep_cutover_grants(login, catalog)
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


_CUTOVER_GRANTS_SQL = """
SELECT r.rolname, c.relname, a.privilege_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = %s AND c.relname = ANY(%s) AND r.rolname = ANY(%s)
  AND a.privilege_type = ANY(%s)
"""


def read_role_catalog(conn: psycopg.Connection[Any], server: Server) -> RoleCatalog:
    """Which of a server's login roles exist, their memberships, members and powers."""
    names = [role for login in logins_for(server) for role in login.roles]
    rows = conn.execute(_CATALOG_SQL, (names,)).fetchall()
    groups = [str(lg.group) for lg in logins_for(server) if lg.cutover_privileges]
    privileges = sorted({p for lg in logins_for(server) for p in lg.cutover_privileges})
    held = conn.execute(
        _CUTOVER_GRANTS_SQL,
        (PAYMENTS_SCHEMA, [t for _, t in PAYMENT_TABLES], groups, privileges),
    ).fetchall()
    return RoleCatalog(
        cutover_grants=frozenset((str(r), str(t), str(p)) for r, t, p in held),
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
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise DbSetupError("aurora setup: the connection is inside a transaction")
    try:
        with conn.transaction():  # the catalog is read in the transaction that acts on it
            row = conn.execute("SELECT current_database(), rolsuper FROM pg_roles "
                               "WHERE rolname = current_user").fetchone()  # fmt: skip
            if row is None:  # pragma: no cover - current_user always has a pg_roles row
                raise DbSetupError("aurora setup: cannot read the connecting role")
            database, superuser = row
            catalog = read_role_catalog(conn, "aurora")
            plan = plan_aurora_setup(database, catalog, scram_verifiers(conn, passwords),
                                     aurora=aurora, superuser=superuser)  # fmt: skip
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
    with conn.transaction():
        checks = tuple(check_logins(conn, "aurora"))
    return SetupReport(created, tuple(sorted(passwords)), len(plan), checks)


__all__ = [
    "DbSetupError",
    "RoleCatalog",
    "SetupReport",
    "plan_aurora_setup",
    "read_role_catalog",
    "scram_verifiers",
    "setup_aurora",
]
