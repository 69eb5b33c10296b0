"""The SQL the on-prem DBA runs on the source: paymig's logins, as :mod:`paymig.logins` says.

Nothing of paymig's may act on the source, so the roles and grants are rendered as a
script the DBA reads and runs as a superuser (`paymig source-sql`; runbook section 3). It is
deterministic: the same model always renders the same text. The users get no password;
the DBA sets each with psql's password command, which sends only a SCRAM verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from paymig.logins import (
    CONTROL_SCHEMA,
    HEARTBEAT_SCHEMA,
    PAYMENTS_SCHEMA,
    Login,
    logins_for,
    user_names,
)
from paymig.payments_schema import MARKERS_TABLE, ddl_statements, markers_ddl
from paymig.runtime.role_sql import (
    create_user,
    default_privilege_statements,
    grant_statements,
    group_attributes,
    membership_statements,
    name,
)


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


def _first_setup_guard() -> list[str]:
    """A block that stops the script when paymig's roles exist already.

    Every statement after it grants; run again after a cutover, the API's GRANT would
    give back the writes the cutover's fence revoked, and the source would take payments
    Aurora does not have. CREATE ROLE would fail too, but only by accident of order.
    """
    roles = sorted(
        {login.group for login in logins_for("source") if login.group} | set(user_names("source"))
    )
    listed = ", ".join(sql.Literal(role).as_string(None) for role in roles)
    return [
        "-- For the first setup only: run again after a cutover, the grants below would lift",
        "-- the cutover's fence on the source. `paymig preflight --check-logins` compares.",
        "DO $$",
        "BEGIN",
        f"  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ({listed})) THEN",
        "    RAISE EXCEPTION 'paymig''s roles exist already: this script is for the first "
        "setup only (after a cutover its grants would lift the fence); compare with paymig "
        "preflight --check-logins instead';",
        "  END IF;",
        "END",
        "$$;",
    ]


def source_setup_script(database: str) -> SourceScript:
    """Render the exact SQL the DBA runs on the on-prem source (deterministic).

    The roles get no password: the DBA sets each with psql's password command. The
    rotation admin may then change the pair users' passwords (``CREATEROLE``); nothing
    else is granted to it.
    """
    lines = [
        "BEGIN;",
        *_first_setup_guard(),
        "",
        "-- Only owners create objects in the payments schema (PostgreSQL 15's default;",
        "-- on 14 every role may, which would give each login CREATE it must not have).",
        f"REVOKE CREATE ON SCHEMA {PAYMENTS_SCHEMA} FROM PUBLIC;",
        "-- DMS's heartbeat table lives apart from the replicated tables",
        f"-- (source endpoint setting HeartbeatSchema = {HEARTBEAT_SCHEMA}).",
        f"CREATE SCHEMA IF NOT EXISTS {HEARTBEAT_SCHEMA};",
        "-- The control tables of the way back (DMS writes the source after cutover).",
        f"CREATE SCHEMA IF NOT EXISTS {CONTROL_SCHEMA};",
        f"-- {MARKERS_TABLE}: what `paymig cutover` and `paymig fallback` commit and wait",
        "-- for on the other side (replicated like the payment tables; owned by you).",
        *(statement + ";" for statement in ddl_statements(markers_ddl())),
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


__all__ = ["SourceScript", "source_setup_script"]
