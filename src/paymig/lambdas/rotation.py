r"""The rotation Lambda: Secrets Manager rotates paymig's PostgreSQL credentials with it.

Secrets Manager calls the function four times per rotation, with the event
``{"Step", "SecretId", "ClientRequestToken"}`` and Step ``createSecret``, ``setSecret``,
``testSecret``, ``finishSecret`` in that order; the token is the id of the new version,
which Secrets Manager has already staged ``AWSPENDING`` ("Rotation by Lambda function",
"Lambda rotation functions" and the ``VersionIdsToStages`` field of DescribeSecret in
AWS's Secrets Manager documentation). A failed step is retried, so every step here is
idempotent: re-running it with the same token changes nothing more.

**Alternating users** (AWS's "Lambda function rotation strategies"): the secret names
one user of a pair ``(base, base_clone)``; each rotation puts the *other* user, with a
new password, in the pending version, sets that password through an admin login, tests
it, and makes it current. The current user's password is never changed, so clients
that hold it (open connections and cached credentials alike) keep working until the
rotation after next; a client that re-reads the secret when a login fails
(:class:`paymig.lambdas.payment_api_connections.SecretCredentials`) never sees a failure.

**Single user**, for a secret without ``masterarn`` (the admin logins themselves): the
user changes its own password. Clients that cached the old one fail until they re-read.

The secret's JSON (``SecretString``)::

    {"engine": "postgres", "host": "...", "port": 5432, "dbname": "...",
     "username": "...", "password": "...", "ca": "<name>", "masterarn": "<ARN>"}

* ``masterarn`` (alternating users only): the ARN of the admin secret, a login allowed
  to change passwords. On Aurora, the RDS-managed master secret (it carries only
  ``username`` and ``password``; host, port and dbname are this secret's); on the
  on-prem source, a DBA-provided login with CREATEROLE (a superuser where the pair has
  REPLICATION: PostgreSQL 14/15 lets only a superuser change such a role's password).
* ``ca``: the server whose CA bundle the certificate is verified against (``source`` or
  ``aurora``); the function's ``PAYMIG_DB_<NAME>`` declarations
  (:mod:`paymig.runtime.database_env`) name each server's CA parameter in SSM, fetched
  once per execution environment. Every connection uses ``sslmode=verify-full``.
* Any other field is carried over unchanged into each new version.

Passwords never travel in SQL: the SCRAM-SHA-256 verifier is computed client-side
(libpq's ``PQencryptPasswordConn``) and sent as ``ALTER ROLE ... PASSWORD '<verifier>'``,
which PostgreSQL stores as is, so neither the server log nor pgaudit sees a password.
Nothing here logs a password or a secret's JSON.

When the other user of the pair does not exist, ``setSecret`` creates it (LOGIN, the
current user's INHERIT/CREATEDB/CREATEROLE/CONNECTION LIMIT, and a grant of every role
the current user is a member of). It refuses, with one line telling the DBA what to do,
when a clone made that way would differ from the user: attributes that need a superuser
(SUPERUSER, REPLICATION, BYPASSRLS), objects it owns or privileges granted to it
directly, role settings (``ALTER ROLE ... SET``). The SQL a DBA runs instead, once, as a
superuser (on Aurora, the master user)::

    -- Privileges on a group role, never on the login users:
    CREATE ROLE payments_app NOLOGIN;
    GRANT CONNECT ON DATABASE payments TO payments_app;
    GRANT USAGE ON SCHEMA public TO payments_app;
    GRANT SELECT, INSERT ON payments TO payments_app;
    CREATE ROLE payment_api LOGIN IN ROLE payments_app;
    \password payment_api    -- in psql: the verifier is computed client-side

    -- On-prem: the admin login of masterarn (on Aurora, the RDS master secret).
    CREATE ROLE paymig_rotation LOGIN CREATEROLE;
    \password paymig_rotation
    -- PostgreSQL 16+ also needs: GRANT payments_app TO paymig_rotation WITH ADMIN OPTION;

    -- A user the rotation cannot clone (here REPLICATION, DMS's login on the source):
    -- create both users of the pair with the same attributes and groups.
    CREATE ROLE dms_source LOGIN REPLICATION IN ROLE payments_read;
    CREATE ROLE dms_source_clone LOGIN REPLICATION IN ROLE payments_read;
    \password dms_source

``testSecret`` logs in as the pending user, checks ``current_user`` and, for a pair,
that both users have the same attributes and role memberships (AWS: "If you change the
original user's permissions after you create the clone, you must also change the clone
user's permissions"; drift stops the rotation before clients switch).

Environment: ``PAYMIG_DB_SOURCE`` and ``PAYMIG_DB_AURORA`` (the servers it rotates logins
on, as its admin logins; the stack writes them with the network paths). boto3 finds
Secrets Manager and SSM as usual (VPC endpoints with private DNS need nothing more).

This module imports only the standard library, boto3/botocore, psycopg and the paymig
modules in :data:`ROTATION_MODULES`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from psycopg import sql

from paymig.errors import ConfigError, PaymigError
from paymig.runtime.database_env import CaBundles, declared_targets

LOG = logging.getLogger("paymig.rotation")
LOG.setLevel(logging.INFO)

#: Modules of paymig the function's package holds (for lambda_package.build_package).
ROTATION_MODULES = ("errors.py", "runtime/__init__.py", "runtime/database_env.py",
                    "lambdas/__init__.py", "lambdas/rotation.py")  # fmt: skip
#: Distributions the package carries (boto3 comes with the Lambda runtime).
ROTATION_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "typing-extensions")
ROTATION_HANDLER = "paymig.lambdas.rotation.handler"

#: Where a secret's ``ca`` field is looked up, for messages.
CA_SOURCE = "the PAYMIG_DB_* declarations"
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CLONE_SUFFIX = "_clone"
MAX_ROLE_NAME_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1
#: 40 characters of [A-Za-z0-9] (about 238 bits): nothing to escape in a libpq
#: connection string, a URI, JSON, a shell or a DMS endpoint.
PASSWORD_LENGTH = 40
CONNECT_TIMEOUT_SECONDS = 5
APPLICATION_NAME = "paymig-rotation"
#: Role attributes only a superuser can give, hence a clone only a DBA can create.
SUPERUSER_ONLY_ATTRIBUTES = frozenset({"SUPERUSER", "REPLICATION", "BYPASSRLS"})


# ================================================================ pure core


class RotationError(PaymigError):
    """A step refuses to go on; the message is one line and holds no secret."""


@dataclass(frozen=True)
class RotationEvent:
    """What Secrets Manager asks of one invocation."""

    secret_id: str
    token: str
    step: str


def parse_event(event: Mapping[str, Any]) -> RotationEvent:
    """Validate an invocation event; raise :class:`RotationError` naming the bad key."""
    values = {}
    for key in ("SecretId", "ClientRequestToken", "Step"):
        value = event.get(key)
        if not isinstance(value, str) or not value:
            raise RotationError(f"event: {key} missing or not a string")
        values[key] = value
    if values["Step"] not in STEPS:
        raise RotationError(f"event: Step {values['Step']!r} is not one of {', '.join(STEPS)}")
    return RotationEvent(values["SecretId"], values["ClientRequestToken"], values["Step"])


def must_run(metadata: Mapping[str, Any], token: str) -> bool:
    """Check the version's staging (as AWS's templates do); False if already current.

    As in AWS's PostgreSQL multi-user template (aws-samples/aws-secrets-manager-rotation-
    lambdas), an explicit ``RotationEnabled: false`` refuses, an absent field does not.
    """
    if metadata.get("RotationEnabled", True) is not True:
        raise RotationError("rotation is not enabled for the secret")
    stages = (metadata.get("VersionIdsToStages") or {}).get(token)
    if stages is None:
        raise RotationError(f"version {token} has no staging label for rotation")
    if CURRENT in stages:
        return False
    if PENDING not in stages:
        raise RotationError(f"version {token} is not staged {PENDING}")
    return True


def current_version(metadata: Mapping[str, Any]) -> str:
    """The version id that carries AWSCURRENT."""
    for version, stages in (metadata.get("VersionIdsToStages") or {}).items():
        if CURRENT in stages:
            return str(version)
    raise RotationError(f"no version of the secret is staged {CURRENT}")


@dataclass(frozen=True)
class DbSecret:
    """A rotated secret's value, checked; the password never appears in ``repr``."""

    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)
    ca: str
    masterarn: str | None

    @property
    def alternating(self) -> bool:
        """Whether the secret uses the alternating users strategy."""
        return self.masterarn is not None


