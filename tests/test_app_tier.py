"""Application and traffic tiers (requirements 3 and 5) on the synthesized prod stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paymig.config import PaymigConfig
from tests.small_stacks import add_app, with_changes, world
from tests.tf_helpers import by_path, only, policy, ref, resources


def test_ecr_repository(prod_tf: dict[str, Any]) -> None:
    repo_id, repo = only(prod_tf, "aws_ecr_repository")
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/app/key/key")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"] == {"scan_on_push": True}
    assert repo["encryption_configuration"] == [
        {"encryption_type": "KMS", "kms_key": ref("aws_kms_key", key_id, "arn")}
    ]
    _, lifecycle = only(prod_tf, "aws_ecr_lifecycle_policy")
    assert lifecycle["repository"] == ref("aws_ecr_repository", repo_id, "name")
    rules = json.loads(lifecycle["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]


def test_lambda_runs_the_image_in_the_app_subnets(prod_tf: dict[str, Any]) -> None:
    repo_id, _ = only(prod_tf, "aws_ecr_repository")
    _, fn = by_path(prod_tf, "aws_lambda_function", "/app/api/function")
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/app/key/key")
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/app/api/sg")
    role_id, _ = by_path(prod_tf, "aws_iam_role", "/app/api/role")
    policy_id, _ = by_path(prod_tf, "aws_iam_role_policy", "/app/api/role-policy")
    assert fn["function_name"] == "paymig-prod-payment-api"
    assert fn["package_type"] == "Image"
    assert fn["image_uri"] == f"${{aws_ecr_repository.{repo_id}.repository_url}}:2026.11.29-1"
    assert fn["role"] == ref("aws_iam_role", role_id, "arn")
    assert fn["tracing_config"] == {"mode": "Active"}
    assert fn["kms_key_arn"] == ref("aws_kms_key", key_id, "arn")
    assert (fn["memory_size"], fn["timeout"]) == (1024, 15)
    assert fn["reserved_concurrent_executions"] == 50
    assert fn["publish"] is True
    app_subnets = [
        ref("aws_subnet", by_path(prod_tf, "aws_subnet", f"/network/app-{z}")[0])
        for z in ("us-east-2a", "us-east-2b", "us-east-2c")
    ]
    assert fn["vpc_config"] == {
        "subnet_ids": app_subnets,
        "security_group_ids": [ref("aws_security_group", sg_id)],
    }
    dlq_id, dlq = by_path(prod_tf, "aws_sqs_queue", "/app/api/dlq")
    assert fn["dead_letter_config"] == {"target_arn": ref("aws_sqs_queue", dlq_id, "arn")}
    assert dlq["kms_master_key_id"] == ref("aws_kms_key", key_id, "arn")
    log_id, log_group = by_path(prod_tf, "aws_cloudwatch_log_group", "/app/api/log-group")
    assert log_group["name"] == "/aws/lambda/paymig-prod-payment-api"
    assert log_group["retention_in_days"] == 365
    assert log_group["kms_key_id"] == ref("aws_kms_key", key_id, "arn")
    assert fn["logging_config"] == {
        "log_format": "JSON",
        "log_group": ref("aws_cloudwatch_log_group", log_id, "name"),
    }
    # The log group and the role's permissions exist before the function's first run.
    assert fn["depends_on"] == [
        f"aws_cloudwatch_log_group.{log_id}",
        f"aws_iam_role_policy.{policy_id}",
    ]


ACCOUNT = "${data.aws_caller_identity.caller.account_id}"


def declarations(fn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function's PAYMIG_DB_* declarations, parsed."""
    variables = fn["environment"]["variables"]
    return {k: json.loads(v) for k, v in variables.items() if k.startswith("PAYMIG_DB_")}


