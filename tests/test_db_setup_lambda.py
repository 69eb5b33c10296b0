"""The database setup Lambda (`paymig.lambdas.db_setup.handler`) end to end: a real
PostgreSQL with TLS stands in for Aurora, moto stands in for Secrets Manager and SSM.

As in tests/test_db_setup.py, the stand-in is as close to Aurora as a local PostgreSQL 15
gets: the handler connects as ``aurora_master``, a ``CREATEROLE`` login that owns the
database and is not a superuser (like the RDS master user), and ``rds_replication`` is a
plain NOLOGIN role. The server has a certificate from a local CA and admits every login
but the test's own superuser only over TLS with a SCRAM password; the handler reads the
CA from (moto's) SSM and connects with ``verify-full``, exactly as on AWS.

One substitution, and why: pgaudit is not installed on this machine, so the handler's
work, ``set_up``, runs with ``aurora_server=False`` (which skips only ``CREATE EXTENSION
pgaudit`` and the master's ``pgaudit.log``; the Aurora statements are checked in
tests/test_logins.py). Everything else is the handler's own code.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from paymig.errors import ConfigError
from paymig.lambdas import db_setup
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.local.tls import LocalCertificateAuthority
from paymig.logins import login_for, logins_for
from paymig.runtime.db_setup import DbSetupError

pytestmark = pytest.mark.slow

MASTER = "aurora_master"
DATABASE = "payments"
CLIENTS = [login.client for login in logins_for("aurora")]


@dataclass
class Setup:
    """The stand-in server, its CA, and the secrets the handler reads and writes."""

    server: LocalPostgres
    ca: LocalCertificateAuthority
    secrets: Any  # boto3 Secrets Manager client on moto
    login_secrets: dict[str, str]
    master_password: str

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = db_setup.set_up(aurora_server=False)
        return result

    def value(self, client: str) -> dict[str, Any] | None:
        try:
            answer = self.secrets.get_secret_value(
                SecretId=self.login_secrets[client], VersionStage="AWSCURRENT"
            )
        except self.secrets.exceptions.ResourceNotFoundException:
            return None
        value: dict[str, Any] = json.loads(answer["SecretString"])
        return value

    def versions(self) -> dict[str, list[str]]:
        return {
            client: sorted(
                v["VersionId"]
                for v in self.secrets.list_secret_version_ids(SecretId=arn)["Versions"]
            )
            for client, arn in self.login_secrets.items()
        }

    def logs_in(self, user: str, password: str) -> bool:
        """Whether ``user`` logs in with ``password`` over verify-full."""
        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.server.port, dbname=DATABASE, user=user,
                password=password, sslmode="verify-full", sslrootcert=str(self.ca.certificate),
            ) as conn:  # fmt: skip
                return conn.execute("SELECT current_user").fetchone() == (user,)
        except psycopg.OperationalError:
            return False

    def superuser(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(DATABASE), autocommit=True)


def _tls_scram_only(server: LocalPostgres) -> None:
    """The test's superuser over plain loopback; everyone else over TLS with SCRAM."""
    assert server.directory is not None
    hba = server.directory / "data" / "pg_hba.conf"
    rules = (
        "host    all postgres 127.0.0.1/32 trust\n"
        "hostssl all all      127.0.0.1/32 scram-sha-256\n"
        "host    all all      127.0.0.1/32 reject\n"
    )
    hba.write_text(rules + hba.read_text())


@pytest.fixture
def setup(
    postgres_factory: Callable[..., LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Setup]:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    server = postgres_factory("aurora-setup", certificate_authority=ca)
    _tls_scram_only(server)
    master_password = secrets.token_urlsafe(24)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(MASTER), sql.Literal(master_password)
            )
        )
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER {MASTER}")
        conn.execute("CREATE ROLE rds_replication NOLOGIN")

    for name, value in moto_server.client_environment().items():
        monkeypatch.setenv(name, value)
    stack = f"paymig-test-{uuid.uuid4().hex[:8]}"
    sm = boto3.client("secretsmanager")
    # The RDS-managed master secret, and one empty secret per Aurora login (Terraform
    # creates them without a value).
    master_arn = sm.create_secret(
        Name=f"rds!cluster-{stack}",
        SecretString=json.dumps({"username": MASTER, "password": master_password}),
    )["ARN"]
    login_secrets = {
        client: sm.create_secret(Name=f"{stack}/aurora/{client}")["ARN"] for client in CLIENTS
    }
    parameter = f"/paymig/{stack}/ca/aurora"
    boto3.client("ssm").put_parameter(
        Name=parameter, Value=ca.certificate.read_text(), Type="String"
    )
    declaration = {
        "server": "aurora", "host": "127.0.0.1", "port": server.port, "dbname": DATABASE,
        "secret_arn": master_arn, "sslmode": "verify-full", "ca_parameter": parameter,
    }  # fmt: skip
    monkeypatch.setenv("PAYMIG_DB_AURORA", json.dumps(declaration))
    monkeypatch.setenv(db_setup.ENV_LOGIN_SECRETS, json.dumps(login_secrets))
    yield Setup(server, ca, sm, login_secrets, master_password)


