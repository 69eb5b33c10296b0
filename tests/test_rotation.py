"""The rotation Lambda against a real PostgreSQL and moto's Secrets Manager.

The server has TLS with a certificate from a local CA and lets every login but the
test's own superuser in only over TLS with a SCRAM password; the handler verifies it
with ``verify-full``. ``log_statement = all`` records every statement, so the log can
be searched for passwords.

moto cannot run the Lambda itself: without Docker its Lambda backend answers the four
invocations RotateSecret makes without running any code. So each rotation here plays
Secrets Manager's part: RotateSecret (naming a function registered in moto) stages a
new, empty version AWSPENDING, as AWS does before the first step, then the test calls
the handler with the four events AWS sends, in order.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from paymig.lambdas import payment_api_connections as api_connections
from paymig.lambdas import rotation as rot
from paymig.lambdas import rotation_roles as rot_roles
from paymig.lambdas import rotation_secrets as rot_secrets
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.local.tls import LocalCertificateAuthority
from paymig.runtime.database_env import DatabaseTarget

ADMIN, APP, CLONE = "paymig_rotation", "payment_api", "payment_api_clone"
APP_GROUPS = frozenset({("payments_app", False), ("payments_audit", True)})
CA_NAME = "aurora"  # the server whose declared CA verifies the test server


def wait_until(condition: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a hung test."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@dataclass
class Rotation:
    """A database with a user pair's secret and its admin secret, and a rotation driver."""

    server: LocalPostgres
    ca: LocalCertificateAuthority
    sm: Any
    function_arn: str
    app_secret: str
    admin_secret: str
    passwords: dict[str, str]  # initial passwords by user

    def superuser(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(dbname="payments"), autocommit=True)

    def login(self, user: str, password: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.server.port, dbname="payments", user=user,
            password=password, sslmode="verify-full", sslrootcert=str(self.ca.certificate),
        )  # fmt: skip

    def logs_in(self, user: str, password: str) -> bool:
        try:
            self.login(user, password).close()
        except psycopg.OperationalError as error:
            assert "password authentication failed" in str(error)
            return False
        return True

    def create_secret(self, value: dict[str, Any]) -> str:
        arn: str = self.sm.create_secret(
            Name=f"paymig-test/rotation/{uuid.uuid4()}", SecretString=json.dumps(value)
        )["ARN"]
        return arn

    def app_value(self, user: str = APP, **changes: Any) -> dict[str, Any]:
        value = {"engine": "postgres", "host": "127.0.0.1", "port": self.server.port,
                 "dbname": "payments", "username": user, "password": self.passwords[user],
                 "ca": CA_NAME, "masterarn": self.admin_secret, "note": "kept"}  # fmt: skip
        value.update(changes)
        return value

    def start(self, secret: str) -> str:
        """What Secrets Manager does first: stage a new, empty version AWSPENDING."""
        token: str = self.sm.rotate_secret(
            SecretId=secret, RotationLambdaARN=self.function_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
        )["VersionId"]  # fmt: skip
        return token

    def step(self, secret: str, token: str, step: str) -> None:
        rot.handler({"Step": step, "SecretId": secret, "ClientRequestToken": token}, None)

    def rotate(self, secret: str, *, twice: bool = False) -> str:
        token = self.start(secret)
        for step in rot_secrets.STEPS:
            self.step(secret, token, step)
            if twice:
                self.step(secret, token, step)
        return token

    def value(self, secret: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        answer = self.sm.get_secret_value(SecretId=secret, VersionStage=stage)
        value: dict[str, Any] = json.loads(answer["SecretString"])
        return value

    def stages(self, secret: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self.sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        return {version: sorted(labels) for version, labels in found.items() if labels}

    def verifier(self, user: str) -> str | None:
        with self.superuser() as conn:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,))
            found = row.fetchone()
        return None if found is None or found[0] is None else str(found[0])

    def profile(self, user: str) -> rot_roles.RoleProfile | None:
        with self.superuser() as conn:
            return rot_roles.read_role_profile(conn, user)