def test_api_declares_both_databases_each_verified_with_its_own_ca(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 3: the API verified the on-prem server with the RDS CA bundle.

    Each database is declared with its own server's CA parameter and verify-full: the
    source with the on-prem CA (and its configured host, the name its certificate
    carries), Aurora with the RDS bundle (and the cluster endpoint).
    """
    _, fn = by_path(prod_tf, "aws_lambda_function", "/app/api/function")
    cluster_id, _ = only(prod_tf, "aws_rds_cluster")
    _, source_ca = by_path(prod_tf, "aws_ssm_parameter", "/trust/source-ca")
    _, aurora_ca = by_path(prod_tf, "aws_ssm_parameter", "/trust/aurora-ca")
    source_secret, _ = by_path(prod_tf, "aws_secretsmanager_secret", "/credentials/source-api")
    aurora_secret, _ = by_path(prod_tf, "aws_secretsmanager_secret", "/credentials/aurora-api")
    assert declarations(fn) == {
        "PAYMIG_DB_SOURCE": {
            "server": "source",
            "host": "192.0.2.20",
            "port": 5432,
            "dbname": "payments",
            "secret_arn": ref("aws_secretsmanager_secret", source_secret, "arn"),
            "sslmode": "verify-full",
            "ca_parameter": "/paymig/paymig-prod/ca/source",
        },
        "PAYMIG_DB_AURORA": {
            "server": "aurora",
            "host": ref("aws_rds_cluster", cluster_id, "endpoint"),
            "port": 5432,
            "dbname": "payments",
            "secret_arn": ref("aws_secretsmanager_secret", aurora_secret, "arn"),
            "sslmode": "verify-full",
            "ca_parameter": "/paymig/paymig-prod/ca/aurora",
        },
    }
    assert source_ca["name"] == "/paymig/paymig-prod/ca/source"
    assert aurora_ca["name"] == "/paymig/paymig-prod/ca/aurora"
    repo = Path(__file__).resolve().parents[1]
    assert source_ca["value"] == (repo / "config/certs/example-onprem-ca.pem").read_text()
    assert aurora_ca["value"] == (repo / "config/certs/example-rds-ca-bundle.pem").read_text()
    assert source_ca["value"] != aurora_ca["value"]
    assert fn["environment"]["variables"]["PAYMIG_WRITE_TARGET_PARAMETER"] == (
        "/paymig/paymig-prod/write-target"
    )
    assert fn["environment"]["variables"]["PAYMIG_WRITE_TARGET_CACHE_SECONDS"] == "2"
    assert set(fn["environment"]["variables"]) == {
        "PAYMIG_DB_SOURCE", "PAYMIG_DB_AURORA", "PAYMIG_ENVIRONMENT",
        "PAYMIG_WRITE_TARGET_PARAMETER", "PAYMIG_WRITE_TARGET_CACHE_SECONDS",
    }  # fmt: skip


def test_api_role_reads_exactly_its_logins_cas_and_write_target(prod_tf: dict[str, Any]) -> None:
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/app/api/role-policy")
    statements = {s["Sid"]: s for s in policy(inline["policy"])["Statement"]}
    secrets = {
        server: ref(
            "aws_secretsmanager_secret",
            by_path(prod_tf, "aws_secretsmanager_secret", f"/credentials/{server}-api")[0],
            "arn",
        )
        for server in ("source", "aurora")
    }
    credentials_key, _ = by_path(prod_tf, "aws_kms_key", "/credentials/key/key")
    parameter = f"arn:aws:ssm:us-east-2:{ACCOUNT}:parameter/paymig/paymig-prod"
    for server in ("source", "aurora"):
        name = server.title()
        assert statements[f"Read{name}Login"]["Action"] == ["secretsmanager:GetSecretValue"]
        assert statements[f"Read{name}Login"]["Resource"] == [secrets[server]]
        assert statements[f"Read{name}LoginKey"] == {
            "Sid": f"Read{name}LoginKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [ref("aws_kms_key", credentials_key, "arn")],
            "Condition": {
                "StringEquals": {"kms:ViaService": "secretsmanager.us-east-2.amazonaws.com"}
            },
        }
        assert statements[f"Read{name}Ca"]["Action"] == ["ssm:GetParameter"]
        assert statements[f"Read{name}Ca"]["Resource"] == [f"{parameter}/ca/{server}"]
    assert statements["ReadWriteTarget"]["Resource"] == [f"{parameter}/write-target"]
    secret_reads = [
        r
        for s in statements.values()
        if "secretsmanager:GetSecretValue" in s["Action"]
        for r in s["Resource"]
    ]
    assert sorted(secret_reads) == sorted(secrets.values())


def test_write_target_parameter_starts_at_the_configured_target(prod_tf: dict[str, Any]) -> None:
    _, parameter = by_path(prod_tf, "aws_ssm_parameter", "/app/write-target")
    assert (parameter["name"], parameter["type"], parameter["value"]) == (
        "/paymig/paymig-prod/write-target",
        "String",
        "source",
    )
    # `paymig cutover`/`fallback` own it after the first apply.
    assert parameter["lifecycle"] == {"ignore_changes": ["value"]}


def test_lambda_egress_is_its_databases_and_the_endpoints_only(prod_tf: dict[str, Any]) -> None:
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/app/api/sg")
    data_sg, _ = by_path(prod_tf, "aws_security_group", "/data/sg")
    endpoints_sg, _ = by_path(prod_tf, "aws_security_group", "/network/endpoints/sg")
    rules = [
        r
        for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == ref("aws_security_group", sg_id)
    ]
    assert sorted(
        (r["from_port"], r["to_port"], r.get("cidr_ipv4") or r["referenced_security_group_id"])
        for r in rules
    ) == sorted(
        [
            (443, 443, ref("aws_security_group", endpoints_sg)),
            (5432, 5432, ref("aws_security_group", data_sg)),
            (5432, 5432, "192.0.2.0/24"),
        ]
    )
    assert all(r["ip_protocol"] == "tcp" and r["description"] for r in rules)
    # No internet egress: every API it calls has an endpoint.
    assert not any(r.get("cidr_ipv4") == "0.0.0.0/0" for r in rules)


def test_blue_green_aliases_and_target_groups(prod_tf: dict[str, Any]) -> None:
    fn_id, _ = by_path(prod_tf, "aws_lambda_function", "/app/api/function")
    aliases = {a["name"]: (k, a) for k, a in resources(prod_tf, "aws_lambda_alias").items()}
    assert set(aliases) == {"blue", "green"}
    for name, (alias_id, alias) in aliases.items():
        # The shipped configs: both aliases follow the version the image publishes.
        assert alias["function_version"] == ref("aws_lambda_function", fn_id, "version")
        assert alias["function_name"] == ref("aws_lambda_function", fn_id, "function_name")
        tg_id, tg = by_path(prod_tf, "aws_lb_target_group", f"/app/tg-{name}")
        assert tg["name"] == f"paymig-prod-{name}"
        assert tg["target_type"] == "lambda"
        assert tg["health_check"] == {
            "enabled": True,
            "path": "/health",
            "matcher": "200",
            "interval": 35,
            "timeout": 30,
            "healthy_threshold": 2,
            "unhealthy_threshold": 2,
        }
        _, attachment = by_path(
            prod_tf, "aws_lb_target_group_attachment", f"/app/tg-{name}-attachment"
        )
        assert attachment["target_id"] == ref("aws_lambda_alias", alias_id, "arn")
        _, permission = by_path(prod_tf, "aws_lambda_permission", f"/app/allow-alb-{name}")
        assert permission["principal"] == "elasticloadbalancing.amazonaws.com"
        assert permission["qualifier"] == ref("aws_lambda_alias", alias_id, "name")
        assert permission["source_arn"] == ref("aws_lb_target_group", tg_id, "arn")


def test_https_listener_weights_and_tls_policy(prod_tf: dict[str, Any]) -> None:
    _, https = by_path(prod_tf, "aws_lb_listener", "/app/https")
    blue, _ = by_path(prod_tf, "aws_lb_target_group", "/app/tg-blue")
    green, _ = by_path(prod_tf, "aws_lb_target_group", "/app/tg-green")
    validation_id, _ = only(prod_tf, "aws_acm_certificate_validation")
    assert https["port"] == 443 and https["protocol"] == "HTTPS"
    assert https["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["certificate_arn"] == ref(
        "aws_acm_certificate_validation", validation_id, "certificate_arn"
    )
    assert https["default_action"] == [
        {
            "type": "forward",
            "forward": {
                "target_group": [
                    {"arn": ref("aws_lb_target_group", blue, "arn"), "weight": 100},
                    {"arn": ref("aws_lb_target_group", green, "arn"), "weight": 0},
                ]
            },
        }
    ]
    # Issue 15 item 6: the next apply must not revert the listener half of a rollback.
    assert https["lifecycle"] == {"ignore_changes": ["default_action"]}
    _, http = by_path(prod_tf, "aws_lb_listener", "/app/http-redirect")
    assert http["default_action"] == [
        {
            "type": "redirect",
            "redirect": {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"},
        }
    ]


def test_certificate_is_dns_validated_in_the_hosted_zone(prod_tf: dict[str, Any]) -> None:
    cert_id, cert = only(prod_tf, "aws_acm_certificate")
    assert cert["domain_name"] == "api.payments.example.com"
    assert cert["validation_method"] == "DNS"
    record_id, record = by_path(prod_tf, "aws_route53_record", "/app/certificate-validation-record")
    assert record["zone_id"] == "Z0EXAMPLE00000000000"
    assert (
        record["name"]
        == f"${{tolist(aws_acm_certificate.{cert_id}.domain_validation_options).0.resource_record_name}}"
    )
    _, validation = only(prod_tf, "aws_acm_certificate_validation")
    assert validation["validation_record_fqdns"] == [ref("aws_route53_record", record_id, "fqdn")]


def test_autoscaling_2_to_10_on_provisioned_utilization(prod_tf: dict[str, Any]) -> None:
    _, target = only(prod_tf, "aws_appautoscaling_target")
    assert target["service_namespace"] == "lambda"
    assert target["resource_id"] == "function:paymig-prod-payment-api:blue"
    assert target["scalable_dimension"] == "lambda:function:ProvisionedConcurrency"
    assert (target["min_capacity"], target["max_capacity"]) == (2, 10)
    _, scaling = only(prod_tf, "aws_appautoscaling_policy")
    assert scaling["policy_type"] == "TargetTrackingScaling"
    assert scaling["target_tracking_scaling_policy_configuration"] == {
        "target_value": 0.7,
        "predefined_metric_specification": {
            "predefined_metric_type": "LambdaProvisionedConcurrencyUtilization"
        },
    }
    _, provisioned = only(prod_tf, "aws_lambda_provisioned_concurrency_config")
    blue_id, _ = by_path(prod_tf, "aws_lambda_alias", "/app/alias-blue")
    assert provisioned["qualifier"] == ref("aws_lambda_alias", blue_id, "name")
    assert provisioned["provisioned_concurrent_executions"] == 2
    assert provisioned["lifecycle"] == {"ignore_changes": ["provisioned_concurrent_executions"]}


def test_alb_is_public_hardened_logged_and_behind_waf(prod_tf: dict[str, Any]) -> None:
    alb_id, alb = only(prod_tf, "aws_lb")
    bucket_id, _ = only(prod_tf, "aws_s3_bucket")
    assert alb["internal"] is False
    assert alb["load_balancer_type"] == "application"
    assert alb["drop_invalid_header_fields"] is True
    assert alb["enable_deletion_protection"] is True
    public = [
        ref("aws_subnet", by_path(prod_tf, "aws_subnet", f"/network/public-{z}")[0])
        for z in ("us-east-2a", "us-east-2b", "us-east-2c")
    ]
    assert alb["subnets"] == public
    assert alb["access_logs"] == {
        "bucket": ref("aws_s3_bucket", bucket_id),
        "prefix": "alb",
        "enabled": True,
    }
    acl_id, _ = only(prod_tf, "aws_wafv2_web_acl")
    _, association = only(prod_tf, "aws_wafv2_web_acl_association")
    assert association == {
        **association,
        "resource_arn": ref("aws_lb", alb_id, "arn"),
        "web_acl_arn": ref("aws_wafv2_web_acl", acl_id, "arn"),
    }
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/app/alb-sg")
    ingress = sorted(
        (r["from_port"], r["cidr_ipv4"])
        for r in resources(prod_tf, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == ref("aws_security_group", sg_id)
    )
    assert ingress == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]


def test_access_log_bucket(prod_tf: dict[str, Any]) -> None:
    bucket_id, _ = only(prod_tf, "aws_s3_bucket")
    bucket = ref("aws_s3_bucket", bucket_id)
    _, block = only(prod_tf, "aws_s3_bucket_public_access_block")
    assert block == {
        **block,
        "bucket": bucket,
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }
    _, versioning = only(prod_tf, "aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}
    _, sse = only(prod_tf, "aws_s3_bucket_server_side_encryption_configuration")
    assert sse["rule"] == [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]
    _, lifecycle = only(prod_tf, "aws_s3_bucket_lifecycle_configuration")
    (rule,) = lifecycle["rule"]
    assert rule["expiration"] == [{"days": 400}]
    assert rule["expiration"][0]["days"] >= 365
    _, bucket_policy = only(prod_tf, "aws_s3_bucket_policy")
    statements = {s["Sid"]: s for s in policy(bucket_policy["policy"])["Statement"]}
    assert statements["ElbWritesAccessLogs"]["Principal"] == {
        "AWS": "arn:aws:iam::033677994240:root"
    }
    assert statements["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def test_weighted_records_and_health_checks(prod_tf: dict[str, Any]) -> None:
    records = {
        r["set_identifier"]: r
        for r in resources(prod_tf, "aws_route53_record").values()
        if "set_identifier" in r
    }
    assert set(records) == {"legacy", "aws"}
    legacy, aws = records["legacy"], records["aws"]
    alb_id, _ = only(prod_tf, "aws_lb")
    assert legacy["name"] == aws["name"] == "api.payments.example.com"
    assert legacy["type"] == aws["type"] == "A"  # one type per weighted set
    assert legacy["ttl"] == 60
    assert legacy["records"] == ["203.0.113.20", "203.0.113.21"]
    assert aws["type"] == "A"
    assert aws["alias"] == {
        "name": ref("aws_lb", alb_id, "dns_name"),
        "zone_id": ref("aws_lb", alb_id, "zone_id"),
        "evaluate_target_health": True,
    }
    assert legacy["weighted_routing_policy"] == {"weight": 100}
    assert aws["weighted_routing_policy"] == {"weight": 0}
    for record in (legacy, aws):
        assert record["lifecycle"] == {"ignore_changes": ["weighted_routing_policy"]}
    checks = {
        r["tags"]["Name"]: (k, r) for k, r in resources(prod_tf, "aws_route53_health_check").items()
    }
    # One HTTPS check per legacy address, each with the API's host name (SNI and Host).
    children = []
    for address in ("203.0.113.20", "203.0.113.21"):
        child_id, child = checks[f"paymig-prod-legacy-{address}"]
        assert (child["type"], child["fqdn"], child["ip_address"], child["port"]) == (
            "HTTPS",
            "legacy-api.payments.example.com",
            address,
            443,
        )
        assert (child["resource_path"], child["request_interval"], child["failure_threshold"]) == (
            "/health",
            30,
            3,
        )
        assert child["enable_sni"] is True
        children.append(ref("aws_route53_health_check", child_id))
    # The legacy record uses a calculated check over them: unhealthy only when no address
    # answers (HealthThreshold 1), since an unhealthy legacy record at weight 100 / 0 makes
    # Route 53 answer with the weight-0 aws record.
    legacy_id, legacy_check = checks["paymig-prod-legacy"]
    assert legacy_check["type"] == "CALCULATED"
    assert legacy_check["child_healthchecks"] == children
    assert legacy_check["child_health_threshold"] == 1
    assert records["legacy"]["health_check_id"] == ref("aws_route53_health_check", legacy_id)
    aws_id, aws_check = checks["paymig-prod-aws"]
    assert (
        aws_check["type"],
        aws_check["fqdn"],
        aws_check["port"],
        aws_check["resource_path"],
    ) == (
        "HTTPS",
        ref("aws_lb", alb_id, "dns_name"),
        443,
        "/health",
    )
    assert "ip_address" not in aws_check
    assert records["aws"]["health_check_id"] == ref("aws_route53_health_check", aws_id)
    assert len(checks) == 4


# --------------------------------------------------------------------------- blue/green


def _diff(before: Any, after: Any, path: str = "") -> list[str]:
    """The paths of every leaf that differs between two JSON documents."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after))
            for change in _diff(before.get(key), after.get(key), f"{path}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after, strict=True))
                for c in _diff(b, a, f"{path}[{i}]")]  # fmt: skip
    return [] if before == after else [path]


@pytest.fixture(scope="module")
def blue_green(prod_config: PaymigConfig) -> dict[str, dict[str, Any]]:
    """The app tier with blue pinned to version 3, before and after a new image."""
    pinned = {"alias_versions": {"blue": "3", "green": "latest"}}
    documents = {}
    for tag in ("2026.11.29-1", "2026.12.06-1"):
        config = with_changes(prod_config, app={**pinned, "image_tag": tag})
        w = world(config)
        add_app(w)
        documents[tag] = w.synth()
    return documents


def test_a_pinned_alias_keeps_its_version_and_latest_follows_the_function(
    blue_green: dict[str, dict[str, Any]],
) -> None:
    """Pins defect 8: both aliases took `function.version`, so every apply moved both."""
    doc = blue_green["2026.11.29-1"]
    fn_id, _ = by_path(doc, "aws_lambda_function", "/app/api/function")
    _, blue = by_path(doc, "aws_lambda_alias", "/app/alias-blue")
    _, green = by_path(doc, "aws_lambda_alias", "/app/alias-green")
    assert blue["function_version"] == "3"
    assert green["function_version"] == ref("aws_lambda_function", fn_id, "version")


def test_a_new_image_changes_the_function_and_so_green_only(
    blue_green: dict[str, dict[str, Any]],
) -> None:
    """Pins defect 8: a new image must reach green while blue (the stable alias) stays.

    The two documents differ in exactly the function's image: with `publish = true` a new
    image publishes a new version, which green's `function_version` references; blue
    names version 3 literally, so its plan is empty.
    """
    before, after = blue_green["2026.11.29-1"], blue_green["2026.12.06-1"]
    fn_id, _ = by_path(before, "aws_lambda_function", "/app/api/function")
    changes = _diff(before["resource"], after["resource"])
    assert changes == [f".aws_lambda_function.{fn_id}.image_uri"]
    assert after["resource"]["aws_lambda_function"][fn_id]["image_uri"].endswith(":2026.12.06-1")
    assert after["resource"]["aws_lambda_function"][fn_id]["publish"] is True
    blue_id, _ = by_path(before, "aws_lambda_alias", "/app/alias-blue")
    assert (
        before["resource"]["aws_lambda_alias"][blue_id]
        == (after["resource"]["aws_lambda_alias"][blue_id])
    )
