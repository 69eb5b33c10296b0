"""The rotation's PostgreSQL side: logins over TLS, passwords as verifiers, the clone user.

What the ``setSecret`` and ``testSecret`` steps do in the database: compare the two users
of a pair, create the missing one as a clone or refuse with the reason, and set a
password without sending it (the SCRAM verifier is computed client-side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from paymig.lambdas.rotation_secrets import LOG, DbSecret, RotationError, one_line, partner_username

CONNECT_TIMEOUT_SECONDS = 5
APPLICATION_NAME = "paymig-rotation"
#: Role attributes only a superuser can give, hence a clone only a DBA can create.
SUPERUSER_ONLY_ATTRIBUTES = frozenset({"SUPERUSER", "REPLICATION", "BYPASSRLS"})


@dataclass(frozen=True)
class RoleProfile:
    """What a role can do, for comparing the two users of a pair."""

    attributes: frozenset[str]  # SUPERUSER, NOINHERIT, CREATEROLE, CREATEDB, REPLICATION, ...
    connection_limit: int
    memberships: frozenset[tuple[str, bool]]  # (group role, with admin option)


def _memberships(items: frozenset[tuple[str, bool]]) -> str:
    return ", ".join(f"{r} (with admin option)" if a else r for r, a in sorted(items))


def profile_differences(current: RoleProfile, pending: RoleProfile) -> list[str]:
    """How the pending user differs from the current one (empty when they match)."""
    found = []
    if current.attributes != pending.attributes:
        found.append(
            f"attributes [{' '.join(sorted(current.attributes))}] vs "
            f"[{' '.join(sorted(pending.attributes))}]"
        )
    if current.connection_limit != pending.connection_limit:
        found.append(f"connection limit {current.connection_limit} vs {pending.connection_limit}")
    if missing := current.memberships - pending.memberships:
        found.append(f"lacks membership in {_memberships(missing)}")
    if extra := pending.memberships - current.memberships:
        found.append(f"has extra membership in {_memberships(extra)}")
    return found


def clone_refusal(
    username: str, profile: RoleProfile, dependencies: int, role_settings: int
) -> str | None:
    """Why a clone made from role memberships would differ from ``username``, if it would."""
    superuser_only = sorted(profile.attributes & SUPERUSER_ONLY_ATTRIBUTES)
    if superuser_only:
        reason = f"has {', '.join(superuser_only)}, which only a superuser can give a new role"
    elif dependencies:
        reason = (
            f"owns objects or holds privileges granted to it directly ({dependencies} "
            "catalog entries), which a clone made from its role memberships would lack"
        )
    elif role_settings:
        reason = "has role settings (ALTER ROLE ... SET), which a clone would lack"
    else:
        return None
    return (
        f"user {username!r} {reason}: a DBA must create {partner_username(username)!r} "
        "with the same attributes, groups and privileges (SQL in paymig.lambdas.rotation)"
    )


def clone_statement(clone: str, profile: RoleProfile, verifier: str) -> sql.Composed:
    """``CREATE ROLE`` for the clone: LOGIN, the current user's plain attributes, the verifier."""
    options: list[sql.Composable] = [sql.SQL("LOGIN")]
    options += [
        sql.SQL(a) for a in ("NOINHERIT", "CREATEDB", "CREATEROLE") if a in profile.attributes
    ]
    if profile.connection_limit != -1:
        options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(profile.connection_limit)))
    return sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
        sql.Identifier(clone), sql.SQL(" ").join(options), sql.Literal(verifier)
    )


def grant_statements(clone: str, profile: RoleProfile) -> list[sql.Composed]:
    """``GRANT`` of each of the current user's group roles to the clone."""
    return [
        sql.SQL("GRANT {} TO {}{}").format(
            sql.Identifier(role),
            sql.Identifier(clone),
            sql.SQL(" WITH ADMIN OPTION" if admin else ""),
        )
        for role, admin in sorted(profile.memberships)
    ]


