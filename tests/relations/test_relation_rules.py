"""Each relational rule on a small stack: silent when the relation holds, and naming both
resources when a test breaks it. moto enforces none of these relations (no key
policies, security groups, routes or TLS trust), which is why they are checked here
against AWS's documented behaviour (cited in each rule's module)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from paymig.relations import check_stack
from paymig.relations.rules import deployment_checks, log_group_keys, network_paths, tls_trust
from paymig.relations.stack import StackGraph
from tests.relations.stackdoc import REGION, base_stack, broken, policy, r


def run(rule: Any, document: dict[str, Any]) -> list[str]:
    return [f.line() for f in rule.check(StackGraph(document), REGION)]


def test_base_stack_has_no_findings() -> None:
    assert [f.line() for f in check_stack(base_stack(), REGION)] == []


# ------------------------------------------------------------------ log group and key


def test_log_group_key_names_group_and_key_when_context_is_another_group() -> None:
    doc = broken(base_stack())
    key = doc["resource"]["aws_kms_key"]["key"]
    key["policy"] = key["policy"].replace("/aws/lambda/fn", "/aws/lambda/other")
    assert run(log_group_keys, doc) == [
        "[log-group-key] stack/fn-log-group -> stack/key: the key policy does not let "
        "logs.us-east-2.amazonaws.com use the key for log group '/aws/lambda/fn'; "
        "CreateLogGroup would be denied"
    ]


def test_log_group_key_needs_the_logs_principal_and_every_action() -> None:
    doc = broken(base_stack())
    statement = json.loads(doc["resource"]["aws_kms_key"]["key"]["policy"])["Statement"][0]
    statement["Action"] = ["kms:Decrypt*", "kms:Describe*"]
    doc["resource"]["aws_kms_key"]["key"]["policy"] = policy(statement)
    assert len(run(log_group_keys, doc)) == 1
    statement["Action"] = ["kms:*"]
    statement["Principal"] = {"Service": "logs.us-east-1.amazonaws.com"}
    doc["resource"]["aws_kms_key"]["key"]["policy"] = policy(statement)
    assert len(run(log_group_keys, doc)) == 1


def test_log_group_key_accepts_arn_like_wildcards_and_no_condition() -> None:
    doc = broken(base_stack())
    statement = json.loads(doc["resource"]["aws_kms_key"]["key"]["policy"])["Statement"][0]
    statement["Condition"] = {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*:*:log-group:/aws/lambda/*"
        }
    }
    doc["resource"]["aws_kms_key"]["key"]["policy"] = policy(statement)
    assert run(log_group_keys, doc) == []
    del statement["Condition"]
    doc["resource"]["aws_kms_key"]["key"]["policy"] = policy(statement)
    assert run(log_group_keys, doc) == []


# ------------------------------------------------------------------ network paths


def test_endpoint_that_does_not_admit_the_client_is_named() -> None:
    doc = broken(base_stack())
    del doc["resource"]["aws_vpc_security_group_ingress_rule"]["endpoints_from_fn"]
    findings = run(network_paths, doc)
    assert len(findings) == 1
    assert findings[0].startswith("[network-path] stack/fn -> secretsmanager API: the ")
    assert "does not admit the client on 443" in findings[0]


def test_nat_is_no_fallback_once_the_endpoint_answers_for_the_name() -> None:
    doc = with_nat(broken(base_stack()))
    del doc["resource"]["aws_vpc_security_group_ingress_rule"]["endpoints_from_fn"]
    findings = run(network_paths, doc)
    assert any("secretsmanager API" in f and "does not admit" in f for f in findings)


def test_private_dns_off_is_a_broken_path() -> None:
    doc = broken(base_stack())
    doc["resource"]["aws_vpc_endpoint"]["secretsmanager"]["private_dns_enabled"] = False
    assert run(network_paths, doc) == [
        "[network-path] stack/fn -> secretsmanager API: the secretsmanager endpoint has "
        "private DNS off"
    ]


def with_nat(doc: dict[str, Any]) -> dict[str, Any]:
    doc["resource"].setdefault("aws_nat_gateway", {})["nat"] = {"subnet_id": "x"}
    doc["resource"]["aws_route"] = {
        "app_default": {
            "//": {"metadata": {"path": "stack/app-default"}},
            "route_table_id": r("aws_route_table", "app"),
            "destination_cidr_block": "0.0.0.0/0",
            "nat_gateway_id": r("aws_nat_gateway", "nat"),
        }
    }
    doc["resource"]["aws_vpc_security_group_egress_rule"]["fn_anywhere"] = {
        "//": {"metadata": {"path": "stack/fn-anywhere"}},
        "security_group_id": r("aws_security_group", "fn"),
        "cidr_ipv4": "0.0.0.0/0",
        "ip_protocol": "tcp",
        "from_port": 443,
        "to_port": 443,
    }
    return doc


def test_nat_path_to_an_api_with_an_endpoint_is_refused_and_so_is_idle_egress() -> None:
    doc = with_nat(broken(base_stack()))
    del doc["resource"]["aws_vpc_endpoint"]
    findings = run(network_paths, doc)
    assert findings == [
        "[network-path] stack/fn -> secretsmanager API: secretsmanager has a VPC endpoint "
        "in AWS; reach it through one instead of the NAT gateways (keep NAT egress for APIs "
        "without an endpoint)",
        "[network-path] stack/fn -> stack/fn-anywhere: 443 egress to 0.0.0.0/0, but every "
        "API the client calls has a VPC endpoint",
    ]


def add_action(doc: dict[str, Any], action: str) -> None:
    body = doc["resource"]["aws_iam_role_policy"]["fn"]
    statements = json.loads(body["policy"])["Statement"]
    statements.append({"Sid": "More", "Effect": "Allow", "Action": [action], "Resource": "*"})
    body["policy"] = policy(*statements)


def test_route53_needs_nat_and_then_internet_egress_is_justified() -> None:
    doc = broken(base_stack())
    add_action(doc, "route53:ChangeResourceRecordSets")
    assert run(network_paths, doc) == [
        "[network-path] stack/fn -> route53 API: no route53 endpoint, and no 443 egress to "
        "the internet"
    ]
    assert run(network_paths, with_nat(doc)) == []


def test_service_side_actions_need_no_path() -> None:
    doc = broken(base_stack())
    add_action(doc, "ec2:CreateNetworkInterface")
    add_action(doc, "sqs:SendMessage")
    assert run(network_paths, doc) == []
    add_action(doc, "dynamodb:PutItem")
    assert run(network_paths, doc) == [
        "[network-path] stack/fn -> dynamodb API: no dynamodb endpoint, and no 443 egress "
        "to the internet"
    ]


# ------------------------------------------------------------------ databases and TLS


def certificate(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


RDS_CN = "Amazon RDS us-east-2 Root CA RSA2048 G1"


def with_aurora(
    doc: dict[str, Any], *, sslmode: str = "verify-full", pem: str = ""
) -> dict[str, Any]:
    res = doc["resource"]
    res["aws_security_group"]["aurora"] = {"//": {"metadata": {"path": "stack/aurora-sg"}}}
    res["aws_rds_cluster"] = {
        "aurora": {
            "//": {"metadata": {"path": "stack/aurora"}},
            "vpc_security_group_ids": [r("aws_security_group", "aurora")],
        }
    }
    res["aws_rds_cluster_instance"] = {
        "writer": {
            "//": {"metadata": {"path": "stack/aurora-writer"}},
            "cluster_identifier": r("aws_rds_cluster", "aurora"),
            "ca_cert_identifier": "rds-ca-rsa2048-g1",
        }
    }
    res["aws_ssm_parameter"] = {
        "rds_ca": {
            "//": {"metadata": {"path": "stack/rds-ca"}},
            "name": "/stack/ca/aurora",
            "value": pem or certificate(RDS_CN),
        }
    }
    res["aws_vpc_security_group_egress_rule"]["fn_to_aurora"] = {
        "//": {"metadata": {"path": "stack/fn-to-aurora"}},
        "security_group_id": r("aws_security_group", "fn"),
        "referenced_security_group_id": r("aws_security_group", "aurora"),
        "ip_protocol": "tcp",
        "from_port": 5432,
        "to_port": 5432,
    }
    res["aws_vpc_security_group_ingress_rule"]["aurora_from_fn"] = {
        "//": {"metadata": {"path": "stack/aurora-from-fn"}},
        "security_group_id": r("aws_security_group", "aurora"),
        "referenced_security_group_id": r("aws_security_group", "fn"),
        "ip_protocol": "tcp",
        "from_port": 5432,
        "to_port": 5432,
    }
    spec = {
        "host": r("aws_rds_cluster", "aurora", "endpoint"),
        "port": 5432,
        "sslmode": sslmode,
        "ca_parameter": "/stack/ca/aurora",
    }
    res["aws_lambda_function"]["fn"]["environment"]["variables"]["PAYMIG_DB_AURORA"] = json.dumps(
        spec
    )
    return doc


def test_a_verified_aurora_client_passes() -> None:
    assert [f.line() for f in check_stack(with_aurora(base_stack()), REGION)] == []


def test_require_is_not_verification() -> None:
    doc = with_aurora(base_stack(), sslmode="require")
    assert run(tls_trust, doc) == [
        "[tls-trust] stack/fn -> aurora database (PAYMIG_DB_AURORA): sslmode 'require', "
        "not verify-full"
    ]


def test_aurora_bundle_must_hold_the_instances_ca() -> None:
    doc = with_aurora(base_stack(), pem=certificate("Some Other Root CA"))
    assert run(tls_trust, doc) == [
        "[tls-trust] stack/rds-ca -> stack/aurora-writer: the bundle lacks 'Amazon RDS "
        "us-east-2 Root CA RSA2048 G1', the CA this instance presents (rds-ca-rsa2048-g1)"
    ]
    doc["resource"]["aws_ssm_parameter"]["rds_ca"]["tags"] = {"Sample": "true"}
    findings = tls_trust.check(StackGraph(doc), REGION)
    assert [f.severity for f in findings] == ["warning"]
    assert "SAMPLE bundle" in findings[0].message


def test_two_clients_of_one_server_must_trust_the_same_bundle() -> None:
    doc = with_aurora(base_stack())
    res = doc["resource"]
    res["aws_dms_certificate"] = {
        "rds": {
            "//": {"metadata": {"path": "stack/dms-rds-ca"}},
            "certificate_pem": certificate(RDS_CN),
        }
    }
    res["aws_dms_replication_subnet_group"] = {"dms": {"subnet_ids": [r("aws_subnet", "app")]}}
    res["aws_security_group"]["dms"] = {"//": {"metadata": {"path": "stack/dms-sg"}}}
    res["aws_dms_replication_instance"] = {
        "dms": {
            "//": {"metadata": {"path": "stack/dms"}},
            "replication_subnet_group_id": r(
                "aws_dms_replication_subnet_group", "dms", "replication_subnet_group_id"
            ),
            "vpc_security_group_ids": [r("aws_security_group", "dms")],
        }
    }
    res["aws_dms_endpoint"] = {
        "target": {
            "//": {"metadata": {"path": "stack/dms-target"}},
            "engine_name": "aurora-postgresql",
            "ssl_mode": "verify-full",
            "certificate_arn": r("aws_dms_certificate", "rds", "certificate_arn"),
        }
    }
    res["aws_dms_replication_task"] = {
        "task": {
            "replication_instance_arn": r(
                "aws_dms_replication_instance", "dms", "replication_instance_arn"
            ),
            "target_endpoint_arn": r("aws_dms_endpoint", "target", "endpoint_arn"),
        }
    }
    findings = run(tls_trust, doc)
    assert findings == [
        "[tls-trust] stack/rds-ca -> stack/dms-rds-ca: clients of the aurora database trust "
        "different CA bundles"
    ]


def test_undeclared_database_client_is_named() -> None:
    doc = with_aurora(base_stack())
    del doc["resource"]["aws_lambda_function"]["fn"]["environment"]["variables"]["PAYMIG_DB_AURORA"]
    assert run(network_paths, doc) == [
        "[network-path] stack/fn -> stack/fn-to-aurora: allowed out to PostgreSQL but "
        "declares no database connection (PAYMIG_DB_* environment variable), so its TLS "
        "settings cannot be checked"
    ]


def test_aurora_path_needs_both_sides() -> None:
    doc = with_aurora(base_stack())
    del doc["resource"]["aws_vpc_security_group_ingress_rule"]["aurora_from_fn"]
    assert run(network_paths, doc) == [
        "[network-path] stack/fn -> aurora database (PAYMIG_DB_AURORA): Aurora's security "
        "group and the client's do not both allow 5432 between them"
    ]


# ------------------------------------------------------------------ deployment checks


def with_check(
    doc: dict[str, Any], depends_on: list[str], triggers: dict[str, str]
) -> dict[str, Any]:
    doc["resource"]["aws_lambda_invocation"] = {
        "check": {
            "//": {"metadata": {"path": "stack/check"}},
            "function_name": r("aws_lambda_function", "fn", "function_name"),
            "input": "{}",
            "triggers": triggers,
            "depends_on": depends_on,
        }
    }
    return doc


def test_check_must_depend_on_everything_its_function_reads() -> None:
    doc = with_check(with_aurora(base_stack()), [], {"settings": "x"})
    findings = run(deployment_checks, doc)
    # The cluster itself is a dependency already: the function's environment names it.
    named = sorted(f.split(" -> ")[1].split(":")[0] for f in findings)
    assert named == sorted(
        [
            "stack/aurora-from-fn",
            "stack/aurora-writer",
            "stack/endpoint-secretsmanager",
            "stack/endpoints-from-fn",
            "stack/fn-to-aurora",
            "stack/fn-to-endpoints",
            "stack/rds-ca",
        ]
    )


def test_check_with_every_dependency_and_no_code_trigger_passes() -> None:
    needed = [
        "aws_rds_cluster.aurora",
        "aws_rds_cluster_instance.writer",
        "aws_vpc_security_group_ingress_rule.aurora_from_fn",
        "aws_vpc_security_group_egress_rule.fn_to_aurora",
        "aws_vpc_endpoint.secretsmanager",
        "aws_vpc_security_group_ingress_rule.endpoints_from_fn",
        "aws_vpc_security_group_egress_rule.fn_to_endpoints",
        "aws_ssm_parameter.rds_ca",
    ]
    doc = with_check(with_aurora(base_stack()), needed, {"settings": "x"})
    assert run(deployment_checks, doc) == []
    doc["resource"]["aws_lambda_invocation"]["check"]["triggers"] = {"package": "CODEHASH"}
    assert run(deployment_checks, doc) == [
        "[deployment-check] stack/check -> stack/fn: triggers hold the function's code hash: "
        "re-applying an older commit re-runs the check (key the triggers on what it checks)"
    ]


@pytest.mark.parametrize("kind", ["aws_vpc_security_group_egress_rule"])
def test_transitive_dependencies_count(kind: str) -> None:
    """Depending on a resource that itself depends on the rule is enough."""
    doc = with_check(base_stack(), ["aws_vpc_endpoint.secretsmanager"], {})
    doc["resource"]["aws_vpc_endpoint"]["secretsmanager"]["depends_on"] = [
        f"{kind}.fn_to_endpoints",
        "aws_vpc_security_group_ingress_rule.endpoints_from_fn",
    ]
    assert run(deployment_checks, doc) == []
