"""What the validation functions find in AWS, built in the moto server for their tests.

Two real PostgreSQL servers with TLS hold the payments model. Each gets a login secret in
Secrets Manager and its certificate (self-signed, so it is its own CA) in SSM, and is
declared to the functions as the stack declares it: ``PAYMIG_DB_<NAME>`` JSON with
``verify-full`` (see :mod:`paymig.runtime.database_env`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg

from audit_table import create_audit_table
from paymig.config import PaymigConfig, ValidationConfig
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.naming import audit_table_name
from paymig.payments_schema import apply_schema
from paymig.runtime.database_env import DatabaseTarget

REGION = "us-east-2"

ROWS = """
INSERT INTO accounts (id, display_name, created_at)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'acct ' || i,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 20) AS i;
INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, currency, status,
                      request_fingerprint, created_at, updated_at)
SELECT ('10000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad((1 + i % 20)::text, 12, '0'))::uuid,
       'm' || (i % 3), 'key-' || i, (i * 1.25)::numeric(18, 2), 'USD', 'succeeded',
       repeat('a', 64), timestamptz '2026-02-01 00:00:00+00' + i * interval '1 second',
       timestamptz '2026-02-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, {payments}) AS i;
"""


def payment_id(number: int) -> str:
    """The id of the ``number``-th payment of :data:`ROWS`."""
    return f"10000000-0000-0000-0000-{number:012d}"


def start_databases(payments: int) -> tuple[LocalPostgres, LocalPostgres]:
    """Two TLS servers with the payments model and the same rows (database `payments`)."""
    servers = (LocalPostgres("val-src", ssl=True), LocalPostgres("val-tgt", ssl=True))
    for server in servers:
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE payments")
        with psycopg.connect(server.dsn("payments"), autocommit=True) as conn:
            apply_schema(conn)
            conn.execute(ROWS.format(payments=payments).encode())
            conn.execute("ANALYZE")
    return servers


def execute(server: LocalPostgres, statement: str, params: Any = None) -> None:
    """Run one statement in the `payments` database."""
    with psycopg.connect(server.dsn("payments"), autocommit=True) as conn:
        conn.execute(statement, params)


def reset_aws(moto: MotoServer, monkeypatch: Any, stack: str) -> Any:
    """Reset moto, point boto3 at it, create the audit table; return a session."""
    moto.reset()
    for key, value in moto.client_environment().items():
        monkeypatch.setenv(key, value)
    session = boto3.Session(region_name=REGION)
    create_audit_table(session.client("dynamodb"), audit_table_name(stack))
    return session


def declare(
    session: Any, monkeypatch: Any, stack: str, name: str, server: LocalPostgres, **override: Any
) -> DatabaseTarget:
    """Store the server's login and CA, and declare it as ``PAYMIG_DB_<name>``."""
    kind = "aurora" if name.startswith("AURORA") else "source"
    secret = session.client("secretsmanager").create_secret(
        Name=f"{stack}/{kind}/{name.lower()}-{uuid.uuid4().hex[:6]}",
        SecretString=json.dumps({"username": "postgres", "password": "trust-auth"}),
    )["ARN"]
    assert server.directory is not None
    pem = (Path(str(server.directory)) / "data" / "server.crt").read_text(encoding="ascii")
    parameter = f"/paymig/{stack}/ca/{name.lower()}"
    session.client("ssm").put_parameter(Name=parameter, Value=pem, Type="String", Overwrite=True)
    values: dict[str, Any] = {
        "name": name,
        "server": kind,
        "host": "127.0.0.1",
        "port": server.port,
        "dbname": "payments",
        "secret_arn": secret,
        "sslmode": "verify-full",
        "ca_parameter": parameter,
    }
    target = DatabaseTarget(**{**values, **override})
    monkeypatch.setenv(f"PAYMIG_DB_{name}", target.as_json())
    return target


def set_environment(
    monkeypatch: Any, config: PaymigConfig, validation: ValidationConfig
) -> dict[str, str]:
    """The validation functions' environment besides the database declarations."""
    variables = {
        "PAYMIG_STACK_NAME": config.stack_name,
        "PAYMIG_ENVIRONMENT": config.environment,
        "PAYMIG_TABLE_RULES": json.dumps(
            [{"schema_name": "public", "table_name": "%", "action": "include"}]
        ),
        "PAYMIG_LOB_MODE": "limited",
        "PAYMIG_VALIDATION": validation.model_dump_json(),
        "PAYMIG_CDC_THRESHOLD_SECONDS": "30",
        "PAYMIG_CDC_LOOKBACK_SECONDS": "300",
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    return variables


class LambdaContext:
    """What the handler reads of Lambda's context: the time left in the invocation."""

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)
