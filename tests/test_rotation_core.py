"""The rotation Lambda's pure core: events, staging, secrets, pairs, role comparison."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from paymig.lambdas import rotation as rot
from paymig.lambdas import rotation_roles as rot_roles
from paymig.lambdas import rotation_secrets as rot_secrets

ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:paymig/app-AbCdEf"
ADMIN_ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:rds!cluster-1-XyZ"
WHERE = f"secret {ARN} (AWSCURRENT)"
PASSWORD = "Zq3v9Kp2Lm8Rt4Wx6Yb1Nc5Hd7Fg0Js2Ea"  # a sample value the tests look for


def secret_value(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "engine": "postgres", "host": "db.example.test", "port": 5432, "dbname": "payments",
        "username": "payment_api", "password": PASSWORD, "ca": "rds", "masterarn": ADMIN_ARN,
    }  # fmt: skip
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def parsed(**changes: Any) -> rot_secrets.DbSecret:
    return rot_secrets.parse_db_secret(secret_value(**changes), WHERE)


# ---------------------------------------------------------------- events and staging


def test_parse_event_reads_the_three_keys() -> None:
    event = {
        "Step": "setSecret",
        "SecretId": ARN,
        "ClientRequestToken": "t-1",
        "RotationToken": "x",
    }
    assert rot_secrets.parse_event(event) == rot_secrets.RotationEvent(ARN, "t-1", "setSecret")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"Step": "setSecret", "ClientRequestToken": "t"}, "event: SecretId missing or not a string"),
        ({"Step": "setSecret", "SecretId": ARN, "ClientRequestToken": ""},
         "event: ClientRequestToken missing or not a string"),
        ({"SecretId": ARN, "ClientRequestToken": "t", "Step": 3}, "event: Step missing or not a string"),
        ({"SecretId": ARN, "ClientRequestToken": "t", "Step": "rotate"},
         "event: Step 'rotate' is not one of createSecret, setSecret, testSecret, finishSecret"),
    ],
)  # fmt: skip
def test_parse_event_refuses_what_secrets_manager_never_sends(
    event: dict[str, Any], message: str
) -> None:
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.parse_event(event)
    assert str(caught.value) == message


def test_must_run_follows_the_staging_labels() -> None:
    stages = {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"], "v0": ["AWSPREVIOUS"]}
    metadata = {"RotationEnabled": True, "VersionIdsToStages": stages}
    assert rot_secrets.must_run(metadata, "v2") is True
    assert rot_secrets.must_run(metadata, "v1") is False  # already finished: nothing to do
    for token, message in [
        ("v9", "version v9 has no staging label for rotation"),
        ("v0", "version v0 is not staged AWSPENDING"),
    ]:
        with pytest.raises(rot_secrets.RotationError) as caught:
            rot_secrets.must_run(metadata, token)
        assert str(caught.value) == message
    with pytest.raises(
        rot_secrets.RotationError, match=r"^rotation is not enabled for the secret$"
    ):
        rot_secrets.must_run({**metadata, "RotationEnabled": False}, "v2")
    assert rot_secrets.must_run({"VersionIdsToStages": stages}, "v2") is True


def test_current_version_is_the_one_labelled_awscurrent() -> None:
    stages = {"v1": ["AWSPREVIOUS"], "v2": ["AWSCURRENT", "AWSPENDING"]}
    assert rot_secrets.current_version({"VersionIdsToStages": stages}) == "v2"
    with pytest.raises(
        rot_secrets.RotationError, match="no version of the secret is staged AWSCURRENT"
    ):
        rot_secrets.current_version({"VersionIdsToStages": {"v1": ["AWSPENDING"]}})


# ---------------------------------------------------------------- secrets


def test_parse_db_secret_reads_the_contract_and_hides_the_password() -> None:
    secret = parsed(port="6432")
    assert secret == rot_secrets.DbSecret(
        host="db.example.test", port=6432, dbname="payments", username="payment_api",
        password=PASSWORD, ca="rds", masterarn=ADMIN_ARN,
    )  # fmt: skip
    assert secret.alternating
    assert PASSWORD not in repr(secret)
    assert not parsed(masterarn=None).alternating


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"engine": "mysql"}, "field 'engine' must be 'postgres'"),
        ({"port": True}, "field 'port' must be a port number"),
        ({"port": 70000}, "field 'port' must be a port number"),
        ({"port": "54a"}, "field 'port' must be a port number"),
        ({"host": None}, "field 'host' missing or not a non-empty string"),
        ({"dbname": ""}, "field 'dbname' missing or not a non-empty string"),
        ({"username": 7}, "field 'username' missing or not a non-empty string"),
        ({"password": None}, "field 'password' missing or not a non-empty string"),
        ({"ca": None}, "field 'ca' missing or not a non-empty string"),
        ({"masterarn": ""}, "field 'masterarn' must be a secret ARN when present"),
    ],
)
def test_parse_db_secret_names_the_bad_field_never_a_value(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.parse_db_secret(secret_value(**changes), WHERE)
    assert str(caught.value) == f"{WHERE}: {message}"
    assert PASSWORD not in str(caught.value)


def test_admin_secret_is_a_login_on_the_rotated_host() -> None:
    current = parsed()
    where = f"secret {ADMIN_ARN} (AWSCURRENT)"
    rds_managed = rot_secrets.parse_admin_secret(
        {"username": "master", "password": "pw"}, where, current
    )
    assert rds_managed == rot_secrets.Login("master", "pw")
    assert "pw" not in repr(rds_managed)
    same_host = {"username": "dba", "password": "pw", "host": "db.example.test"}
    assert rot_secrets.parse_admin_secret(same_host, where, current).username == "dba"
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.parse_admin_secret({**same_host, "host": "other.test"}, where, current)
    assert str(caught.value) == (
        f"{where}: names host 'other.test', but the rotated secret's host is 'db.example.test'"
    )
    with pytest.raises(rot_secrets.RotationError, match="field 'password' missing"):
        rot_secrets.parse_admin_secret({"username": "dba"}, where, current)


def test_partner_username_alternates_within_postgres_name_length() -> None:
    assert rot_secrets.partner_username("payment_api") == "payment_api_clone"
    assert rot_secrets.partner_username("payment_api_clone") == "payment_api"
    assert rot_secrets.partner_username("_clone") == "_clone_clone"
    assert rot_secrets.partner_username("a" * 57) == "a" * 57 + "_clone"
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.partner_username("a" * 58)
    assert str(caught.value) == (
        f"user '{'a' * 58}': with '_clone' appended the name exceeds PostgreSQL's 63 bytes"
    )


def test_pending_version_keeps_every_other_field() -> None:
    current = secret_value(dbClusterIdentifier="paymig-prod")
    pending = rot_secrets.pending_value(current, "payment_api_clone", "new")
    assert pending == {**current, "username": "payment_api_clone", "password": "new"}
    assert current["username"] == "payment_api"  # not modified in place
    assert rot_secrets.pending_username(parsed()) == "payment_api_clone"
    assert rot_secrets.pending_username(parsed(masterarn=None)) == "payment_api"


def test_check_pending_refuses_another_target_or_user() -> None:
    current = parsed()
    where = f"secret {ARN} (AWSPENDING)"
    rot_secrets.check_pending(current, parsed(username="payment_api_clone", password="x"), where)
    for changes, detail in [
        ({"host": "evil.test"}, "field 'host' differs from the AWSCURRENT version's"),
        ({"port": 5433}, "field 'port' differs from the AWSCURRENT version's"),
        ({"masterarn": None}, "field 'masterarn' differs from the AWSCURRENT version's"),
        ({"username": "postgres"},
         "names user 'postgres'; only 'payment_api_clone' may follow 'payment_api'"),
        ({"username": "payment_api"},
         "names user 'payment_api'; only 'payment_api_clone' may follow 'payment_api'"),
    ]:  # fmt: skip
        pending = parsed(**{"username": "payment_api_clone", **changes})
        with pytest.raises(rot_secrets.RotationError) as caught:
            rot_secrets.check_pending(current, pending, where)
        assert str(caught.value) == f"{where}: {detail}"
    single = parsed(masterarn=None)
    rot_secrets.check_pending(single, parsed(masterarn=None, password="x"), where)


class _Ssm:
    """An SSM client that answers GetParameter from a dict (pure unit test: no emulator)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls = 0

    def get_parameter(self, Name: str) -> dict[str, Any]:
        self.calls += 1
        return {"Parameter": {"Value": self.values[Name]}}


