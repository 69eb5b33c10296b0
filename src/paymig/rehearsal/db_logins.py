"""The stack's database logins on the local servers, as the DBA and the setup check make them.

The stack declares one login per client and server (:mod:`paymig.logins`) and one
secret per login (``<stack>/<server>/<client>``), which Terraform creates without a
value. In AWS the values come from two places, and the rehearsal plays both:

- **the on-prem source**: the DBA runs paymig's script (:mod:`paymig.runtime.source_sql`)
  as a superuser and stores each login's password in its secret (the runbook's
  "Store the replication credentials" step). Here the script runs exactly as rendered on
  the local source server; each user's password is set as a SCRAM verifier computed on
  the client, and the first user of each pair goes into the secret as
  ``{"username", "password", "host", "port"}`` with the declared host and port.
- **Aurora**: the setup check (:mod:`paymig.lambdas.db_setup`, invoked by Terraform
  during apply) logs in as the RDS master, creates the logins and stores their first
  passwords. The emulator cannot run it (its Lambda only echoes the payload, and the
  invocation depends on the cluster instances, which it never completes), so the
  rehearsal runs the function's own code in a Lambda execution environment under the
  function's role, against the local target server standing in for the cluster.

Differences from AWS, named in the report: the master login is a superuser on the local
server (on Aurora it is a member of ``rds_superuser``), the built-in ``rds_*`` roles are
created as plain ``NOLOGIN`` roles, and the local servers have no pgaudit, so the setup
skips its two pgaudit statements (``set_up(aurora_server=False)``). Every login user,
master included, is admitted only over TLS with its password.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from paymig import naming
from paymig.errors import CommandFailedError
from paymig.lambdas.db_setup import ENV_LOGIN_SECRETS
from paymig.local.postgres import LocalPostgres
from paymig.logins import login_for, logins_for, user_names
from paymig.rehearsal.lambda_runtime import Invocation, LoadedFunction, invoke
from paymig.runtime.database_env import read_json_secret, target
from paymig.runtime.db_setup import scram_verifiers
from paymig.runtime.source_sql import source_setup_script

#: Roles every Aurora PostgreSQL cluster has built in that paymig's logins name
#: (``dms_reverse`` is a member of ``rds_replication``); created on the local server.
AURORA_BUILT_IN_ROLES = ("rds_superuser", "rds_replication")

#: The handler the rehearsal runs for the setup function: its own code, without pgaudit.
SETUP_HANDLER = "paymig.rehearsal.setup_check.handler"


@dataclass(frozen=True)
class SourceServer:
    """The local server standing in for the on-prem source, and what the stack declares."""

    server: LocalPostgres
    dbname: str
    declared_host: str
    declared_port: int


def prepare_source(source: SourceServer, secretsmanager: Any, stack_name: str) -> list[str]:
    """Play the DBA: run paymig's script, set every password, store each login's secret.

    Returns one line per secret for the report (names and users, never a password).
    """
    script = source_setup_script(source.dbname)
    users = user_names("source")
    passwords = {user: secrets.token_urlsafe(24) for user in users}
    with psycopg.connect(source.server.dsn(dbname=source.dbname), autocommit=True) as conn:
        conn.execute(script.sql.encode())
        for user, verifier in scram_verifiers(conn, passwords).items():
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(verifier)
                )
            )
    lines = []
    for login in logins_for("source"):
        name = naming.login_secret_name(stack_name, "source", login.client)
        value = {"username": login.base, "password": passwords[login.base],
                 "host": source.declared_host, "port": source.declared_port}  # fmt: skip
        secretsmanager.put_secret_value(SecretId=name, SecretString=json.dumps(value))
        lines.append(f"{name}: {login.base} on the source server (the DBA's script)")
    for user in users:
        source.server.require_tls_password(user)
    return lines


def create_master(target_server: LocalPostgres, secretsmanager: Any, secret_arn: str) -> str:
    """The RDS master's stand-in on the local target, with the password of its secret.

    On Aurora the master exists from the cluster's creation with the password RDS keeps
    in its managed secret, beside the cluster's built-in roles; here the same login is
    created from that secret, and the built-in roles the logins use. Returns the user name.
    """
    master = read_json_secret(secretsmanager, secret_arn)
    if master is None or not master.get("username") or not master.get("password"):
        raise CommandFailedError(f"{secret_arn}: the cluster's master secret has no login")
    user = str(master["username"])
    with psycopg.connect(target_server.dsn(), autocommit=True) as conn:
        for role in AURORA_BUILT_IN_ROLES:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        verifier = scram_verifiers(conn, {user: str(master["password"])})[user]
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        conn.execute(
            sql.SQL("{} ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"),
                sql.Identifier(user),
                sql.Literal(verifier),
            )
        )
    target_server.require_tls_password(user)
    return user


@dataclass(frozen=True)
class SetupOutcome:
    """What the setup function's run did: its invocation and one line per login secret."""

    invocation: Invocation
    lines: list[str]

    @property
    def ok(self) -> bool:
        """The function returned, every login check passed and IAM denied nothing."""
        result = self.invocation.result or {}
        checks = result.get("checks", []) if isinstance(result, Mapping) else []
        return (
            self.invocation.error is None
            and not self.invocation.denied
            and bool(checks)
            and all(check.get("ok") for check in checks)
        )

    @property
    def detail(self) -> str:
        """One line: what was created and checked, or why it failed."""
        invocation = self.invocation
        if invocation.error is not None:
            return f"{invocation.error['type']}: {invocation.error['message']}"
        result = dict(invocation.result or {})
        failed = [c["name"] for c in result.get("checks", []) if not c.get("ok")]
        text = (
            f"as {invocation.principal}: {len(result.get('created', []))} role(s) created, "
            f"{result.get('statements')} statements, "
            f"{len(result.get('checks', []))} login checks"
            + (f", failed: {', '.join(failed)}" if failed else ", all passed")
        )
        if invocation.denied:
            text += "; denied: " + ", ".join(invocation.denied)
        return text


def run_setup(
    loaded: LoadedFunction,
    target_server: LocalPostgres,
    *,
    sts: Any,
    secretsmanager: Any,
    endpoint_url: str,
    region: str,
    log_path: Path,
) -> SetupOutcome:
    """Run the setup function's code under its role against the local target server."""
    aurora = target("AURORA", loaded.declared)
    create_master(target_server, secretsmanager, aurora.secret_arn)
    spec = replace(loaded.spec, handler=SETUP_HANDLER)
    invocation = invoke(
        replace(loaded, spec=spec),
        {"check": "setup"},
        sts=sts,
        endpoint_url=endpoint_url,
        region=region,
        log_path=log_path,
    )
    lines = []
    if invocation.error is None:
        for login in logins_for("aurora"):
            for user in login.users:
                target_server.require_tls_password(user)
        declared = json.loads(loaded.declared.get(ENV_LOGIN_SECRETS, "{}"))
        for client, arn in sorted(declared.items()):
            base = login_for("aurora", client).base
            lines.append(f"{arn}: {base} on the target server (the setup function)")
    return SetupOutcome(invocation, lines)