def _text(value: Mapping[str, Any], name: str, where: str) -> str:
    found = value.get(name)
    if not isinstance(found, str) or not found:
        raise RotationError(f"{where}: field {name!r} missing or not a non-empty string")
    return found


def parse_db_secret(value: Mapping[str, Any], where: str) -> DbSecret:
    """Check a rotated secret's JSON; errors name the field, never its value."""
    if value.get("engine") != "postgres":
        raise RotationError(f"{where}: field 'engine' must be 'postgres'")
    port = value.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise RotationError(f"{where}: field 'port' must be a port number")
    masterarn = value.get("masterarn")
    if masterarn is not None and (not isinstance(masterarn, str) or not masterarn):
        raise RotationError(f"{where}: field 'masterarn' must be a secret ARN when present")
    return DbSecret(
        host=_text(value, "host", where),
        port=port,
        dbname=_text(value, "dbname", where),
        username=_text(value, "username", where),
        password=_text(value, "password", where),
        ca=_text(value, "ca", where),
        masterarn=masterarn,
    )


@dataclass(frozen=True)
class Login:
    """A user name and password (the admin secret's)."""

    username: str
    password: str = field(repr=False)


def parse_admin_secret(value: Mapping[str, Any], where: str, rotated: DbSecret) -> Login:
    """Check the admin secret: a login; its host, when it names one, is the rotated one's."""
    login = Login(_text(value, "username", where), _text(value, "password", where))
    host = value.get("host")
    if host is not None and host != rotated.host:
        raise RotationError(
            f"{where}: names host {host!r}, but the rotated secret's host is {rotated.host!r}"
        )
    return login


