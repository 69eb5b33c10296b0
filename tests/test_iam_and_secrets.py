"""IAM least privilege and no secrets, over every policy and resource in the stack."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paymig.infra.iam import NO_RESOURCE_LEVEL_WRITE_ACTIONS
from tests.tf_helpers import path_of

REPO = Path(__file__).resolve().parents[1]

#: Attributes that hold an IAM or resource policy document, by resource type.
POLICY_ATTRIBUTES = {
    "aws_iam_role": ("assume_role_policy",),
    "aws_iam_role_policy": ("policy",),
    "aws_iam_policy": ("policy",),
    "aws_kms_key": ("policy",),
    "aws_sns_topic_policy": ("policy",),
    "aws_sqs_queue_policy": ("policy",),
    "aws_s3_bucket_policy": ("policy",),
    "aws_ecr_repository_policy": ("policy",),
    "aws_cloudwatch_log_resource_policy": ("policy_document",),
    "aws_secretsmanager_secret_policy": ("policy",),
}
READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Lookup")


def policy_documents(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for kind, attributes in POLICY_ATTRIBUTES.items():
        for resource in doc.get("resource", {}).get(kind, {}).values():
            for attribute in attributes:
                if attribute in resource:
                    yield kind, path_of(resource), json.loads(resource[attribute])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def is_write(action: str) -> bool:
    verb = action.split(":", 1)[1]
    return not verb.startswith(READ_PREFIXES)


def test_every_policy_document_is_least_privilege(prod_tf: dict[str, Any]) -> None:
    documents = list(policy_documents(prod_tf))
    assert len(documents) >= 5
    for kind, where, document in documents:
        for stmt in document["Statement"]:
            actions = as_list(stmt.get("Action", []))
            if stmt.get("Effect") == "Deny":
                continue  # a broad deny only ever narrows access
            assert "*" not in actions, f"{where}: Action '*'"
            assert (
                all(a.split(":", 1)[1] != "*" for a in actions if ":" in a) or kind == "aws_kms_key"
            ), f"{where}: service-wide wildcard in {actions}"
            if kind == "aws_kms_key":
                # In a key policy "Resource": "*" means this key; principals are what matter.
                assert stmt["Principal"] != "*" and stmt["Principal"] != {"AWS": "*"}, where
                continue
            if stmt.get("Effect") != "Allow" or "Resource" not in stmt:
                continue
            if "*" in as_list(stmt["Resource"]):
                unscoped = [
                    a for a in actions if is_write(a) and a not in NO_RESOURCE_LEVEL_WRITE_ACTIONS
                ]
                assert unscoped == [], f"{where}: write actions on Resource '*': {unscoped}"


def test_trust_policies_name_one_service_principal(prod_tf: dict[str, Any]) -> None:
    for resource in prod_tf["resource"]["aws_iam_role"].values():
        for stmt in json.loads(resource["assume_role_policy"])["Statement"]:
            principal = stmt["Principal"]
            assert set(principal) == {"Service"}, path_of(resource)
            assert isinstance(principal["Service"], str) and principal["Service"].endswith(
                ".amazonaws.com"
            )


SECRET_KEYS = {
    "password", "master_password", "secret_string", "secret_binary", "private_key",
    "access_key", "secret_key", "auth_token",
}  # fmt: skip


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", item
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def test_no_secret_values_in_the_synthesized_stack(prod_tf: dict[str, Any]) -> None:
    for path, value in walk(prod_tf["resource"]):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in SECRET_KEYS and not (isinstance(value, str) and value.startswith("${")):
            pytest.fail(f"{path} carries a literal secret attribute: {value!r}")
    assert "secretsmanager_secret_version" not in json.dumps(prod_tf)


def test_no_secret_values_in_the_repository() -> None:
    """No password or key literal in code, config or docs (scanned as text)."""
    pattern = re.compile(
        r"(password|passwd|secret_key|aws_secret_access_key)\s*[:=]\s*['\"][^'\"\s]{6,}['\"]",
        re.IGNORECASE,
    )
    allowed = {"testing"}  # moto's documented dummy credential, used only against the emulator
    offenders = []
    for path in REPO.rglob("*"):
        if not path.is_file() or any(
            p in path.parts for p in (".git", ".venv", "cdktf.out", "rehearsal")
        ):
            continue
        if path.suffix not in {".py", ".yaml", ".yml", ".json", ".md", ".toml", ".sh", ".tf"}:
            continue
        if path.parts[-2:] == ("tests", "test_iam_and_secrets.py"):
            continue
        for match in pattern.finditer(path.read_text(errors="ignore")):
            literal = match.group(0).split(match.group(0)[-1])[-2]
            if literal not in allowed and path.parts[len(REPO.parts)] != "tests":
                offenders.append(f"{path.relative_to(REPO)}: {match.group(0)}")
    assert offenders == []


def test_every_security_group_and_rule_is_described_and_no_open_ingress_but_the_alb(
    prod_tf: dict[str, Any],
) -> None:
    groups = prod_tf["resource"]["aws_security_group"]
    assert all(g["description"] for g in groups.values())
    rules = [
        *prod_tf["resource"]["aws_vpc_security_group_ingress_rule"].values(),
        *prod_tf["resource"]["aws_vpc_security_group_egress_rule"].values(),
    ]
    assert len(rules) >= 10
    assert all(r.get("description") for r in rules)
    open_ingress = [
        path_of(r)
        for r in prod_tf["resource"]["aws_vpc_security_group_ingress_rule"].values()
        if r.get("cidr_ipv4") == "0.0.0.0/0"
    ]
    assert sorted(open_ingress) == [
        "paymig-prod/app/alb-ingress-443",
        "paymig-prod/app/alb-ingress-80",
    ]


#: AWS managed policies the stack may attach: each is what AWS requires its service role
#: to carry (RDS enhanced monitoring, DMS's two account-wide roles).
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
    "arn:aws:iam::aws:policy/service-role/AmazonDMSVPCManagementRole",
    "arn:aws:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole",
}


@pytest.mark.parametrize("stack", ["prod_tf", "staging_tf"])
def test_no_lambda_role_carries_a_managed_policy(
    stack: str, request: pytest.FixtureRequest
) -> None:
    """Issue 14 #5: AWSLambdaVPCAccessExecutionRole grants log writes on `*` and
    AWSXRayDaemonWriteAccess more than tracing needs; each function's inline policy
    carries exactly its ENI, trace, own-log and DLQ permissions instead."""
    doc: dict[str, Any] = request.getfixturevalue(stack)
    attached = {
        a["policy_arn"] for a in doc["resource"].get("aws_iam_role_policy_attachment", {}).values()
    }
    assert attached <= ALLOWED_MANAGED_POLICIES
    text = json.dumps(doc)
    assert "AWSLambdaVPCAccessExecutionRole" not in text
    assert "AWSXRayDaemonWriteAccess" not in text
    for fn in doc["resource"]["aws_lambda_function"].values():
        role = fn["role"].removesuffix(".arn}")
        assert not [
            a for a in doc["resource"].get("aws_iam_role_policy_attachment", {}).values()
            if a["role"].startswith(role + ".")
        ], path_of(fn)  # fmt: skip
        assert "managed_policy_arns" not in doc["resource"]["aws_iam_role"][role.split(".")[1]]


def test_ssm_parameters_hold_no_secret(prod_tf: dict[str, Any]) -> None:
    """What the CKV2_AWS_34 skip relies on: public CA certificates and the write target."""
    parameters = {p["name"]: p for p in prod_tf["resource"]["aws_ssm_parameter"].values()}
    assert sorted(parameters) == [
        "/paymig/paymig-prod/ca/aurora",
        "/paymig/paymig-prod/ca/source",
        "/paymig/paymig-prod/write-target",
    ]
    for name, parameter in parameters.items():
        assert parameter["type"] == "String", name
        value = parameter["value"]
        if name.endswith("/write-target"):
            assert value in ("source", "aurora")
            continue
        assert value.startswith("-----BEGIN CERTIFICATE-----"), name
        assert "PRIVATE KEY" not in value, name
