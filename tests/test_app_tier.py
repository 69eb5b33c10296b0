"""Application and traffic tiers (requirements 3 and 5) on the synthesized prod stack."""

from __future__ import annotations

import json
from typing import Any

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
    _, fn = by_path(prod_tf, "aws_lambda_function", "/app/function")
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/app/key/key")
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/app/sg")
    assert fn["package_type"] == "Image"
    assert fn["image_uri"] == f"${{aws_ecr_repository.{repo_id}.repository_url}}:2026.11.29-1"
    assert fn["tracing_config"] == {"mode": "Active"}
    assert fn["kms_key_arn"] == ref("aws_kms_key", key_id, "arn")
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
    dlq_id, dlq = by_path(prod_tf, "aws_sqs_queue", "/app/dlq")
    assert fn["dead_letter_config"] == {"target_arn": ref("aws_sqs_queue", dlq_id, "arn")}
    assert dlq["kms_master_key_id"] == ref("aws_kms_key", key_id, "arn")
    log_id, log_group = by_path(prod_tf, "aws_cloudwatch_log_group", "/app/log-group")
    assert log_group["name"] == "/aws/lambda/paymig-prod-payment-api"
    assert log_group["retention_in_days"] == 365
    assert log_group["kms_key_id"] == ref("aws_kms_key", key_id, "arn")
    assert fn["logging_config"]["log_group"] == ref("aws_cloudwatch_log_group", log_id, "name")


def test_lambda_reads_credentials_from_secrets_manager(prod_tf: dict[str, Any]) -> None:
    _, fn = by_path(prod_tf, "aws_lambda_function", "/app/function")
    variables = fn["environment"]["variables"]
    secret_id, _ = by_path(prod_tf, "aws_secretsmanager_secret", "/replication/source-secret")
    # Until cutover the API writes to the on-prem system of record (app.write_target: source).
    assert variables == {
        "DB_SECRET_ARN": ref("aws_secretsmanager_secret", secret_id, "arn"),
        "DB_HOST": "192.0.2.20",
        "DB_PORT": "5432",
        "DB_NAME": "payments",
        "PAYMIG_ENVIRONMENT": "prod",
    }
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/app/role-policy")
    statements = {s["Sid"]: s for s in policy(inline["policy"])["Statement"]}
    assert statements["ReadDatabaseSecret"]["Resource"] == [
        ref("aws_secretsmanager_secret", secret_id, "arn")
    ]


def test_lambda_egress_is_database_and_https_only(prod_tf: dict[str, Any]) -> None:
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/app/sg")
    rules = [
        r
        for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == ref("aws_security_group", sg_id)
    ]
    assert sorted((r["from_port"], r.get("cidr_ipv4")) for r in rules) == [
        (443, "0.0.0.0/0"),
        (5432, "192.0.2.0/24"),
    ]
    assert all(r["description"] for r in rules)
    # The data tier accepts the API (and DMS) on 5432.
    data_sg, _ = by_path(prod_tf, "aws_security_group", "/data/sg")
    sources = {
        r["referenced_security_group_id"]
        for r in resources(prod_tf, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == ref("aws_security_group", data_sg)
    }
    dms_sg, _ = by_path(prod_tf, "aws_security_group", "/replication/security-group")
    checks_sg, _ = by_path(prod_tf, "aws_security_group", "/validation/sg")
    assert sources == {
        ref("aws_security_group", sg_id),
        ref("aws_security_group", dms_sg),
        ref("aws_security_group", checks_sg),
    }


def test_blue_green_aliases_and_target_groups(prod_tf: dict[str, Any]) -> None:
    fn_id, _ = by_path(prod_tf, "aws_lambda_function", "/app/function")
    aliases = {a["name"]: (k, a) for k, a in resources(prod_tf, "aws_lambda_alias").items()}
    assert set(aliases) == {"blue", "green"}
    for name, (alias_id, alias) in aliases.items():
        assert alias["function_version"] == ref("aws_lambda_function", fn_id, "version")
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
