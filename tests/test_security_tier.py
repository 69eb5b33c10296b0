"""WAF (requirement 7) on the synthesized prod stack."""

from __future__ import annotations

from typing import Any

from tests.tf_helpers import only, ref


def rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    _, acl = only(doc, "aws_wafv2_web_acl")
    return {r["name"]: r for r in acl["rule"]}


def test_web_acl_is_regional_and_allows_by_default(prod_tf: dict[str, Any]) -> None:
    _, acl = only(prod_tf, "aws_wafv2_web_acl")
    assert acl["scope"] == "REGIONAL"
    assert acl["default_action"] == {"allow": {}}
    assert acl["visibility_config"]["cloudwatch_metrics_enabled"] is True


def test_rate_limit_is_1000_per_60_seconds_per_ip(prod_tf: dict[str, Any]) -> None:
    rule = rules(prod_tf)["rate-limit-per-ip"]
    assert rule["priority"] == 0
    assert rule["action"] == {"block": {}}
    assert rule["statement"] == {
        "rate_based_statement": {
            "limit": 1000,
            "aggregate_key_type": "IP",
            "evaluation_window_sec": 60,
        }
    }


def test_managed_rule_sets(prod_tf: dict[str, Any]) -> None:
    found = rules(prod_tf)
    for priority, group in enumerate(
        [
            "AWSManagedRulesKnownBadInputsRuleSet",
            "AWSManagedRulesSQLiRuleSet",
            "AWSManagedRulesCommonRuleSet",
        ],
        start=1,
    ):
        rule = found[group]
        assert rule["priority"] == priority
        assert rule["override_action"] == {"none": {}}
        assert rule["statement"] == {
            "managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}
        }
    anonymous = found["AWSManagedRulesAnonymousIpList"]
    assert anonymous["priority"] == 4
    assert anonymous["override_action"] == {"none": {}}
    assert anonymous["statement"]["managed_rule_group_statement"]["rule_action_override"] == [
        {"name": "HostingProviderIPList", "action_to_use": {"count": {}}}
    ]
    assert len(found) == 5


def test_metrics_on_for_every_rule(prod_tf: dict[str, Any]) -> None:
    for name, rule in rules(prod_tf).items():
        assert rule["visibility_config"] == {
            "cloudwatch_metrics_enabled": True,
            "metric_name": f"paymig-prod-{name}",
            "sampled_requests_enabled": True,
        }


def test_logging_redacts_credentials_to_an_encrypted_group(prod_tf: dict[str, Any]) -> None:
    acl_id, _ = only(prod_tf, "aws_wafv2_web_acl")
    _, logging = only(prod_tf, "aws_wafv2_web_acl_logging_configuration")
    assert logging["resource_arn"] == ref("aws_wafv2_web_acl", acl_id, "arn")
    assert logging["redacted_fields"] == [
        {"single_header": {"name": "authorization"}},
        {"single_header": {"name": "cookie"}},
    ]
    groups = {
        ref("aws_cloudwatch_log_group", k, "arn"): g
        for k, g in prod_tf["resource"]["aws_cloudwatch_log_group"].items()
    }
    (destination,) = logging["log_destination_configs"]
    group = groups[destination]
    assert group["name"] == "aws-waf-logs-paymig-prod"
    assert group["kms_key_id"].startswith("${aws_kms_key.security_log-key")
    assert group["retention_in_days"] == 365