def test_the_handler_sets_aurora_up_with_pgaudit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler is `set_up` as on Aurora; only this test's stand-in skips pgaudit."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(db_setup, "set_up", lambda **kwargs: calls.append(kwargs) or {})
    assert db_setup.handler({"check": "setup"}, None) == {}
    assert calls == [{}]  # the default: aurora_server=True


def test_first_run_creates_the_logins_and_stores_their_secrets(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """Pins defect 7: nothing created the target schema or the logins on Aurora."""
    caplog.set_level(logging.INFO, logger="paymig.db_setup")
    assert all(setup.value(client) is None for client in CLIENTS)
    result = setup.run()
    users = sorted(u for client in CLIENTS for u in login_for("aurora", client).users)
    assert result["passwords_set_for"] == users
    assert sorted(result["created"]) == sorted(
        role for client in CLIENTS for role in login_for("aurora", client).roles
    )
    assert result["checks"] and all(check["ok"] for check in result["checks"])
    passwords = []
    for client in CLIENTS:
        login = login_for("aurora", client)
        value = setup.value(client)
        assert value is not None
        assert {k: v for k, v in value.items() if k != "password"} == {
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": setup.server.port,
            "dbname": DATABASE,
            "username": login.base,
            "masterarn": json.loads(os.environ["PAYMIG_DB_AURORA"])["secret_arn"],
            "ca": "aurora",
        }
        assert len(value["password"]) == 40
        assert setup.logs_in(login.base, value["password"])
        passwords.append(value["password"])
    # The schema is there, without foreign keys (they come after the full load).
    with setup.superuser() as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        foreign_keys = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        ).fetchone()
    assert tables is not None and tables[0] >= 2
    assert foreign_keys == (0,)
    # No password in what Terraform keeps (the result) or in the function's log.
    text = json.dumps(result) + caplog.text
    for password in [*passwords, setup.master_password]:
        assert password not in text
    assert '"password"' not in text


def test_second_run_changes_nothing_and_keeps_the_passwords(setup: Setup) -> None:
    setup.run()
    before = {client: setup.value(client) for client in CLIENTS}
    versions = setup.versions()
    again = setup.run()
    assert (again["created"], again["passwords_set_for"]) == ([], [])
    assert all(check["ok"] for check in again["checks"])
    assert {client: setup.value(client) for client in CLIENTS} == before
    assert setup.versions() == versions
    for client, value in before.items():
        assert value is not None
        assert setup.logs_in(login_for("aurora", client).base, value["password"])


def test_a_failed_login_check_fails_the_apply_in_one_line(setup: Setup) -> None:
    """The checks run after the setup; one that fails raises (the invocation, and so the
    apply, fails) with one line naming what is wrong. A PUBLIC grant on a payment table
    is outside what the setup revokes (it revokes the logins' own grants), so the check
    is what catches it."""
    setup.run()
    before = setup.versions()
    with setup.superuser() as conn:
        conn.execute("GRANT TRUNCATE ON public.payments TO PUBLIC")
    with pytest.raises(db_setup.SetupFailedError) as info:
        setup.run()
    message = str(info.value)
    assert message.startswith(
        "aurora setup: logins not as they must be: login paymig_api: excess: TRUNCATE on "
        "public.payments; "
    )
    assert "\n" not in message
    assert setup.versions() == before


def test_a_login_only_a_superuser_could_fix_stops_the_setup_in_one_line(setup: Setup) -> None:
    """A run that cannot make a login what it must be raises one line before changing
    anything, and stores nothing more (the secrets keep their values)."""
    setup.run()
    before = setup.versions()
    with setup.superuser() as conn:
        conn.execute("ALTER ROLE paymig_validation BYPASSRLS")
    with pytest.raises(DbSetupError) as info:
        setup.run()
    message = str(info.value)
    assert message == (
        "paymig_validation has BYPASSRLS: only a superuser can remove it; the setup will "
        "not run over it"
    )
    assert "\n" not in message
    assert setup.versions() == before


def test_a_master_secret_without_a_value_is_one_line(setup: Setup) -> None:
    declaration = json.loads(os.environ["PAYMIG_DB_AURORA"])
    empty = setup.secrets.create_secret(Name=f"empty-{uuid.uuid4().hex[:8]}")["ARN"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAYMIG_DB_AURORA", json.dumps({**declaration, "secret_arn": empty}))
        with pytest.raises(ConfigError) as info:
            setup.run()
    assert str(info.value) == f"{empty}: the master secret has no value"