def partner_username(username: str) -> str:
    """The other user of the pair: ``x`` <-> ``x_clone``."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    partner = username + CLONE_SUFFIX
    if len(partner.encode()) > MAX_ROLE_NAME_LENGTH:
        raise RotationError(
            f"user {username!r}: with {CLONE_SUFFIX!r} appended the name exceeds "
            f"PostgreSQL's {MAX_ROLE_NAME_LENGTH} bytes"
        )
    return partner


def pending_username(current: DbSecret) -> str:
    """The user the next version names: the partner, or the same user in single-user mode."""
    return partner_username(current.username) if current.alternating else current.username


def pending_value(current_value: Mapping[str, Any], username: str, password: str) -> dict[str, Any]:
    """The pending version's JSON: the current one with another user and password."""
    return {**current_value, "username": username, "password": password}


def check_pending(current: DbSecret, pending: DbSecret, where: str) -> None:
    """Refuse a pending version that points anywhere but at the current one's partner."""
    for name in ("host", "port", "dbname", "ca", "masterarn"):
        if getattr(current, name) != getattr(pending, name):
            raise RotationError(f"{where}: field {name!r} differs from the {CURRENT} version's")
    expected = pending_username(current)
    if pending.username != expected:
        raise RotationError(
            f"{where}: names user {pending.username!r}; only {expected!r} may follow "
            f"{current.username!r}"
        )