def login(
    endpoint: DbSecret, username: str, password: str, ca_path: str
) -> psycopg.Connection[Any]:
    """Open an autocommit connection over TLS, verifying the server's chain and name."""
    try:
        return psycopg.connect(
            host=endpoint.host,
            port=endpoint.port,
            dbname=endpoint.dbname,
            user=username,
            password=password,
            sslmode="verify-full",
            sslrootcert=ca_path,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
            autocommit=True,
        )
    except psycopg.OperationalError as error:
        raise RotationError(
            f"user {username!r} cannot log in to {endpoint.host}:{endpoint.port}/"
            f"{endpoint.dbname}: {one_line(error)}"
        ) from None


def scram_verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed here by libpq."""
    verifier: bytes = conn.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    )
    return verifier.decode("ascii")


def set_role_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """``ALTER ROLE ... PASSWORD '<verifier>'``: the password itself never reaches the server."""
    verifier = scram_verifier(conn, role, password)
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier)
        )
    )


_ATTRIBUTES = """
    SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
           rolconnlimit
    FROM pg_roles WHERE rolname = %s
"""
_MEMBERSHIPS = """
    SELECT g.rolname, m.admin_option
    FROM pg_auth_members m
    JOIN pg_roles g ON g.oid = m.roleid
    JOIN pg_roles u ON u.oid = m.member
    WHERE u.rolname = %s
"""
# Anything in any database that depends on the role (ownership, ACL entries, policies).
_CLONE_BLOCKERS = """
    SELECT (SELECT count(*) FROM pg_shdepend d
            WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid
              AND d.deptype <> 'p'),
           (SELECT count(*) FROM pg_db_role_setting s WHERE s.setrole = r.oid)
    FROM pg_roles r WHERE r.rolname = %s
"""


def read_role_profile(conn: psycopg.Connection[Any], role: str) -> RoleProfile | None:
    """The role's attributes and memberships; None if there is no such role."""
    row = conn.execute(_ATTRIBUTES, (role,)).fetchone()
    if row is None:
        return None
    superuser, inherit, createrole, createdb, replication, bypassrls, limit = row
    flags = {"SUPERUSER": superuser, "NOINHERIT": not inherit, "CREATEROLE": createrole,
             "CREATEDB": createdb, "REPLICATION": replication, "BYPASSRLS": bypassrls}  # fmt: skip
    groups = conn.execute(_MEMBERSHIPS, (role,)).fetchall()
    return RoleProfile(
        attributes=frozenset(name for name, on in flags.items() if on),
        connection_limit=int(limit),
        memberships=frozenset((str(name), bool(admin)) for name, admin in groups),
    )


def existing_role_profile(conn: psycopg.Connection[Any], role: str) -> RoleProfile:
    """The profile of a role that must exist."""
    profile = read_role_profile(conn, role)
    if profile is None:
        raise RotationError(f"user {role!r} does not exist")
    return profile


def apply_pending_user(
    conn: psycopg.Connection[Any], current_user: str, pending_user: str, password: str
) -> None:
    """As the admin login: create the pending user as a clone, or set its password."""
    current = existing_role_profile(conn, current_user)
    existing = read_role_profile(conn, pending_user)
    if existing is None:
        dependencies, role_settings = conn.execute(_CLONE_BLOCKERS, (current_user,)).fetchone() or (
            0,
            0,
        )
        refusal = clone_refusal(current_user, current, int(dependencies), int(role_settings))
        if refusal is not None:
            raise RotationError(refusal)
        verifier = scram_verifier(conn, pending_user, password)
        with conn.transaction():  # a half-made clone would be worse than none
            conn.execute(clone_statement(pending_user, current, verifier))
            for statement in grant_statements(pending_user, current):
                conn.execute(statement)
        LOG.info("setSecret: created user %s as a clone of %s", pending_user, current_user)
        return
    if differences := profile_differences(current, existing):
        raise RotationError(
            f"user {pending_user!r} differs from {current_user!r}: {'; '.join(differences)}"
        )
    set_role_password(conn, pending_user, password)
    LOG.info("setSecret: set the password of user %s", pending_user)
