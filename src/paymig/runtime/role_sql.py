"""SQL statements that create login roles and grant them what :mod:`paymig.logins` says.

Pure: every function returns :mod:`psycopg.sql` objects and touches no database. The
Aurora setup (:mod:`paymig.runtime.db_setup`) and the DBA's script for the source
(:mod:`paymig.runtime.source_sql`) are both assembled from these, so the two servers get
the same roles and grants spelled the same way.

Names come from :mod:`paymig.logins` and are written unquoted for readable SQL; only
plain lower-case names are accepted, and a test keeps them clear of SQL keywords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from psycopg import sql

from paymig.errors import PaymigError
from paymig.logins import (
    CONTROL_SCHEMA,
    DMS_OWN_TABLE_PRIVILEGES,
    HEARTBEAT_SCHEMA,
    MARKERS,
    PAYMENT_TABLES,
    PAYMENTS_SCHEMA,
    Login,
)

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
    """Every privilege `login` needs, granted to its group (the whole list, nothing else).

    Never its :attr:`~paymig.logins.Login.cutover_privileges`: only a cutover gives those.
    """
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
    granted = [p for p in login.table_privileges if p not in login.cutover_privileges]
    if granted:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                _words(granted),
                sql.SQL(", ").join([_table(s, t) for s, t in PAYMENT_TABLES]),
                to,
            )
        )
    if login.marker_privileges:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                _words(login.marker_privileges), _table(*MARKERS), to
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


def plan_text(plan: Sequence[Statement]) -> list[str]:
    """Render a plan as SQL text (for review and tests); verifiers appear as given."""
    return [statement.as_string(None) for statement in plan]


__all__ = [
    "DMS_SCHEMAS",
    "SUPERUSER_ONLY_ATTRIBUTES",
    "DbSetupError",
    "Statement",
    "alter_user",
    "create_user",
    "default_privilege_statements",
    "expected_special_attributes",
    "grant_statements",
    "group_attributes",
    "membership_statements",
    "name",
    "plan_text",
    "revoke_statements",
    "user_attributes",
]