def ca_files_from_declarations(
    env: Mapping[str, str], ssm: Any, directory: Path | None = None
) -> dict[str, str]:
    """Each declared server's CA bundle as a file: ``{"source": path, "aurora": path}``."""
    try:
        targets = declared_targets(env)
    except ConfigError as error:
        raise RotationError(str(error)) from None
    if not targets:
        raise RotationError("PAYMIG_DB_*: the function declares no database")
    bundles = CaBundles(ssm, directory)
    try:
        return {t.server: str(bundles.path_for(t.ca_parameter)) for t in targets.values()}
    except ConfigError as error:
        raise RotationError(str(error)) from None


def ca_file(ca_files: Mapping[str, str], name: str, where: str) -> str:
    """The CA bundle file a secret's ``ca`` names."""
    path = ca_files.get(name)
    if path is None:
        raise RotationError(f"{where}: field 'ca' names {name!r}, which {CA_SOURCE} lack")
    if not Path(path).is_file():
        raise RotationError(f"{CA_SOURCE}: {name!r} maps to {path}, which is not a file")
    return path


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


def one_line(error: BaseException) -> str:
    """An exception as one log line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"


# ================================================================ shell: Secrets Manager


def read_secret(
    client: Any, secret_id: str, stage: str, version: str | None = None
) -> dict[str, Any]:
    """A version's JSON object (by stage, and version id when given)."""
    params = {"SecretId": secret_id, "VersionStage": stage}
    if version is not None:
        params["VersionId"] = version
    answer = client.get_secret_value(**params)
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        value = None
    if not isinstance(value, dict):
        raise RotationError(f"secret {secret_id} ({stage}): not a JSON object")
    return value


def pending_exists(client: Any, secret_id: str, token: str) -> bool:
    """Whether the pending version already holds a value (createSecret ran)."""
    try:
        client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


# ================================================================ shell: PostgreSQL


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


# ================================================================ the four steps


def _where(secret_id: str, stage: str) -> str:
    return f"secret {secret_id} ({stage})"


def _current_and_pending(client: Any, secret_id: str, token: str) -> tuple[DbSecret, DbSecret]:
    current = parse_db_secret(read_secret(client, secret_id, CURRENT), _where(secret_id, CURRENT))
    where = _where(secret_id, PENDING)
    pending = parse_db_secret(read_secret(client, secret_id, PENDING, token), where)
    check_pending(current, pending, where)
    return current, pending


def create_secret(client: Any, secret_id: str, token: str, ca_files: Mapping[str, str]) -> None:
    """Put the pending version: the other user (or the same), a new random password."""
    current_value = read_secret(client, secret_id, CURRENT)
    current = parse_db_secret(current_value, _where(secret_id, CURRENT))
    ca_file(ca_files, current.ca, _where(secret_id, CURRENT))
    if pending_exists(client, secret_id, token):
        LOG.info("createSecret: version %s of %s already exists", token, secret_id)
        return
    username = pending_username(current)
    password = client.get_random_password(
        PasswordLength=PASSWORD_LENGTH,
        ExcludePunctuation=True,
        IncludeSpace=False,
        RequireEachIncludedType=True,
    )["RandomPassword"]
    client.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps(pending_value(current_value, username, password)),
        VersionStages=[PENDING],
    )
    LOG.info("createSecret: put version %s of %s for user %s", token, secret_id, username)


def _set_single_user(current: DbSecret, pending: DbSecret, ca_path: str) -> None:
    """The user changes its own password; a retry finds the pending one already set."""
    try:
        conn = login(current, current.username, current.password, ca_path)
    except RotationError as current_failed:
        try:
            login(pending, pending.username, pending.password, ca_path).close()
        except RotationError:
            raise RotationError(
                f"neither the current nor the pending password logs in: {current_failed}"
            ) from None
        LOG.info("setSecret: user %s already has the pending password", pending.username)
        return
    with conn:
        set_role_password(conn, current.username, pending.password)
    LOG.info("setSecret: user %s changed its own password", current.username)


