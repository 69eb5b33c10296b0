"""The legacy side and the database stand-ins, against real PostgreSQL and the emulator."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from paymig.local.postgres import LocalPostgres
from paymig.local.tcp_proxy import TcpProxy
from paymig.payments_schema import apply_schema
from paymig.rehearsal.data import create_database
from paymig.rehearsal.function_env import LocalDatabase
from paymig.rehearsal.legacy_side import LegacySide
from paymig.rehearsal.stand_ins import (
    API_LOGIN,
    StandIn,
    declared_secrets,
    store_ca_parameter,
    store_logins,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def source(postgres_factory: Callable[..., LocalPostgres]) -> tuple[LocalPostgres, str]:
    """A TLS server with the payments schema and one account; yields it and the account."""
    server = postgres_factory("source", ssl=True)
    create_database(server.dsn(), "payments")
    create_database(server.dsn(), "payments")  # a second call finds it
    with psycopg.connect(server.dsn(dbname="payments"), autocommit=True) as conn:
        apply_schema(conn)
        row = conn.execute("INSERT INTO accounts (display_name) VALUES ('a') RETURNING id::text")
        account = str(row.fetchone()[0])  # type: ignore[index]
    return server, account


def _post(port: int, body: dict[str, Any] | str, key: str = "k-1") -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, str) else json.dumps(body)
    conn.request("POST", "/payments", body=data, headers={"Idempotency-Key": key,
                                                          "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def test_the_legacy_side_records_as_the_api_does(source: tuple[LocalPostgres, str]) -> None:
    server, account = source
    side = LegacySide(server.dsn(dbname="payments")).start()
    try:
        payment = {"merchant_id": "m-1", "account_id": account, "amount": "12.50",
                   "currency": "USD"}  # fmt: skip
        status, body = _post(side.port, payment)
        assert status == 201
        replay_status, replay = _post(side.port, payment)
        assert (replay_status, replay) == (200, body)  # idempotent: same key, same payment
        assert _post(side.port, "{not json")[0] == 400
        assert _get(side.port, "/health") == 200
        assert _get(side.port, "/nowhere") == 404
        with psycopg.connect(server.dsn(dbname="payments")) as conn:
            row = conn.execute("SELECT amount::text, idempotency_key FROM payments WHERE id = %s",
                               (body["payment_id"],)).fetchone()  # fmt: skip
        assert row == ("12.50", "k-1")
        server.stop()
        assert _post(side.port, payment, key="k-2")[0] == 503
        assert _get(side.port, "/health") == 503
    finally:
        side.stop()
        side.stop()


def test_the_api_login_is_admitted_over_tls_with_its_password_only(
    source: tuple[LocalPostgres, str], aws: Any
) -> None:
    server, _ = source
    with TcpProxy("127.0.0.1", server.port) as vpn:
        reach = LocalDatabase("127.0.0.1", vpn.port, server.tls_root_file, "via the proxy")
        found = {("192.0.2.20", 5432): StandIn(("192.0.2.20", 5432), server, reach, "payments")}
        secrets = aws.client("secretsmanager")
        arn = secrets.create_secret(Name="paymig-rehearsal/dms/source")["ARN"]
        variables = {"DB_HOST": "192.0.2.20", "DB_PORT": "5432", "DB_SECRET_ARN": arn}
        assert declared_secrets(variables) == {("192.0.2.20", 5432): arn}
        assert store_logins(secrets, variables, found) == [
            f"{arn}: login {API_LOGIN} on the source server"
        ]
        login = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        assert (login["username"], login["host"], login["port"], login["dbname"]) == (
            API_LOGIN, "192.0.2.20", 5432, "payments")  # fmt: skip
        # Through the VPN stand-in, verify-full against the server's certificate.
        dsn = (f"host=127.0.0.1 port={vpn.port} dbname=payments user={API_LOGIN} "
               f"sslrootcert={server.tls_root_file}")  # fmt: skip
        with psycopg.connect(dsn, sslmode="verify-full", password=login["password"]) as conn:
            assert conn.execute("SELECT count(*) FROM payments").fetchone() == (0,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, sslmode="disable", password=login["password"])
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, sslmode="verify-full", password="wrong")
        # A secret that holds a value is the operator's: it is kept.
        assert store_logins(secrets, variables, found) == [f"{arn}: already holds a value (kept)"]


def test_the_ca_parameter_gets_the_local_ca_and_keeps_its_type(aws: Any) -> None:
    ssm, kms = aws.client("ssm"), aws.client("kms")
    key = kms.create_key(Description="ca")["KeyMetadata"]["KeyId"]
    ssm.put_parameter(Name="/paymig/x/ca/source", Value="sample", Type="SecureString", KeyId=key)
    store_ca_parameter(ssm, "/paymig/x/ca/source", "LOCAL PEM")
    store_ca_parameter(ssm, "/paymig/x/ca/aurora", "OTHER PEM")
    found = {p["Name"]: p for p in ssm.describe_parameters()["Parameters"]}
    assert (found["/paymig/x/ca/source"]["Type"], found["/paymig/x/ca/aurora"]["Type"]) == (
        "SecureString", "String")  # fmt: skip
    value = ssm.get_parameter(Name="/paymig/x/ca/source", WithDecryption=True)["Parameter"]
    assert value["Value"] == "LOCAL PEM"
