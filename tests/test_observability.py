"""Observability and automation (requirements 6 and 8) on the synthesized prod stack."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from paymig.config import PaymigConfig
from paymig.infra.dashboard import Dashboard, GraphWidget, Metric, TextWidget
from tests.tf_helpers import by_path, only, policy, ref, resources

METRICS = [
    "5xx-rate",
    "p99-latency",
    "cdc-latency",
    "dms-task-failure",
    "aurora-cpu",
    "replica-lag",
]


def real_dimension_values(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Every value a dimension may take: the attributes of the resources it names."""
    alb_id, _ = only(doc, "aws_lb")
    cluster_id, _ = only(doc, "aws_rds_cluster")
    _, instance = only(doc, "aws_dms_replication_instance")
    fn_id, _ = by_path(doc, "aws_lambda_function", "/app/function")
    groups = {
        ref("aws_lb_target_group", k, "arn_suffix") for k in resources(doc, "aws_lb_target_group")
    }
    function = ref("aws_lambda_function", fn_id, "function_name")
    return {
        "LoadBalancer": {ref("aws_lb", alb_id, "arn_suffix")},
        "TargetGroup": groups,
        "DBClusterIdentifier": {ref("aws_rds_cluster", cluster_id, "cluster_identifier")},
        "Role": {"WRITER", "READER"},
        "ReplicationInstanceIdentifier": {instance["replication_instance_id"]},
        "ReplicationTaskIdentifier": {f"${{local.{name}}}" for name in doc["locals"]},
        "FunctionName": {function},
        "Resource": {f"{function}:blue", f"{function}:green"},
        "Environment": {"prod"},
        "SetIdentifier": {"legacy", "aws"},
    }


def alarms(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["alarm_name"]: a for a in resources(doc, "aws_cloudwatch_metric_alarm").values()}


def test_six_alarms_from_config_with_real_dimensions(
    prod_tf: dict[str, Any], prod_config: PaymigConfig
) -> None:
    found = alarms(prod_tf)
    assert sorted(found) == sorted(f"paymig-prod-{m}" for m in METRICS)
    allowed = real_dimension_values(prod_tf)
    for metric in METRICS:
        alarm = found[f"paymig-prod-{metric}"]
        settings = prod_config.observability.alarms[metric]  # type: ignore[index]
        assert alarm["threshold"] == settings.threshold
        assert alarm["evaluation_periods"] == settings.evaluation_periods
        assert alarm["datapoints_to_alarm"] == settings.datapoints_to_alarm
        assert alarm["treat_missing_data"] == settings.treat_missing_data
        assert settings.missing_data_reason in alarm["alarm_description"]
        assert alarm["comparison_operator"] == "GreaterThanThreshold"
        assert sum(1 for q in alarm["metric_query"] if q.get("return_data")) == 1
        for query in alarm["metric_query"]:
            if "metric" not in query:
                continue
            m = query["metric"]
            assert m["period"] == settings.period_seconds
            if metric == "dms-task-failure":
                # a log-metric-filter metric: per-stack name instead of dimensions
                assert m["metric_name"] == "DmsTaskErrors-paymig-prod" and "dimensions" not in m
                continue
            assert m["dimensions"], f"{metric}: a metric without dimensions never has data"
            for key, value in m["dimensions"].items():
                assert value in allowed[key], f"{metric}: {key}={value} names no real resource"


def test_5xx_rate_is_metric_math_over_request_count(prod_tf: dict[str, Any]) -> None:
    alarm = alarms(prod_tf)["paymig-prod-5xx-rate"]
    names = {q["id"]: q["metric"]["metric_name"] for q in alarm["metric_query"] if "metric" in q}
    assert names == {
        "m1": "HTTPCode_ELB_5XX_Count",
        "m2": "HTTPCode_Target_5XX_Count",
        "m3": "RequestCount",
    }
    (expression,) = [q for q in alarm["metric_query"] if "expression" in q]
    assert expression["expression"] == "IF(m3 > 0, 100 * (FILL(m1, 0) + FILL(m2, 0)) / m3, 0)"
    assert expression["return_data"] is True
    p99 = alarms(prod_tf)["paymig-prod-p99-latency"]["metric_query"][0]["metric"]
    assert (p99["metric_name"], p99["stat"]) == ("TargetResponseTime", "p99")


def test_dms_task_resource_id_is_the_last_field_of_the_task_arn(prod_tf: dict[str, Any]) -> None:
    task_id, _ = only(prod_tf, "aws_dms_replication_task")
    (value,) = prod_tf["locals"].values()
    assert (
        value
        == f'${{element(split(":", aws_dms_replication_task.{task_id}.replication_task_arn), 6)}}'
    )