def _declaration(server: str, parameter: str) -> str:
    return json.dumps({
        "server": server, "host": "h", "port": 5432, "dbname": "d", "secret_arn": "a",
        "sslmode": "verify-full", "ca_parameter": parameter,
    })  # fmt: skip


def test_ca_files_come_from_the_declared_servers(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\n"
    ssm = _Ssm({"/p/ca/aurora": pem, "/p/ca/source": pem})
    env = {"PAYMIG_DB_AURORA": _declaration("aurora", "/p/ca/aurora"),
           "PAYMIG_DB_SOURCE": _declaration("source", "/p/ca/source")}  # fmt: skip
    files = rot_secrets.ca_files_from_declarations(env, ssm, tmp_path)
    assert sorted(files) == ["aurora", "source"]
    assert Path(rot_secrets.ca_file(files, "aurora", WHERE)).read_text() == pem
    assert ssm.calls == 2
    for bad_env, message in [
        ({}, "PAYMIG_DB_*: the function declares no database"),
        ({"PAYMIG_DB_AURORA": "{"}, "PAYMIG_DB_AURORA: not JSON"),
    ]:
        with pytest.raises(rot_secrets.RotationError) as caught:
            rot_secrets.ca_files_from_declarations(bad_env, ssm, tmp_path)
        assert str(caught.value) == message
    not_pem = _Ssm({"/p/ca/aurora": "hello"})
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.ca_files_from_declarations(
            {"PAYMIG_DB_AURORA": _declaration("aurora", "/p/ca/aurora")}, not_pem, tmp_path
        )
    assert str(caught.value) == "/p/ca/aurora: the SSM parameter holds no PEM certificate"
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.ca_file({"aurora": str(files["aurora"])}, "source", WHERE)
    assert str(caught.value) == (
        f"{WHERE}: field 'ca' names 'source', which the PAYMIG_DB_* declarations lack"
    )
    with pytest.raises(rot_secrets.RotationError) as caught:
        rot_secrets.ca_file({"aurora": str(tmp_path / "gone.pem")}, "aurora", WHERE)
    assert str(caught.value) == (
        f"the PAYMIG_DB_* declarations: 'aurora' maps to {tmp_path / 'gone.pem'}, which is not "
        "a file"
    )


# ---------------------------------------------------------------- roles


def profile(
    *attributes: str, limit: int = -1, groups: tuple[tuple[str, bool], ...] = ()
) -> rot_roles.RoleProfile:
    return rot_roles.RoleProfile(frozenset(attributes), limit, frozenset(groups))


def test_profile_differences_list_every_difference() -> None:
    base = profile("CREATEDB", groups=(("payments_app", False), ("audit", True)))
    assert rot_roles.profile_differences(base, base) == []
    other = profile(
        "CREATEDB", "REPLICATION", limit=5, groups=(("payments_app", False), ("extra", False))
    )
    assert rot_roles.profile_differences(base, other) == [
        "attributes [CREATEDB] vs [CREATEDB REPLICATION]",
        "connection limit -1 vs 5",
        "lacks membership in audit (with admin option)",
        "has extra membership in extra",
    ]


def test_clone_refusal_names_what_a_dba_must_do() -> None:
    assert rot_roles.clone_refusal("app", profile("CREATEDB", "NOINHERIT"), 0, 0) is None
    tail = ": a DBA must create 'app_clone' with the same attributes, groups and privileges (SQL in paymig.lambdas.rotation)"
    assert rot_roles.clone_refusal("app", profile("REPLICATION", "BYPASSRLS"), 0, 0) == (
        "user 'app' has BYPASSRLS, REPLICATION, which only a superuser can give a new role" + tail
    )
    assert rot_roles.clone_refusal("app", profile(), 3, 0) == (
        "user 'app' owns objects or holds privileges granted to it directly (3 catalog "
        "entries), which a clone made from its role memberships would lack" + tail
    )
    assert rot_roles.clone_refusal("app", profile(), 0, 1) == (
        "user 'app' has role settings (ALTER ROLE ... SET), which a clone would lack" + tail
    )


def test_clone_statements_copy_plain_attributes_and_memberships() -> None:
    source = profile("NOINHERIT", "CREATEDB", "CREATEROLE", limit=7,
                     groups=(("payments_app", False), ('we"ird', True)))  # fmt: skip
    create = rot_roles.clone_statement("app_clone", source, "SCRAM-SHA-256$4096:abc")
    assert create.as_string() == (
        'CREATE ROLE "app_clone" WITH LOGIN NOINHERIT CREATEDB CREATEROLE CONNECTION LIMIT 7 '
        "PASSWORD 'SCRAM-SHA-256$4096:abc'"
    )
    assert rot_roles.clone_statement("c", profile(), "v").as_string() == (
        "CREATE ROLE \"c\" WITH LOGIN PASSWORD 'v'"
    )
    assert [s.as_string() for s in rot_roles.grant_statements("app_clone", source)] == [
        'GRANT "payments_app" TO "app_clone"',
        'GRANT "we""ird" TO "app_clone" WITH ADMIN OPTION',
    ]


def test_one_line_keeps_the_first_line() -> None:
    assert rot_secrets.one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert rot_secrets.one_line(ValueError("")) == "ValueError: (no message)"


# ---------------------------------------------------------------- packaging


def test_the_module_imports_only_what_its_package_holds() -> None:
    """Only the standard library, boto3/botocore, psycopg and ROTATION_MODULES.

    Followed from the handler's module through every paymig module it imports, so a
    module split off the rotation and left out of the package fails here.
    """
    src = Path(rot.__file__).parents[2]
    allowed_paymig = {m.removesuffix(".py").replace("/", ".") for m in rot.ROTATION_MODULES}
    pending, seen = ["lambdas.rotation"], set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = src / "paymig" / f"{module.replace('.', '/')}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "paymig":
                    assert name.removeprefix("paymig.") in allowed_paymig, (module, name)
                    pending.append(name.removeprefix("paymig."))
                else:
                    assert top in sys.stdlib_module_names | {"boto3", "botocore", "psycopg"}, name
    assert {"lambdas.rotation_secrets", "lambdas.rotation_roles"} <= seen


def test_the_package_imports_the_handler_on_its_own(tmp_path: Path) -> None:
    from paymig.infra.lambda_package import build_package

    package = build_package("rotation-test", rot.ROTATION_MODULES, rot.ROTATION_DISTRIBUTIONS)
    assert "paymig/lambdas/rotation.py" in package.files
    runtime = {f for f in package.files if f.startswith("paymig/runtime/")}
    assert runtime == {"paymig/runtime/__init__.py", "paymig/runtime/database_env.py"}
    assert not any(f.startswith(("paymig/infra/", "pydantic")) for f in package.files)
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(tmp_path)
    module, _, function = rot.ROTATION_HANDLER.rpartition(".")
    code = (f"import importlib; m = importlib.import_module({module!r}); "
            f"print(m.__file__, callable(getattr(m, {function!r})))")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path,
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "paymig/lambdas/rotation.py"), "True"]
