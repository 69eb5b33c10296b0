"""A function run as Lambda would: its environment, its role, every call authorized.

Against the real moto server (with this project's extensions): the function, its role
and policies, the topics and the KMS key are created there; the handler runs in its own
process (lambda_handlers.py) and its calls reach moto, after the rehearsal's IAM check.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from paymig.rehearsal.function_env import LocalDatabase
from paymig.rehearsal.iam_requests import Lookups, RoleEnforcer, role_statements
from paymig.rehearsal.lambda_runtime import invoke, load_function

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}  # fmt: skip


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_handlers.py", (HERE / "lambda_handlers.py").read_text())
    return buffer.getvalue()


def _world(aws: Any, grant_key: bool = True) -> dict[str, str]:
    """A key, an encrypted and a plain topic, a role allowed to publish to the first."""
    key = aws.client("kms").create_key(Description="topic key")["KeyMetadata"]["Arn"]
    sns = aws.client("sns")
    encrypted = sns.create_topic(Name="alarms", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    plain = sns.create_topic(Name="other")["TopicArn"]
    iam = aws.client("iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    statements = [{"Sid": "Notify", "Effect": "Allow", "Action": "sns:Publish",
                   "Resource": encrypted}]  # fmt: skip
    if grant_key:
        # Only through SNS, as the stack grants its keys: the call's context must say so.
        statements.append({"Sid": "Key", "Effect": "Allow",
                           "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key,
                           "Condition": {"StringEquals": {
                               "kms:ViaService": "sns.us-east-2.amazonaws.com"}}})  # fmt: skip
    iam.put_role_policy(RoleName="fn-role", PolicyName="inline",
                        PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                   "Statement": statements}))  # fmt: skip
    iam.attach_role_policy(
        RoleName="fn-role",
        PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    )
    return {"role": role["Arn"], "encrypted": encrypted, "plain": plain, "key": key}


def _function(aws: Any, role: str, handler: str) -> None:
    aws.client("lambda").create_function(
        FunctionName="fn", Runtime="python3.11", Role=role, Handler=handler,
        Code={"ZipFile": _zip()}, Timeout=30,
        Environment={"Variables": {"TEST_NAME": "declared", "DB_HOST": "192.0.2.20",
                                   "DB_PORT": "5432"}},
    )  # fmt: skip


@pytest.fixture
def child_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the function's process import paymig and the test handlers."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(HERE)]))


def test_the_function_runs_as_its_role_with_its_own_environment(
    aws: Any, extended_moto: Any, child_path: None, tmp_path: Path
) -> None:
    world = _world(aws)
    _function(aws, world["role"], "lambda_handlers.publish")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    stand_in = LocalDatabase("127.0.0.1", 15432, ca, "the source stand-in")
    loaded = load_function(aws.client("lambda"), "fn", {("192.0.2.20", 5432): stand_in})
    event = {"topics": [world["encrypted"], world["plain"]]}
    done = invoke(loaded, event, sts=aws.client("sts"), endpoint_url=extended_moto.endpoint_url,
                  region="us-east-2", log_path=tmp_path / "fn.log", qualifier="blue")  # fmt: skip
    assert done.error is None, (tmp_path / "fn.log").read_text()
    result = done.result
    # Allowed on the encrypted topic (with its key); implicitly denied on the other.
    assert result["published"] == ["ok", "AccessDenied"]
    assert done.denied == [f"sns:Publish on {world['plain']}"]
    assert result["identity"] == "arn:aws:sts::123456789012:assumed-role/fn-role/fn"
    assert done.principal == result["identity"]
    assert result["access_key_prefix"] == "ASIA"  # temporary credentials of the role
    assert result["variables"] == {"TEST_NAME": "declared", "DB_HOST": "127.0.0.1",
                                   "DB_PORT": "15432", "DB_CA_BUNDLE": str(ca)}  # fmt: skip
    assert result["invoked"].endswith(":function:fn:blue")
    assert done.started is not None and done.finished is not None
    assert done.started <= done.finished
    actions = [(d["action"], d["allowed"]) for c in done.calls for d in c["decisions"]]
    assert actions == [
        ("sns:Publish", True), ("kms:GenerateDataKey", True), ("kms:Decrypt", True),
        ("sns:Publish", False), ("sts:GetCallerIdentity", True),
    ]  # fmt: skip


def test_publishing_to_an_encrypted_topic_needs_its_key(
    aws: Any, extended_moto: Any, child_path: None, tmp_path: Path
) -> None:
    world = _world(aws, grant_key=False)
    _function(aws, world["role"], "lambda_handlers.publish")
    loaded = load_function(aws.client("lambda"), "fn", {("192.0.2.20", 5432): LocalDatabase(
        "127.0.0.1", 1, tmp_path / "ca.pem", "x")})  # fmt: skip
    (tmp_path / "ca.pem").write_text("x")
    done = invoke(loaded, {"topics": [world["encrypted"]]}, sts=aws.client("sts"),
                  endpoint_url=extended_moto.endpoint_url, region="us-east-2",
                  log_path=tmp_path / "fn.log")  # fmt: skip
    assert done.result["published"] == ["AccessDenied"]
    assert done.denied == [f"kms:GenerateDataKey on {world['key']}",
                           f"kms:Decrypt on {world['key']}"]  # fmt: skip


def test_a_failing_handler_is_the_invocations_error(
    aws: Any, extended_moto: Any, child_path: None, tmp_path: Path
) -> None:
    world = _world(aws)
    _function(aws, world["role"], "lambda_handlers.fail")
    loaded = load_function(aws.client("lambda"), "fn", {("192.0.2.20", 5432): LocalDatabase(
        "127.0.0.1", 1, tmp_path / "ca.pem", "x")})  # fmt: skip
    done = invoke(loaded, {}, sts=aws.client("sts"), endpoint_url=extended_moto.endpoint_url,
                  region="us-east-2", log_path=tmp_path / "fn.log")  # fmt: skip
    assert done.error == {"type": "RuntimeError", "message": "the handler failed"}
    assert "RuntimeError: the handler failed" in (tmp_path / "fn.log").read_text()


def test_a_call_without_a_mapping_is_denied(aws: Any) -> None:
    world = _world(aws)
    statements = role_statements(aws.client("iam"), "fn-role")
    enforcer = RoleEnforcer("arn:aws:sts::1:assumed-role/fn-role/fn", statements,
                            Lookups(aws, "us-east-2", "123456789012"))  # fmt: skip
    with pytest.raises(ClientError) as raised:
        enforcer.authorize("s3", "ListBuckets", {})
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert "s3:ListBuckets: the rehearsal cannot authorize this call" in error["Message"]
    # The managed policy attached to the role is read too (EC2 network interfaces).
    record = enforcer.authorize("sns", "Publish", {"TopicArn": world["encrypted"], "Message": "m"})
    assert record.allowed and record.params == {"TopicArn": world["encrypted"], "Message": "m"}
    assert any("ec2:CreateNetworkInterface" in s.actions for s in statements)
