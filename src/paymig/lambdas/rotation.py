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

This module holds the four steps and the handler; the checks of what Secrets Manager
hands over are in :mod:`paymig.lambdas.rotation_secrets`, the PostgreSQL role work in
:mod:`paymig.lambdas.rotation_roles`. Together they import only the standard library,
boto3/botocore, psycopg and the paymig modules in :data:`ROTATION_MODULES`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from paymig.lambdas.rotation_roles import (
    apply_pending_user,
    existing_role_profile,
    login,
    profile_differences,
    set_role_password,
)
from paymig.lambdas.rotation_secrets import (
    CURRENT,
    LOG,
    PENDING,
    DbSecret,
    RotationError,
    ca_file,
    ca_files_from_declarations,
    check_pending,
    current_version,
    must_run,
    one_line,
    parse_admin_secret,
    parse_db_secret,
    parse_event,
    pending_exists,
    pending_username,
    pending_value,
    read_secret,
)

#: Modules of paymig the function's package holds (for lambda_package.build_package).
ROTATION_MODULES = ("errors.py", "runtime/__init__.py", "runtime/database_env.py",
                    "lambdas/__init__.py", "lambdas/rotation.py",
                    "lambdas/rotation_secrets.py", "lambdas/rotation_roles.py")  # fmt: skip
#: Distributions the package carries (boto3 comes with the Lambda runtime).
ROTATION_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "typing-extensions")
ROTATION_HANDLER = "paymig.lambdas.rotation.handler"

#: 40 characters of [A-Za-z0-9] (about 238 bits): nothing to escape in a libpq
#: connection string, a URI, JSON, a shell or a DMS endpoint.
PASSWORD_LENGTH = 40


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