def test_dms_errors_metric_filter_feeds_the_failure_alarm(prod_tf: dict[str, Any]) -> None:
    _, log_group = by_path(prod_tf, "aws_cloudwatch_log_group", "/observability/dms-log-group")
    _, instance = only(prod_tf, "aws_dms_replication_instance")
    assert log_group["name"] == f"dms-tasks-{instance['replication_instance_id']}"
    _, metric_filter = only(prod_tf, "aws_cloudwatch_log_metric_filter")
    assert metric_filter["pattern"] == '"]E:"'
    assert metric_filter["metric_transformation"]["name"] == "DmsTaskErrors-paymig-prod"


def test_composite_alarm_triggers_the_rollback_lambda(prod_tf: dict[str, Any]) -> None:
    _, composite = only(prod_tf, "aws_cloudwatch_composite_alarm")
    assert composite["alarm_name"] == "paymig-prod-migration-health"
    assert composite["alarm_rule"] == " OR ".join(f'ALARM("paymig-prod-{m}")' for m in METRICS)
    topic_id, topic = by_path(prod_tf, "aws_sns_topic", "/observability/topic")
    alert_id, _ = by_path(prod_tf, "aws_sns_topic", "/observability/alert-topic")
    assert topic["name"] == "paymig-prod-migration-alarms"
    assert topic["kms_master_key_id"].startswith("${aws_kms_key.observability_key")
    assert composite["alarm_actions"] == [ref("aws_sns_topic", topic_id, "arn")]
    for alarm in alarms(prod_tf).values():
        assert alarm["alarm_actions"] == [ref("aws_sns_topic", alert_id, "arn")]
    fn_id, _fn = by_path(prod_tf, "aws_lambda_function", "/automation/rollback")
    _, subscription = by_path(prod_tf, "aws_sns_topic_subscription", "/automation/subscription")
    assert subscription["protocol"] == "lambda"
    assert subscription["topic_arn"] == ref("aws_sns_topic", topic_id, "arn")
    assert subscription["endpoint"] == ref("aws_lambda_function", fn_id, "arn")
    assert json.loads(subscription["filter_policy"]) == {"paymig_source": [{"exists": False}]}
    _, permission = by_path(prod_tf, "aws_lambda_permission", "/automation/allow-sns")
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["source_arn"] == ref("aws_sns_topic", topic_id, "arn")
    assert permission["function_name"] == ref("aws_lambda_function", fn_id, "function_name")
    emails = [
        s
        for s in resources(prod_tf, "aws_sns_topic_subscription").values()
        if s["protocol"] == "email"
    ]
    assert {s["endpoint"] for s in emails} == {"payments-oncall@example.com"}


def test_rollback_function_configuration_and_package(
    prod_tf: dict[str, Any], prod_synth: Any
) -> None:
    _, fn = by_path(prod_tf, "aws_lambda_function", "/automation/rollback")
    assert fn["function_name"] == "paymig-prod-rollback"
    assert fn["handler"] == "paymig.lambdas.rollback.handler"
    assert fn["runtime"] == "python3.11"
    assert fn["timeout"] >= 150
    assert fn["environment"]["variables"] == {
        "PAYMIG_STACK_NAME": "paymig-prod",
        "PAYMIG_ENVIRONMENT": "prod",
        "PAYMIG_HOSTED_ZONE_ID": "Z0EXAMPLE00000000000",
        "PAYMIG_RECORD_NAME": "api.payments.example.com",
        "PAYMIG_STABLE_ALIAS": "blue",
        "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": "60",
        "PAYMIG_LOCK_TTL_SECONDS": "600",
    }
    package = prod_synth.stack_dir / fn["filename"]
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert "paymig/lambdas/rollback.py" in names
    assert "paymig/runtime/controller/aws.py" in names
    assert not any(n.startswith(("paymig/infra/", "paymig/config/")) for n in names)
    import base64
    import hashlib

    assert (
        fn["source_code_hash"]
        == base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()
    )