def _function_zip() -> bytes:
    """The handler's source, for moto to register (it never runs it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("paymig/lambdas/rotation.py", Path(rot.__file__).read_text())
    return buffer.getvalue()


def _restrict_logins_to_tls_scram(server: LocalPostgres) -> None:
    assert server.directory is not None
    hba = server.directory / "data" / "pg_hba.conf"
    rules = (
        "host    all postgres 127.0.0.1/32 trust\n"
        "hostssl all all      127.0.0.1/32 scram-sha-256\n"
        "host    all all      127.0.0.1/32 reject\n"
    )
    hba.write_text(rules + hba.read_text())


@pytest.fixture
def rotation_env(
    postgres_factory: Callable[..., LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Rotation]:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    server = postgres_factory("rotation", certificate_authority=ca,
                              settings={"log_statement": "'all'"})  # fmt: skip
    _restrict_logins_to_tls_scram(server)
    passwords = {ADMIN: "Adm1nInitialPassw0rdForTests", APP: "App1nitialPassw0rdForTests"}
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE DATABASE payments")
    with psycopg.connect(server.dsn(dbname="payments"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE")
        conn.execute("CREATE ROLE payments_app NOLOGIN")
        conn.execute("CREATE ROLE payments_audit NOLOGIN")
        conn.execute("CREATE TABLE payments (id int PRIMARY KEY)")
        conn.execute("GRANT SELECT, INSERT ON payments TO payments_app")
        conn.execute(f"CREATE ROLE {APP} LOGIN IN ROLE payments_app")
        conn.execute(f"GRANT payments_audit TO {APP} WITH ADMIN OPTION")
        for user, password in passwords.items():
            rot_roles.set_role_password(conn, user, password)

    for name, value in moto_server.client_environment().items():
        monkeypatch.setenv(name, value)
    declare_ca(monkeypatch, CA_NAME, ca.certificate.read_text())
    sm = boto3.client("secretsmanager")
    iam, lam = boto3.client("iam"), boto3.client("lambda")
    name = f"paymig-test-rotation-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function_arn = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler=rot.ROTATION_HANDLER,
        Code={"ZipFile": _function_zip()},
    )["FunctionArn"]  # fmt: skip
    env = Rotation(server, ca, sm, function_arn, "", "", passwords)
    env.admin_secret = env.create_secret({"username": ADMIN, "password": passwords[ADMIN]})
    env.app_secret = env.create_secret(env.app_value())
    yield env


def declare_ca(monkeypatch: pytest.MonkeyPatch, server: str, pem: str) -> None:
    """Declare one server the way the stack does, with its CA bundle in (moto's) SSM."""
    parameter = f"/paymig/test/ca/{server}"
    boto3.client("ssm").put_parameter(Name=parameter, Value=pem, Type="String", Overwrite=True)
    declaration = {
        "server": server, "host": "127.0.0.1", "port": 5432, "dbname": "postgres",
        "secret_arn": "arn:aws:secretsmanager:us-east-2:123456789012:secret:admin",
        "sslmode": "verify-full", "ca_parameter": parameter,
    }  # fmt: skip
    monkeypatch.setenv(f"PAYMIG_DB_{server.upper()}", json.dumps(declaration))
    rot._CA_FILES.clear()


@pytest.fixture(autouse=True)
def _fresh_ca_cache() -> Iterator[None]:
    """Each test fetches its own CA bundles (the handler caches them per environment)."""
    rot._CA_FILES.clear()
    yield
    rot._CA_FILES.clear()


# ================================================================ the four steps


def test_first_rotation_clones_the_user_and_every_step_is_idempotent(
    rotation_env: Rotation,
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    app_verifier = env.verifier(APP)
    token = env.start(secret)

    env.step(secret, token, "createSecret")
    pending = env.value(secret, "AWSPENDING")
    env.step(secret, token, "createSecret")
    assert env.value(secret, "AWSPENDING") == pending  # the same password, not a new one
    assert pending == {**env.app_value(), "username": CLONE, "password": pending["password"]}
    assert re.fullmatch(r"[A-Za-z0-9]{40}", pending["password"])
    assert env.profile(CLONE) is None  # nothing in the database yet

    env.step(secret, token, "setSecret")
    env.step(secret, token, "setSecret")
    clone = env.profile(CLONE)
    assert clone == rot_roles.RoleProfile(frozenset(), -1, APP_GROUPS) == env.profile(APP)
    assert env.logs_in(CLONE, pending["password"])
    assert (env.verifier(APP), env.logs_in(APP, env.passwords[APP])) == (app_verifier, True)

    for _ in range(2):
        env.step(secret, token, "testSecret")
    assert env.value(secret)["username"] == APP  # clients still get the current user

    old = next(v for v, s in env.stages(secret).items() if s == ["AWSCURRENT"])
    env.step(secret, token, "finishSecret")
    assert env.stages(secret) == {token: ["AWSCURRENT"], old: ["AWSPREVIOUS"]}
    clone_verifier = env.verifier(CLONE)
    for step in rot_secrets.STEPS:  # a late retry of any step changes nothing
        env.step(secret, token, step)
    assert env.stages(secret) == {token: ["AWSCURRENT"], old: ["AWSPREVIOUS"]}
    assert (env.verifier(CLONE), env.verifier(APP)) == (clone_verifier, app_verifier)
    assert env.value(secret) == pending
    with env.login(CLONE, pending["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (0,)


def test_rotations_alternate_and_old_credentials_work_until_the_second(
    rotation_env: Rotation,
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    first = env.rotate(secret, twice=True)
    after_first = env.value(secret)
    assert after_first["username"] == CLONE
    assert env.logs_in(APP, env.passwords[APP])  # the current user's password never changed

    second = env.rotate(secret, twice=True)
    after_second = env.value(secret)
    assert after_second["username"] == APP
    assert after_second["password"] not in (env.passwords[APP], after_first["password"])
    assert not env.logs_in(APP, env.passwords[APP])  # now, and only now, re-reading is needed
    assert env.logs_in(APP, after_second["password"])
    assert env.logs_in(CLONE, after_first["password"])  # AWSPREVIOUS still works
    assert env.value(secret, "AWSPREVIOUS") == after_first
    assert env.stages(secret)[first] == ["AWSPREVIOUS"]
    assert env.stages(secret)[second] == ["AWSCURRENT"]

    env.rotate(secret)
    assert env.value(secret)["username"] == CLONE
    assert not env.logs_in(CLONE, after_first["password"])
    assert env.logs_in(APP, after_second["password"])


def test_passwords_reach_neither_the_server_log_nor_the_function_log(
    rotation_env: Rotation, caplog: pytest.LogCaptureFixture
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    caplog.set_level(logging.INFO, logger="paymig.rotation")
    env.rotate(secret)  # creates the clone
    env.rotate(secret)  # alters the base user
    passwords = [env.value(secret, "AWSPREVIOUS")["password"], env.value(secret)["password"]]
    log = env.server.log_file.read_text()
    # The statements were logged, with verifiers in place of passwords ...
    assert re.search(rf"""CREATE ROLE "{CLONE}" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$4096:""", log)
    assert re.search(rf"""ALTER ROLE "{APP}" WITH PASSWORD 'SCRAM-SHA-256\$4096:""", log)
    # ... and no password is anywhere.
    for password in passwords:
        assert password not in log
        assert password not in caplog.text
    assert '"password"' not in caplog.text
    assert "finishSecret: version" in caplog.text


# ================================================================ refusals


def test_a_replication_user_is_not_cloned_and_a_dba_made_pair_rotates(
    rotation_env: Rotation,
) -> None:
    env = rotation_env
    with env.superuser() as conn:
        conn.execute("CREATE ROLE dba LOGIN SUPERUSER")
        conn.execute("CREATE ROLE dms_source LOGIN REPLICATION IN ROLE payments_app")
        rot_roles.set_role_password(conn, "dba", "DbaPassw0rdForTheTests")
        rot_roles.set_role_password(conn, "dms_source", "DmsPassw0rdForTheTests")
    # PostgreSQL 15 lets only a superuser change a REPLICATION role's password.
    dba = env.create_secret({"username": "dba", "password": "DbaPassw0rdForTheTests"})
    secret = env.create_secret(
        {**env.app_value(), "username": "dms_source", "password": "DmsPassw0rdForTheTests",
         "masterarn": dba}
    )  # fmt: skip
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    with pytest.raises(rot_secrets.RotationError) as refused:
        env.step(secret, token, "setSecret")
    assert str(refused.value) == (
        "user 'dms_source' has REPLICATION, which only a superuser can give a new role: a DBA "
        "must create 'dms_source_clone' with the same attributes, groups and privileges (SQL "
        "in paymig.lambdas.rotation)"
    )
    assert env.profile("dms_source_clone") is None
    assert env.value(secret)["username"] == "dms_source"

    with env.superuser() as conn:  # what the docstring tells the DBA to run
        conn.execute("CREATE ROLE dms_source_clone LOGIN REPLICATION IN ROLE payments_app")
    for step in rot_secrets.STEPS[1:]:  # Secrets Manager retries the failed step, then goes on
        env.step(secret, token, step)
    current = env.value(secret)
    assert current["username"] == "dms_source_clone"
    assert env.logs_in("dms_source_clone", current["password"])


def test_a_user_with_direct_privileges_is_not_cloned(rotation_env: Rotation) -> None:
    env = rotation_env
    with env.superuser() as conn:
        conn.execute("CREATE ROLE reporting LOGIN IN ROLE payments_audit")
        conn.execute("GRANT SELECT ON payments TO reporting")
        rot_roles.set_role_password(conn, "reporting", "ReportingPassw0rdForTests")
    secret = env.create_secret(
        {**env.app_value(), "username": "reporting", "password": "ReportingPassw0rdForTests"}
    )
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    with pytest.raises(rot_secrets.RotationError, match=r"^user 'reporting' owns objects or holds "
                       r"privileges granted to it directly \(1 catalog entries\)"):  # fmt: skip
        env.step(secret, token, "setSecret")
    assert env.profile("reporting_clone") is None


def test_drift_between_the_pair_stops_the_rotation_before_clients_switch(
    rotation_env: Rotation,
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    env.step(secret, token, "setSecret")
    with env.superuser() as conn:
        conn.execute(f"REVOKE payments_audit FROM {CLONE}")
    with pytest.raises(rot_secrets.RotationError) as drift:
        env.step(secret, token, "testSecret")
    assert str(drift.value) == (
        f"user '{CLONE}' differs from '{APP}': lacks membership in payments_audit "
        "(with admin option)"
    )
    assert env.value(secret)["username"] == APP
    with env.superuser() as conn:
        conn.execute(f"GRANT payments_audit TO {CLONE} WITH ADMIN OPTION")
    env.step(secret, token, "testSecret")
    env.step(secret, token, "finishSecret")

    with env.superuser() as conn:  # the base user gains a group its clone lacks
        conn.execute("CREATE ROLE payments_extra NOLOGIN")
        conn.execute(f"GRANT payments_extra TO {APP}")
    app_verifier = env.verifier(APP)
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    with pytest.raises(rot_secrets.RotationError) as drift:
        env.step(secret, token, "setSecret")
    assert str(drift.value) == (
        f"user '{APP}' differs from '{CLONE}': has extra membership in payments_extra"
    )
    assert env.verifier(APP) == app_verifier  # refused before touching the password


def test_test_secret_checks_who_the_pending_login_really_is(rotation_env: Rotation) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    env.step(secret, token, "setSecret")
    with env.superuser() as conn:  # a role setting that turns the login into another role
        conn.execute(f"ALTER ROLE {CLONE} SET role = 'payments_app'")
    with pytest.raises(rot_secrets.RotationError) as caught:
        env.step(secret, token, "testSecret")
    assert str(caught.value) == f"logged in as '{CLONE}', but current_user is 'payments_app'"
    with env.superuser() as conn:
        conn.execute(f"ALTER ROLE {CLONE} RESET role")
        conn.execute(f"DROP ROLE {APP}")
    with pytest.raises(rot_secrets.RotationError, match=rf"^user '{APP}' does not exist$"):
        env.step(secret, token, "testSecret")
    assert env.value(secret)["username"] == APP  # never finished


def test_a_secret_that_is_not_json_fails_the_step(rotation_env: Rotation) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    env.sm.put_secret_value(SecretId=secret, SecretString="not json")
    token = env.start(secret)
    with pytest.raises(rot_secrets.RotationError) as caught:
        env.step(secret, token, "createSecret")
    assert str(caught.value) == f"secret {secret} (AWSCURRENT): not a JSON object"


def test_current_credentials_must_log_in_before_the_admin_acts(rotation_env: Rotation) -> None:
    """Whoever can write the secret cannot have the admin reset another user's password."""
    env = rotation_env
    with env.superuser() as conn:
        conn.execute("CREATE ROLE victim LOGIN")
        conn.execute("CREATE ROLE victim_clone LOGIN")
    secret = env.create_secret({**env.app_value(), "username": "victim", "password": "guess"})
    token = env.start(secret)
    env.step(secret, token, "createSecret")
    with pytest.raises(
        rot_secrets.RotationError, match=r"^user 'victim' cannot log in to 127\.0\.0\.1:"
    ):
        env.step(secret, token, "setSecret")
    assert env.verifier("victim_clone") is None


def test_steps_refuse_unless_rotation_is_enabled_and_the_version_pending(
    rotation_env: Rotation, caplog: pytest.LogCaptureFixture
) -> None:
    env, secret, unknown = rotation_env, rotation_env.app_secret, str(uuid.uuid4())
    first = env.rotate(secret)
    with pytest.raises(rot_secrets.RotationError, match=r"has no staging label for rotation$"):
        env.step(secret, unknown, "createSecret")
    second = env.rotate(secret)
    with pytest.raises(
        rot_secrets.RotationError, match=rf"^version {first} is not staged AWSPENDING$"
    ):
        env.step(secret, first, "setSecret")
    env.step(secret, second, "setSecret")  # already AWSCURRENT: a no-op
    third = env.start(secret)
    env.sm.cancel_rotate_secret(SecretId=secret)  # a late invocation after a cancel
    with pytest.raises(
        rot_secrets.RotationError, match=r"^rotation is not enabled for the secret$"
    ):
        env.step(secret, third, "createSecret")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"createSecret failed for {secret} version {unknown}: RotationError: version {unknown} "
        "has no staging label for rotation",
        f"setSecret failed for {secret} version {first}: RotationError: version {first} is not "
        "staged AWSPENDING",
        f"createSecret failed for {secret} version {third}: RotationError: rotation is not "
        "enabled for the secret",
    ]
    with pytest.raises(rot_secrets.RotationError, match=r"^event: Step missing or not a string$"):
        rot.handler({"SecretId": secret, "ClientRequestToken": second}, None)


def test_a_misconfigured_ca_fails_the_first_step_with_one_line(
    rotation_env: Rotation, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    token = env.start(secret)
    for name in [n for n in list(__import__("os").environ) if n.startswith("PAYMIG_DB_")]:
        monkeypatch.delenv(name)
    declare_ca(monkeypatch, "source", env.ca.certificate.read_text())
    with pytest.raises(rot_secrets.RotationError):
        env.step(secret, token, "createSecret")
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == (
        f"createSecret failed for {secret} version {token}: RotationError: secret {secret} "
        f"(AWSCURRENT): field 'ca' names '{CA_NAME}', which the PAYMIG_DB_* declarations lack"
    )
    monkeypatch.delenv("PAYMIG_DB_SOURCE")
    rot._CA_FILES.clear()
    with pytest.raises(
        rot_secrets.RotationError, match=r"PAYMIG_DB_\*: the function declares no database"
    ):
        env.step(secret, token, "createSecret")


# ================================================================ single user


def test_single_user_rotation_of_an_admin_secret(rotation_env: Rotation) -> None:
    env = rotation_env
    admin = env.admin_secret
    env.sm.put_secret_value(  # the on-prem shape: a full secret without masterarn
        SecretId=admin,
        SecretString=json.dumps({**env.app_value(ADMIN), "masterarn": None}),
    )
    token = env.start(admin)
    env.step(admin, token, "createSecret")
    new_password = env.value(admin, "AWSPENDING")["password"]
    assert env.value(admin, "AWSPENDING")["username"] == ADMIN
    env.step(admin, token, "setSecret")
    env.step(admin, token, "setSecret")  # the old password fails now; the new one is set
    assert not env.logs_in(ADMIN, env.passwords[ADMIN])
    assert env.logs_in(ADMIN, new_password)
    env.step(admin, token, "testSecret")
    env.step(admin, token, "finishSecret")
    assert env.value(admin)["password"] == new_password
    assert env.profile(f"{ADMIN}_clone") is None

    env.rotate(env.app_secret)  # the rotated admin secret still serves the pair
    assert env.value(env.app_secret)["username"] == CLONE


def test_single_user_set_fails_clearly_when_no_password_logs_in(rotation_env: Rotation) -> None:
    env = rotation_env
    admin = env.admin_secret
    env.sm.put_secret_value(
        SecretId=admin, SecretString=json.dumps({**env.app_value(ADMIN), "masterarn": None})
    )
    token = env.start(admin)
    env.step(admin, token, "createSecret")
    with env.superuser() as conn:
        rot_roles.set_role_password(conn, ADMIN, "SomebodyElseChangedIt0")
    with pytest.raises(rot_secrets.RotationError, match=r"^neither the current nor the pending password "
                       r"logs in: user 'paymig_rotation' cannot log in"):  # fmt: skip
        env.step(admin, token, "setSecret")


# ================================================================ clients


class _CountingSecrets:
    """Secrets Manager (moto) with the GetSecretValue calls counted."""

    def __init__(self, client: Any) -> None:
        self.client, self.reads = client, 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)


def test_a_client_that_rereads_on_login_failure_never_fails_across_two_rotations(
    rotation_env: Rotation,
) -> None:
    env, secret = rotation_env, rotation_env.app_secret
    counting = _CountingSecrets(boto3.client("secretsmanager"))
    declared = DatabaseTarget(
        name="SOURCE", server="source", host="127.0.0.1", port=env.server.port,
        dbname="payments", secret_arn=secret, sslmode="verify-full", ca_parameter="(unused)",
    )  # fmt: skip
    credentials = api_connections.SecretCredentials(counting, declared, env.ca.certificate)
    users: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client_loop() -> None:  # connect + SELECT, as often as it can
        while not stop.is_set():
            try:
                with credentials.connect() as conn:
                    row = conn.execute("SELECT current_user, count(*) FROM payments").fetchone()
                    assert row is not None and row[1] == 0
                    users.append(str(row[0]))
            except Exception as error:
                failures.append(repr(error))

    def more(count: int) -> Callable[[], bool]:
        target = len(users) + count
        return lambda: len(users) >= target or bool(failures)

    thread = threading.Thread(target=client_loop, daemon=True)
    thread.start()
    try:
        wait_until(more(3), "the client connects")
        env.rotate(secret)  # rotation 1: the client's cached user stays valid
        wait_until(more(3), "the client connects after rotation 1")
        assert (set(users), counting.reads) == ({APP}, 1)
        token = env.start(secret)  # rotation 2 changes the cached user's password ...
        env.step(secret, token, "createSecret")
        env.step(secret, token, "setSecret")
        wait_until(lambda: CLONE in users or bool(failures), "the client re-reads")
        env.step(secret, token, "testSecret")
        env.step(secret, token, "finishSecret")
        wait_until(more(3), "the client connects after rotation 2")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == []
    switch = users.index(CLONE)
    assert set(users[:switch]) == {APP} and set(users[switch:]) == {CLONE}
    assert counting.reads == 2  # once at start, once after the failed login
