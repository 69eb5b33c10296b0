"""The local servers standing in for the databases the stack declares, and their logins.

The stack declares the on-prem source (``replication.source``, reached over the VPN) and
the Aurora cluster (its endpoint, from the apply). In the rehearsal the source is the
local "source" server reached through the VPN stand-in (a TCP proxy), and Aurora is the
local "target" server. Both serve TLS, and a function's login is admitted only over TLS
with its password, so ``verify-full``, the secret and the network path are all
exercised.

The operator's step "store the database login in the secret Terraform created" is played
here: a login is created on the server and its JSON goes into the function's secret in
the emulator, unless the secret already holds a value.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from paymig.config import PaymigConfig
from paymig.local.postgres import LocalPostgres
from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal.function_env import LocalDatabase

#: Login of the payment API on the stand-in servers.
API_LOGIN = "paymig_payment_api"


@dataclass(frozen=True)
class StandIn:
    """A declared database, its local server, and how clients reach it."""

    declared: tuple[str, int]
    server: LocalPostgres
    reach: LocalDatabase
    dbname: str


def stand_ins(
    config: PaymigConfig,
    source: LocalPostgres,
    target: LocalPostgres,
    vpn: TcpProxy,
    aurora_endpoint: str | None,
) -> dict[tuple[str, int], StandIn]:
    """Each declared (host, port) and the local server that stands in for it."""
    rep = config.replication.source
    found = {
        (str(rep.host), rep.port): StandIn(
            (str(rep.host), rep.port), source,
            LocalDatabase("127.0.0.1", vpn.port, source.tls_root_file,
                          f"the source server through the VPN stand-in (127.0.0.1:{vpn.port})"),
            rep.database_name,
        )
    }  # fmt: skip
    if aurora_endpoint:
        found[(aurora_endpoint, 5432)] = StandIn(
            (aurora_endpoint, 5432), target,
            LocalDatabase("127.0.0.1", target.port, target.tls_root_file,
                          f"the target server (127.0.0.1:{target.port})"),
            config.database.database_name,
        )  # fmt: skip
    return found


def reach_map(found: Mapping[tuple[str, int], StandIn]) -> dict[tuple[str, int], LocalDatabase]:
    """How a client reaches each declared database (the translation's input)."""
    return {declared: item.reach for declared, item in found.items()}


def declared_secrets(variables: Mapping[str, str]) -> dict[tuple[str, int], str]:
    """Each database a function's environment declares, with its secret's ARN."""
    found: dict[tuple[str, int], str] = {}
    for name, text in variables.items():
        if name.startswith("PAYMIG_DB_"):
            spec = json.loads(text)
            found[(str(spec["host"]), int(spec["port"]))] = str(spec["secret_arn"])
    if "DB_HOST" in variables and "DB_SECRET_ARN" in variables:
        declared = (variables["DB_HOST"], int(variables.get("DB_PORT", "5432")))
        found[declared] = variables["DB_SECRET_ARN"]
    return found


def create_login(item: StandIn, login: str) -> str:
    """A login that may insert and read payments, TLS and password only; its password."""
    password = secrets.token_urlsafe(24)
    with psycopg.connect(item.server.dsn(dbname=item.dbname), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(login), sql.Literal(password)
            )
        )
        for statement in (
            "GRANT CONNECT ON DATABASE {db} TO {login}",
            "GRANT USAGE ON SCHEMA public TO {login}",
            "GRANT SELECT, INSERT ON payments TO {login}",
        ):
            conn.execute(
                sql.SQL(statement).format(
                    db=sql.Identifier(item.dbname), login=sql.Identifier(login)
                )
            )
    item.server.require_tls_password(login)
    return password


def store_logins(
    secretsmanager: Any,
    variables: Mapping[str, str],
    found: Mapping[tuple[str, int], StandIn],
    login: str = API_LOGIN,
) -> list[str]:
    """Create the function's logins and store them in its secrets; one line per secret."""
    stored = []
    for declared, arn in declared_secrets(variables).items():
        item = found.get(declared)
        if item is None:
            continue  # the translation names the unknown database
        if _has_value(secretsmanager, arn):
            stored.append(f"{arn}: already holds a value (kept)")
            continue
        password = create_login(item, login)
        value = {"username": login, "password": password, "host": declared[0],
                 "port": declared[1], "dbname": item.dbname}  # fmt: skip
        secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
        stored.append(f"{arn}: login {login} on the {item.server.name} server")
    return stored


def store_ca_parameter(ssm: Any, name: str, pem: str) -> None:
    """The local server's CA certificate as the value of the declared CA parameter.

    A parameter Terraform created keeps its type and key; only the value changes.
    """
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
    existing = found.get("Parameters", [])
    kind = existing[0].get("Type", "String") if existing else "String"
    extra = {"KeyId": existing[0]["KeyId"]} if existing and existing[0].get("KeyId") else {}
    ssm.put_parameter(Name=name, Value=pem, Type=kind, Overwrite=True, **extra)


def _has_value(secretsmanager: Any, arn: str) -> bool:
    try:
        secretsmanager.get_secret_value(SecretId=arn)
    except secretsmanager.exceptions.ResourceNotFoundException:
        return False
    return True