def test_rollback_iam_is_scoped_to_zone_listener_table_topic(prod_tf: dict[str, Any]) -> None:
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/automation/role-policy")
    statements = {s["Sid"]: s for s in policy(inline["policy"])["Statement"]}
    assert statements["WeightedRecordsOfOneZone"]["Resource"] == [
        "arn:aws:route53:::hostedzone/Z0EXAMPLE00000000000"
    ]
    https_id, _ = by_path(prod_tf, "aws_lb_listener", "/app/https")
    assert statements["ListenerBackToStable"]["Resource"] == [
        ref("aws_lb_listener", https_id, "arn")
    ]
    table_id, _ = only(prod_tf, "aws_dynamodb_table")
    assert statements["AuditTrailAndLock"]["Resource"] == [
        ref("aws_dynamodb_table", table_id, "arn")
    ]
    topic_id, _ = by_path(prod_tf, "aws_sns_topic", "/observability/topic")
    assert statements["Notify"]["Resource"] == [ref("aws_sns_topic", topic_id, "arn")]
    assert statements["TrafficMetric"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Paymig/Migration"}
    }


def test_audit_table(prod_tf: dict[str, Any]) -> None:
    _, table = only(prod_tf, "aws_dynamodb_table")
    assert table["name"] == "paymig-prod-migration-audit"
    assert (table["hash_key"], table["range_key"]) == ("pk", "sk")
    assert table["attribute"] == [{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}]
    assert table["server_side_encryption"]["enabled"] is True
    assert table["server_side_encryption"]["kms_key_arn"].startswith("${aws_kms_key.automation_key")
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["deletion_protection_enabled"] is True


def dashboard_metrics(doc: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    _, dashboard = only(doc, "aws_cloudwatch_dashboard")
    body = json.loads(dashboard["dashboard_body"])
    out = []
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            out += [(widget["properties"]["title"], m) for m in widget["properties"]["metrics"]]
    return out


def test_every_dashboard_metric_is_dimensioned_by_a_real_resource(prod_tf: dict[str, Any]) -> None:
    allowed = real_dimension_values(prod_tf)
    metrics = dashboard_metrics(prod_tf)
    assert len(metrics) >= 25
    for title, entry in metrics:
        if isinstance(entry[0], dict):  # a metric-math or SEARCH expression
            assert "expression" in entry[0]
            continue
        pairs = entry[2:-1]
        assert pairs, f"{title}: {entry[1]} has no dimensions and would show nothing"
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            assert value in allowed.get(key, {"prod", "USD"}), f"{title}: {key}={value}"


def test_dashboard_has_every_panel(prod_tf: dict[str, Any]) -> None:
    titles = {title for title, _ in dashboard_metrics(prod_tf)}
    for needed in (
        "DMS full load throughput (rows/s)",
        "DMS CDC latency (s)",
        "DMS CDC incoming changes",
        "Validation failures and suspended records (from table statistics)",
        "Traffic split (% of requests per record)",
        "API latency (s)",
        "API errors",
        "Lambda errors and throttles",
        "Writer CPU (%)",
        "Connections",
        "Replica lag (ms)",
        "Free local storage (bytes)",
        "Payments processed",
        "Payment success rate (%)",
        "Payment value by currency",
    ):
        assert needed in titles
    latency = [e for t, e in dashboard_metrics(prod_tf) if t == "API latency (s)"]
    assert [e[-1]["stat"] for e in latency] == ["p50", "p95", "p99"]


def test_dashboard_model_lays_out_a_24_column_grid() -> None:
    board = Dashboard(region="us-east-2").add(
        TextWidget("# title"),
        GraphWidget("a", (Metric("N", "M", (("D", "v"),)),), width=16),
        GraphWidget(
            "b",
            (Metric("N", "M", (("D", "v"),), "Sum", label="l", id="x", visible=False),),
            width=16,
        ),
    )
    widgets = board.body()["widgets"]
    assert [(w["x"], w["y"]) for w in widgets] == [(0, 0), (0, 1), (0, 7)]
    assert widgets[2]["properties"]["metrics"] == [
        ["N", "M", "D", "v", {"stat": "Sum", "label": "l", "id": "x", "visible": False}]
    ]


@pytest.mark.parametrize("path", ["src/paymig/lambdas/rollback.py"])
def test_rollback_handler_needs_no_pydantic(path: str) -> None:
    """The function's package holds no pydantic or YAML (see ROLLBACK_MODULES)."""
    from paymig.infra.automation import ROLLBACK_MODULES
    from paymig.infra.lambda_package import build_package

    package = build_package("rollback-test", ROLLBACK_MODULES)
    assert not any("pydantic" in f or "yaml" in f for f in package.files)
    assert Path(path).exists()
    again = build_package("rollback-test", ROLLBACK_MODULES)
    assert again.sha256_base64 == package.sha256_base64  # reproducible
