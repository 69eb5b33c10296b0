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
from paymig.logins import user_names
from paymig.payments_schema import apply_schema
from paymig.rehearsal.data import create_database
from paymig.rehearsal.db_logins import SourceServer, prepare_source
from paymig.rehearsal.legacy_side import LegacySide
from paymig.rehearsal.stand_ins import store_ca_parameter

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


def test_the_dbas_script_makes_every_source_login_tls_and_password_only(
    source: tuple[LocalPostgres, str], aws: Any
) -> None:
    """Each source login gets its secret; the API's works through the VPN, with TLS only."""
    server, _ = source
    secrets = aws.client("secretsmanager")
    clients = ("api", "dms", "validation", "dms_apply", "rotation")
    for client in clients:  # Terraform creates them without a value
        secrets.create_secret(Name=f"paymig-rehearsal/source/{client}")
    lines = prepare_source(SourceServer(server, "payments", "192.0.2.20", 5432), secrets,
                           "paymig-rehearsal")  # fmt: skip
    assert [line.split(":")[0] for line in lines] == [
        f"paymig-rehearsal/source/{c}" for c in clients
    ]
    login = json.loads(
        secrets.get_secret_value(SecretId="paymig-rehearsal/source/api")["SecretString"]
    )
    assert (login["username"], login["host"], login["port"]) == ("paymig_api", "192.0.2.20", 5432)
    assert all(login["password"] not in line for line in lines)
    with psycopg.connect(server.dsn(dbname="payments"), autocommit=True) as conn:
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolcanlogin")}
    assert set(user_names("source")) <= roles
    with TcpProxy("127.0.0.1", server.port) as vpn:
        # Through the VPN stand-in, verify-full against the server's certificate.
        dsn = (f"host=127.0.0.1 port={vpn.port} dbname=payments user=paymig_api "
               f"sslrootcert={server.tls_root_file}")  # fmt: skip
        with psycopg.connect(dsn, sslmode="verify-full", password=login["password"]) as conn:
            assert conn.execute("SELECT count(*) FROM payments").fetchone() == (0,)
            # The API's login records payments and never deletes (paymig.logins).
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM payments")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, sslmode="disable", password=login["password"])
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, sslmode="verify-full", password="wrong")


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