def set_secret(client: Any, secret_id: str, token: str, ca_files: Mapping[str, str]) -> None:
    """Give the pending user the pending password in the database."""
    current, pending = _current_and_pending(client, secret_id, token)
    ca_path = ca_file(ca_files, current.ca, _where(secret_id, CURRENT))
    if current.masterarn is None:
        _set_single_user(current, pending, ca_path)
        return
    # Before the admin login acts for this secret, its current credentials must log in,
    # so writing the secret is not enough to reset another user's password (AWS's
    # templates guard against this confused deputy the same way).
    login(current, current.username, current.password, ca_path).close()
    admin_where = _where(current.masterarn, CURRENT)
    admin = parse_admin_secret(
        read_secret(client, current.masterarn, CURRENT), admin_where, current
    )
    with login(current, admin.username, admin.password, ca_path) as conn:
        apply_pending_user(conn, current.username, pending.username, pending.password)


def test_secret(client: Any, secret_id: str, token: str, ca_files: Mapping[str, str]) -> None:
    """Log in as the pending user; for a pair, check both users can do the same."""
    current, pending = _current_and_pending(client, secret_id, token)
    ca_path = ca_file(ca_files, current.ca, _where(secret_id, CURRENT))
    with login(pending, pending.username, pending.password, ca_path) as conn:
        (user,) = conn.execute("SELECT current_user").fetchone() or (None,)
        if user != pending.username:
            raise RotationError(f"logged in as {pending.username!r}, but current_user is {user!r}")
        if pending.username != current.username:
            differences = profile_differences(
                existing_role_profile(conn, current.username),
                existing_role_profile(conn, pending.username),
            )
            if differences:
                raise RotationError(
                    f"user {pending.username!r} differs from {current.username!r}: "
                    + "; ".join(differences)
                )
    LOG.info("testSecret: user %s logs in to %s", pending.username, current.host)


def finish_secret(client: Any, secret_id: str, token: str, ca_files: Mapping[str, str]) -> None:
    """Move AWSCURRENT to the new version (AWSPREVIOUS follows), then drop AWSPENDING."""
    del ca_files
    previous = current_version(client.describe_secret(SecretId=secret_id))
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=token,
        RemoveFromVersionId=previous,
    )  # fmt: skip
    # Either end state is a finished rotation (RotateSecret API reference); without
    # AWSPENDING, no later RotateSecret can take this one for a rotation in progress.
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=token
    )
    LOG.info("finishSecret: version %s of %s is %s (was %s)", token, secret_id, CURRENT, previous)


_STEP_FUNCTIONS: dict[str, Callable[[Any, str, str, Mapping[str, str]], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


_CA_FILES: dict[str, str] = {}


def _ca_files() -> dict[str, str]:
    """The declared servers' CA files, fetched once per execution environment."""
    if not _CA_FILES:
        _CA_FILES.update(ca_files_from_declarations(os.environ, boto3.client("ssm")))
    return _CA_FILES


def handler(event: Mapping[str, Any], context: Any) -> None:
    """Lambda entry point: run the event's step; a failure is logged once and re-raised."""
    del context
    try:
        request = parse_event(event)
    except RotationError as error:
        LOG.error("rotation event refused: %s", error)
        raise
    try:
        ca_files = _ca_files()
        client = boto3.client("secretsmanager")
        if not must_run(client.describe_secret(SecretId=request.secret_id), request.token):
            LOG.info("%s: version %s of %s is already %s", request.step, request.token,
                     request.secret_id, CURRENT)  # fmt: skip
            return
        _STEP_FUNCTIONS[request.step](client, request.secret_id, request.token, ca_files)
    except Exception as error:
        # Secrets Manager retries the step; the line names it, never a value.
        LOG.error("%s failed for %s version %s: %s", request.step, request.secret_id,
                  request.token, one_line(error))  # fmt: skip
        raise
