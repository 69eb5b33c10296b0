"""The relational check on the shipped stacks: every relation AWS enforces holds, and
breaking one in a copy of the synthesized JSON is reported naming both resources.

moto checks none of these relations (no key policies, security-group or route paths, TLS
trust or SNS filter semantics), so these tests are where a real apply's failures of
issue 12 are caught; tests/relations/ proves each rule on hand-written stacks.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paymig.relations import check_stack
from paymig.relations.apis import code_services
from paymig.relations.network import Network
from paymig.relations.paths import api_path
from paymig.relations.rules import log_group_keys, network_paths
from paymig.relations.stack import Address, StackGraph
from tests.tf_helpers import by_path, path_of, policy, ref, resources

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-2"
SHIPPED = ["prod_tf", "staging_tf", "rehearsal_tf"]
STAGES = ["full-load", "cdc", "finished"]


def sample_bundle_warnings(stack: str) -> list[str]:
    """The warnings every shipped stack carries while the sample RDS bundle is in place."""
    return [
        f"[tls-trust] {stack}/trust/aurora-ca -> {stack}/data/instance-{index}: the bundle "
        "lacks 'Amazon RDS us-east-2 Root CA RSA2048 G1', the CA this instance presents "
        "(rds-ca-rsa2048-g1); a SAMPLE bundle is in place: configure AWS's bundle"
        for index in (0, 1)
    ]


def stack_name(doc: dict[str, Any]) -> str:
    _, vpc = next(iter(resources(doc, "aws_vpc").items()))
    return path_of(vpc).split("/", 1)[0]


@pytest.mark.parametrize("stack", SHIPPED)
def test_every_relation_holds_on_the_shipped_stacks(
    stack: str, request: pytest.FixtureRequest
) -> None:
    """Pins every defect of issue 12 a rule was seeded with (log-group keys, network
    paths, verify-full with the server's CA, alarm delivery, check dependencies): the
    shipped configs synthesize a stack with 0 errors, and only the two sample-bundle
    warnings while the sample RDS bundle is in place (defect 12)."""
    doc: dict[str, Any] = request.getfixturevalue(stack)
    findings = check_stack(doc, REGION)
    assert [f.line() for f in findings if f.severity == "error"] == []
    assert [f.line() for f in findings] == sample_bundle_warnings(stack_name(doc))


@pytest.mark.parametrize("stage", STAGES)
def test_every_relation_holds_at_every_stage(
    stage: str, prod_at_stage: Callable[[str], dict[str, Any]]
) -> None:
    findings = check_stack(prod_at_stage(stage), REGION)
    assert [f.line() for f in findings] == sample_bundle_warnings("paymig-prod")


# --------------------------------------------------------------------------- log groups


@pytest.mark.parametrize("stack", SHIPPED)
def test_each_key_admits_exactly_the_log_groups_it_encrypts(
    stack: str, request: pytest.FixtureRequest
) -> None:
    """Pins defect 1: the validation log group was encrypted with the automation key,
    whose policy admitted only the rollback group's ARN, so CreateLogGroup was denied."""
    doc: dict[str, Any] = request.getfixturevalue(stack)
    account = "${data.aws_caller_identity.caller.account_id}"
    groups_by_key: dict[str, list[str]] = {}
    for group in resources(doc, "aws_cloudwatch_log_group").values():
        assert "kms_key_id" in group, path_of(group)  # every log group is CMK-encrypted
        arn = f"arn:aws:logs:{REGION}:{account}:log-group:{group['name']}"
        groups_by_key.setdefault(group["kms_key_id"], []).append(arn)
    assert len(groups_by_key) >= 5
    for key_id, key in resources(doc, "aws_kms_key").items():
        admitted = [
            s["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
            for s in policy(key["policy"])["Statement"]
            if s["Sid"] == "CloudWatchLogsUsesKey"
        ]
        expected = groups_by_key.get(ref("aws_kms_key", key_id, "arn"))
        assert admitted == ([expected] if expected else []), path_of(key)


def test_the_automation_key_admits_each_of_its_functions_log_groups(
    prod_tf: dict[str, Any],
) -> None:
    _, key = by_path(prod_tf, "aws_kms_key", "/automation/key/key")
    (logs,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "CloudWatchLogsUsesKey"]
    names = sorted(a.rsplit(":log-group:", 1)[1] for a in logs["Condition"]["ArnEquals"][
        "kms:EncryptionContext:aws:logs:arn"])  # fmt: skip
    assert names == [
        "/aws/lambda/paymig-prod-db-setup",
        "/aws/lambda/paymig-prod-rollback",
        "/aws/lambda/paymig-prod-validation",
    ]


def test_the_rule_names_the_log_group_and_the_key_that_does_not_admit_it(
    prod_tf: dict[str, Any],
) -> None:
    """Defect 1 re-created in a copy of the stack: the rule names both resources."""
    doc = copy.deepcopy(prod_tf)
    key_id, key = by_path(doc, "aws_kms_key", "/automation/key/key")
    document = policy(key["policy"])
    for statement in document["Statement"]:
        if statement["Sid"] == "CloudWatchLogsUsesKey":
            arns = statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
            arns[:] = [a for a in arns if not a.endswith("/paymig-prod-validation")]
    doc["resource"]["aws_kms_key"][key_id]["policy"] = json.dumps(document)
    findings = [f.line() for f in log_group_keys.check(StackGraph(doc), REGION)]
    assert findings == [
        "[log-group-key] paymig-prod/checks/validation/log-group -> paymig-prod/automation/key/key: "
        "the key policy does not let logs.us-east-2.amazonaws.com use the key for log group "
        "'/aws/lambda/paymig-prod-validation'; CreateLogGroup would be denied"
    ]


def test_only_the_key_construct_creates_log_groups() -> None:
    """`CustomerManagedKey.encrypted_log_group` is the one way to make a log group: no
    other module of paymig.infra constructs `CloudwatchLogGroup`, so a group and the key
    policy statement that admits it always come from one call."""
    constructing: list[str] = []
    for path in sorted((REPO / "src" / "paymig" / "infra").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "CloudwatchLogGroup"
            )
            imported = isinstance(node, ast.ImportFrom) and any(
                alias.name == "CloudwatchLogGroup" for alias in node.names
            )
            if named or imported:
                constructing.append(path.name)
    assert sorted(set(constructing)) == ["kms.py"]


# --------------------------------------------------------------------------- network paths

#: The AWS APIs each VPC client's IAM policy uses (by endpoint service name).
CLIENT_APIS = {
    "paymig-prod/app/api/function": ["secretsmanager", "ssm", "xray"],
    "paymig-prod/automation/rollback/function": [
        "dynamodb", "elasticloadbalancing", "monitoring", "route53", "sns", "xray",
    ],
    "paymig-prod/checks/db-setup/function": ["secretsmanager", "ssm", "xray"],
    "paymig-prod/checks/validation/function": [
        "dms", "dynamodb", "monitoring", "secretsmanager", "ssm", "xray",
    ],
    "paymig-prod/credentials/rotation/function": ["secretsmanager", "ssm", "xray"],
    "paymig-prod/replication/instance": ["secretsmanager"],
}  # fmt: skip


def test_every_vpc_client_has_a_path_to_every_api_it_uses(prod_tf: dict[str, Any]) -> None:
    """Pins defect 4: DMS (and any client) must reach each API it calls through an
    endpoint whose security group admits it, or through NAT for Route 53 alone."""
    graph = StackGraph(prod_tf)
    net = Network(graph)
    clients = {graph.path(c.address): c for c in net.clients()}
    assert sorted(clients) == sorted(CLIENT_APIS)
    for name, client in clients.items():
        services = sorted(code_services(graph, client))
        assert services == CLIENT_APIS[name], name
        for service in services:
            path = api_path(net, client, service)
            assert path.ok, f"{name} -> {service}: {path.reason}"
            kinds = {a.type for a in path.resources}
            if service == "route53":
                assert kinds == {"aws_vpc_security_group_egress_rule", "aws_route"}
            elif service in ("dynamodb", "s3"):
                assert kinds == {"aws_vpc_endpoint", "aws_vpc_security_group_egress_rule"}
            else:
                assert kinds == {
                    "aws_vpc_endpoint",
                    "aws_vpc_security_group_egress_rule",
                    "aws_vpc_security_group_ingress_rule",
                }, f"{name} -> {service}"


def test_only_the_rollback_function_may_leave_for_the_internet(prod_tf: dict[str, Any]) -> None:
    """Route 53's API has no VPC endpoint; nothing else goes through NAT."""
    open_egress = [
        path_of(r)
        for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r.get("cidr_ipv4") == "0.0.0.0/0"
    ]
    assert open_egress == ["paymig-prod/automation/rollback/egress-internet-https"]
    (rule,) = [
        r for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r.get("cidr_ipv4") == "0.0.0.0/0"
    ]  # fmt: skip
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443)
    rollback_sg, _ = by_path(prod_tf, "aws_security_group", "/automation/rollback/sg")
    assert rule["security_group_id"] == ref("aws_security_group", rollback_sg)


def test_the_rule_names_dms_and_the_api_it_can_no_longer_reach(prod_tf: dict[str, Any]) -> None:
    """Defect 4 re-created: without the endpoints' ingress rule for DMS, DMS cannot read
    its secrets (private DNS sends it to the endpoint, which drops it)."""
    doc = copy.deepcopy(prod_tf)
    key, _ = by_path(doc, "aws_vpc_security_group_ingress_rule", "/network/endpoints/ingress-dms")
    del doc["resource"]["aws_vpc_security_group_ingress_rule"][key]
    instance = Address(
        "aws_dms_replication_instance",
        by_path(doc, "aws_dms_replication_instance", "/replication/instance")[0],
    )
    doc["resource"][instance.type][instance.name]["depends_on"].remove(
        f"aws_vpc_security_group_ingress_rule.{key}"
    )
    findings = [f.line() for f in network_paths.check(StackGraph(doc), REGION)]
    assert findings == [
        "[network-path] paymig-prod/replication/instance -> secretsmanager API: the "
        "secretsmanager interface endpoint answers for the API's name in this VPC, but its "
        "security group does not admit the client on 443 (or the client's security group "
        "does not allow 443 out to it)"
    ]


def test_the_rule_names_a_client_given_internet_egress_it_does_not_need(
    prod_tf: dict[str, Any],
) -> None:
    doc = copy.deepcopy(prod_tf)
    _, rule = by_path(doc, "aws_vpc_security_group_egress_rule", "/app/api/egress-endpoints")
    doc["resource"]["aws_vpc_security_group_egress_rule"]["extra"] = {
        **rule,
        "//": {"metadata": {"path": "paymig-prod/app/api/egress-anywhere"}},
        "cidr_ipv4": "0.0.0.0/0",
    }
    del doc["resource"]["aws_vpc_security_group_egress_rule"]["extra"][
        "referenced_security_group_id"
    ]
    findings = [f.line() for f in network_paths.check(StackGraph(doc), REGION)]
    assert findings == [
        "[network-path] paymig-prod/app/api/function -> paymig-prod/app/api/egress-anywhere: "
        "443 egress to 0.0.0.0/0, but every API the client calls has a VPC endpoint"
    ]


# --------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("stack", SHIPPED)
def test_every_database_client_uses_verify_full_with_its_servers_ca(
    stack: str, request: pytest.FixtureRequest
) -> None:
    """Pins defect 12 (and 3): `require` to Aurora, and the RDS bundle for on-prem."""
    from paymig.relations.databases import connections

    doc: dict[str, Any] = request.getfixturevalue(stack)
    graph = StackGraph(doc)
    found = connections(Network(graph))
    # API, validation and rotation: both servers; db-setup: Aurora; DMS: four endpoints.
    assert len(found) == 11
    for connection in found:
        assert connection.sslmode == "verify-full", connection.name
        assert connection.ca is not None, connection.name
        suffix = f"/trust/{connection.server.kind}-"
        assert suffix in graph.path(connection.ca), (connection.name, graph.path(connection.ca))
    clients = {(graph.path(c.client.address), c.server.kind) for c in found}
    name = stack_name(doc)
    for client in ("app/api/function", "checks/validation/function", "credentials/rotation/function",
                   "replication/instance"):  # fmt: skip
        assert {(f"{name}/{client}", "source"), (f"{name}/{client}", "aurora")} <= clients
    assert (f"{name}/checks/db-setup/function", "aurora") in clients
