"""Observability and automation (requirements 6 and 8) on the synthesized prod stack."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from paymig.config import ObservabilityConfig, PaymigConfig
from paymig.infra.dashboard import Dashboard, GraphWidget, Metric, TextWidget
from paymig.semantics import sns_filter
from paymig.semantics.cloudwatch_alarm import (
    AlarmState,
    MetricAlarm,
    TreatMissingData,
    evaluate_range,
)
from tests.tf_helpers import by_path, only, path_of, policy, ref, resources

METRICS = [
    "5xx-rate",
    "p99-latency",
    "cdc-latency",
    "dms-task-failure",
    "aurora-cpu",
    "replica-lag",
]


#: Alarms on the rollback function itself (`ObservabilityTier.watch_function`).
WATCHERS = ["rollback-dead-letters", "rollback-errors", "rollback-throttles"]


def real_dimension_values(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Every value a dimension may take: the attributes of the resources it names."""
    alb_id, _ = only(doc, "aws_lb")
    cluster_id, _ = only(doc, "aws_rds_cluster")
    _, instance = only(doc, "aws_dms_replication_instance")
    fn_id, _ = by_path(doc, "aws_lambda_function", "/app/api/function")
    rollback_id, _ = by_path(doc, "aws_lambda_function", "/automation/rollback/function")
    dlq_id, _ = by_path(doc, "aws_sqs_queue", "/automation/rollback/dlq")
    groups = {
        ref("aws_lb_target_group", k, "arn_suffix") for k in resources(doc, "aws_lb_target_group")
    }
    function = ref("aws_lambda_function", fn_id, "function_name")
    rollback = ref("aws_lambda_function", rollback_id, "function_name")
    return {
        "LoadBalancer": {ref("aws_lb", alb_id, "arn_suffix")},
        "TargetGroup": groups,
        "DBClusterIdentifier": {ref("aws_rds_cluster", cluster_id, "cluster_identifier")},
        "Role": {"WRITER", "READER"},
        "ReplicationInstanceIdentifier": {instance["replication_instance_id"]},
        "ReplicationTaskIdentifier": {f"${{local.{name}}}" for name in doc["locals"]},
        "FunctionName": {function, rollback},
        "QueueName": {ref("aws_sqs_queue", dlq_id, "name")},
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
    assert sorted(found) == sorted(f"paymig-prod-{m}" for m in METRICS + WATCHERS)
    allowed = real_dimension_values(prod_tf)
    for metric in METRICS + WATCHERS:
        for query in found[f"paymig-prod-{metric}"]["metric_query"]:
            for key, value in query.get("metric", {}).get("dimensions", {}).items():
                assert value in allowed[key], f"{metric}: {key}={value} names no real resource"
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


def _resource_id_of(task_id: str) -> str:
    return f'${{element(split(":", aws_dms_replication_task.{task_id}.replication_task_arn), 6)}}'


def test_dms_task_resource_ids_are_the_last_field_of_each_task_arn(prod_tf: dict[str, Any]) -> None:
    task_id, _ = by_path(prod_tf, "aws_dms_replication_task", "/replication/task")
    reverse_id, _ = by_path(prod_tf, "aws_dms_replication_task", "/replication/reverse-task")
    named = {
        k.removeprefix("observability_").rsplit("_", 1)[0]: v for k, v in prod_tf["locals"].items()
    }
    assert named == {
        "dms_task_resource_id": _resource_id_of(task_id),
        "dms_reverse_task_resource_id": _resource_id_of(reverse_id),
    }


def test_cdc_latency_alarm_follows_the_replicating_direction(prod_tf: dict[str, Any]) -> None:
    """Issue 17: the cutover stops the forward task on purpose; the alarm must then watch
    the reverse task (the way back) instead of paging on the forward task's silence.

    The exact synthesized queries, then their meaning: the synthesized expression is
    evaluated with CloudWatch's documented metric math (`cloudwatch_metric_math`) and the
    alarm with its documented evaluation (`cloudwatch_alarm`), period by period. moto
    evaluates neither, so this is where the behaviour is checked; AWS's actual
    CDCLatencyTarget publishing (only while a task runs CDC) is DMS's documented
    behaviour the design relies on, not something a test here can observe.
    """
    from paymig.semantics.cloudwatch_metric_math import evaluate_expression

    alarm = alarms(prod_tf)["paymig-prod-cdc-latency"]
    forward, reverse = (
        f"${{local.{k}}}" for k in sorted(prod_tf["locals"], key=lambda k: "reverse" in k)
    )
    instance = "paymig-prod-dms"

    def latency(query_id: str, task: str) -> dict[str, Any]:
        return {
            "id": query_id,
            "return_data": False,
            "metric": {
                "namespace": "AWS/DMS",
                "metric_name": "CDCLatencyTarget",
                "dimensions": {
                    "ReplicationInstanceIdentifier": instance,
                    "ReplicationTaskIdentifier": task,
                },
                "stat": "Maximum",
                "period": 60,
            },
        }

    assert alarm["metric_query"] == [
        latency("m1", forward),
        latency("m2", reverse),
        {
            "id": "e1",
            "expression": "IF(m1 >= m2, m1, m2)",
            "label": "CDC latency of the replicating task (s)",
            "return_data": True,
        },
    ]
    assert (alarm["treat_missing_data"], alarm["threshold"]) == ("breaching", 30)
    model = MetricAlarm(
        comparison_operator=alarm["comparison_operator"],
        threshold=alarm["threshold"],
        period_seconds=60,
        evaluation_periods=alarm["evaluation_periods"],
        datapoints_to_alarm=alarm["datapoints_to_alarm"],
        treat_missing_data=TreatMissingData(alarm["treat_missing_data"]),
    )
    grid = [datetime(2026, 12, 2, 6, minute, tzinfo=UTC) for minute in range(5)]

    def state(m1: list[float | None], m2: list[float | None]) -> tuple[Any, ...]:
        series = {
            name: {t: v for t, v in zip(grid, values, strict=True) if v is not None}
            for name, values in (("m1", m1), ("m2", m2))
        }
        result = evaluate_expression(alarm["metric_query"][2]["expression"], series, grid)
        values = [result.get(t) for t in grid]
        return tuple(values), evaluate_range(model, values, AlarmState.OK).state

    none: list[float | None] = [None] * 5
    # Replicating: the forward task reports, the reverse task is stopped.
    assert state([5, 4, 0, 6, 5], none) == ((5, 4, 0, 6, 5), AlarmState.OK)
    # Cutover: both report for a while, then the forward task is stopped.
    assert state([5, 5, None, None, None], [None, 3, 2, 0, 4]) == (
        (5, 5, 2, 0, 4),
        AlarmState.OK,
    )
    # Cut over: only the way back reports; it lagging alarms.
    assert state(none, [3, 2, 45, 50, 60]) == ((3, 2, 45, 50, 60), AlarmState.ALARM)
    # Neither direction replicates (the reverse task failed, or never started): with 2 of
    # the 5 retrieved periods still real it waits; one period later it alarms.
    assert state([5, 5, None, None, None], none)[1] is AlarmState.OK
    assert state([5, None, None, None, None], none)[1] is AlarmState.ALARM
    assert state(none, none)[1] is AlarmState.ALARM


def test_dms_errors_metric_filter_feeds_the_failure_alarm(prod_tf: dict[str, Any]) -> None:
    _, log_group = by_path(prod_tf, "aws_cloudwatch_log_group", "/observability/dms-log-group")
    _, instance = only(prod_tf, "aws_dms_replication_instance")
    assert log_group["name"] == f"dms-tasks-{instance['replication_instance_id']}"
    _, metric_filter = only(prod_tf, "aws_cloudwatch_log_metric_filter")
    assert metric_filter["pattern"] == '"]E:"'
    assert metric_filter["metric_transformation"]["name"] == "DmsTaskErrors-paymig-prod"


def test_composite_alarm_is_the_user_facing_health_and_triggers_the_rollback(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 9: the composite OR-ed every alarm, so CDC's missing data held it in
    ALARM from the first apply; only what a traffic rollback fixes may feed it."""
    _, composite = only(prod_tf, "aws_cloudwatch_composite_alarm")
    assert composite["alarm_name"] == "paymig-prod-migration-health"
    assert (
        composite["alarm_rule"]
        == 'ALARM("paymig-prod-5xx-rate") OR ALARM("paymig-prod-p99-latency")'
    )
    watched = [
        by_path(prod_tf, "aws_cloudwatch_metric_alarm", f"/alarm-{m}")[0]
        for m in ("5xx-rate", "p99-latency")
    ]
    assert composite["depends_on"] == [f"aws_cloudwatch_metric_alarm.{a}" for a in watched]
    topic_id, topic = by_path(prod_tf, "aws_sns_topic", "/observability/topic")
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/observability/key/key")
    assert topic == {**topic, "name": "paymig-prod-migration-alarms",
                     "kms_master_key_id": ref("aws_kms_key", key_id, "arn")}  # fmt: skip
    assert composite["actions_enabled"] is True
    assert (
        composite["alarm_actions"]
        == composite["ok_actions"]
        == [ref("aws_sns_topic", topic_id, "arn")]
    )
    fn_id, _ = by_path(prod_tf, "aws_lambda_function", "/automation/rollback/function")
    _, subscription = by_path(prod_tf, "aws_sns_topic_subscription", "/automation/subscription")
    assert {k: v for k, v in subscription.items() if k != "//"} == {
        "topic_arn": ref("aws_sns_topic", topic_id, "arn"),
        "protocol": "lambda",
        "endpoint": ref("aws_lambda_function", fn_id, "arn"),
        "filter_policy_scope": "MessageBody",
        "filter_policy": json.dumps(
            {"AlarmName": ["paymig-prod-migration-health"], "NewStateValue": ["ALARM"]}
        ),
    }
    _, permission = by_path(prod_tf, "aws_lambda_permission", "/automation/allow-sns")
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["source_arn"] == ref("aws_sns_topic", topic_id, "arn")
    assert permission["function_name"] == ref("aws_lambda_function", fn_id, "function_name")
    # The only subscription on the composite's topic besides the function: people.
    on_topic = [
        s for s in resources(prod_tf, "aws_sns_topic_subscription").values()
        if s["topic_arn"] == ref("aws_sns_topic", topic_id, "arn")
    ]  # fmt: skip
    assert sorted((s["protocol"], s["endpoint"]) for s in on_topic) == [
        ("email", "payments-oncall@example.com"),
        ("lambda", ref("aws_lambda_function", fn_id, "arn")),
    ]


def _notification(alarm: dict[str, Any], state: str) -> str:
    """The message CloudWatch publishes when ``alarm`` (a synthesized body) enters ``state``."""
    from paymig.semantics.cloudwatch_notification import (
        AlarmIdentity,
        StateChange,
        composite_alarm_notification,
        expression_query,
        metric_alarm_notification,
        metric_query_trigger,
        metric_stat_query,
        single_metric_trigger,
    )

    identity = AlarmIdentity(
        name=alarm["alarm_name"],
        description=alarm["alarm_description"],
        account_id="111122223333",
        region="us-east-2",
        region_name="US East (Ohio)",
        ok_actions=tuple(alarm["ok_actions"]),
        alarm_actions=tuple(alarm["alarm_actions"]),
    )
    new = AlarmState(state)
    old = AlarmState.OK if new is AlarmState.ALARM else AlarmState.ALARM
    change = StateChange(new, old, f"entered {state}", datetime(2026, 11, 29, 12, tzinfo=UTC))
    if "alarm_rule" in alarm:
        message = composite_alarm_notification(
            identity, change, alarm_rule=alarm["alarm_rule"], triggering_children=()
        )
    else:
        queries = alarm["metric_query"]
        metric = next(q["metric"] for q in queries if "metric" in q)
        settings = MetricAlarm(
            comparison_operator=alarm["comparison_operator"],
            threshold=alarm["threshold"],
            period_seconds=metric["period"],
            evaluation_periods=alarm["evaluation_periods"],
            datapoints_to_alarm=alarm["datapoints_to_alarm"],
            treat_missing_data=TreatMissingData(alarm["treat_missing_data"]),
        )
        if len(queries) == 1:
            trigger = single_metric_trigger(
                settings,
                metric_name=metric["metric_name"],
                namespace=metric["namespace"],
                statistic=metric["stat"],
                dimensions=metric.get("dimensions", {}),
            )
        else:  # an alarm on a math expression: its inputs and the expression
            trigger = metric_query_trigger(
                settings,
                [
                    expression_query(q["id"], q["expression"], q["label"], returned=True)
                    if "expression" in q
                    else metric_stat_query(
                        q["id"],
                        namespace=q["metric"]["namespace"],
                        metric_name=q["metric"]["metric_name"],
                        dimensions=q["metric"].get("dimensions", {}),
                        period=q["metric"]["period"],
                        stat=q["metric"]["stat"],
                        returned=q["return_data"],
                    )
                    for q in queries
                ],
            )
        message = metric_alarm_notification(
            identity, change, trigger, configuration_updated_at=change.changed_at
        )
    return json.dumps(message)


def test_subscription_filter_admits_exactly_the_composites_alarm_notification(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 5: the filter was `{"paymig_source": [{"exists": false}]}` on
    MessageAttributes, which never matches a CloudWatch notification (it has no message
    attributes), so the rollback never ran.

    Evaluated with AWS's documented filter semantics (paymig.semantics.sns_filter) on the
    notifications as CloudWatch builds them. moto matches differently: it delivers that
    old filter's messages, so an emulator run cannot catch this.
    """
    _, subscription = by_path(prod_tf, "aws_sns_topic_subscription", "/automation/subscription")
    policy_ = json.loads(subscription["filter_policy"])
    scope = subscription["filter_policy_scope"]
    _, composite = only(prod_tf, "aws_cloudwatch_composite_alarm")

    def delivered(message: str) -> bool:
        return sns_filter.matches(policy_, scope, message=message, attributes={})

    assert delivered(_notification(composite, "ALARM"))
    assert not delivered(_notification(composite, "OK"))
    for metric in ("5xx-rate", "p99-latency", "cdc-latency", "aurora-cpu"):
        _, alarm = by_path(prod_tf, "aws_cloudwatch_metric_alarm", f"/alarm-{metric}")
        assert not delivered(_notification(alarm, "ALARM"))
    # The old filter, as AWS evaluates it, would not deliver the composite's ALARM.
    old = {"paymig_source": [{"exists": False}]}
    assert not sns_filter.matches(
        old, "MessageAttributes", message=_notification(composite, "ALARM"),
        attributes={},
    )  # fmt: skip


def test_rollback_publishes_only_to_the_alert_topic(prod_tf: dict[str, Any]) -> None:
    """The rollback's own notifications can never reach the topic that invokes it."""
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/automation/rollback/role-policy")
    alert_id, _ = by_path(prod_tf, "aws_sns_topic", "/observability/alert-topic")
    publishing = [
        s for s in policy(inline["policy"])["Statement"]
        if any(a.startswith("sns:") for a in s["Action"])
    ]  # fmt: skip
    assert publishing == [
        {
            "Sid": "Notify",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": [ref("aws_sns_topic", alert_id, "arn")],
        }
    ]
    _, fn = by_path(prod_tf, "aws_lambda_function", "/automation/rollback/function")
    assert fn["environment"]["variables"]["PAYMIG_ALERT_TOPIC_ARN"] == ref(
        "aws_sns_topic", alert_id, "arn"
    )


def test_rollback_function_configuration_and_package(
    prod_tf: dict[str, Any], prod_synth: Any
) -> None:
    _, fn = by_path(prod_tf, "aws_lambda_function", "/automation/rollback/function")
    alert_id, _ = by_path(prod_tf, "aws_sns_topic", "/observability/alert-topic")
    assert fn["function_name"] == "paymig-prod-rollback"
    assert fn["handler"] == "paymig.lambdas.rollback.handler"
    assert fn["runtime"] == "python3.11"
    # The timeout is the bounded rollback path (controller docs: 210 s for prod), and
    # the handler's and Lambda's event-age limits are the same number.
    assert fn["timeout"] == 210
    assert fn["environment"]["variables"] == {
        "PAYMIG_STACK_NAME": "paymig-prod",
        "PAYMIG_ENVIRONMENT": "prod",
        "PAYMIG_HOSTED_ZONE_ID": "Z0EXAMPLE00000000000",
        "PAYMIG_RECORD_NAME": "api.payments.example.com",
        "PAYMIG_STABLE_ALIAS": "blue",
        "PAYMIG_ALERT_TOPIC_ARN": ref("aws_sns_topic", alert_id, "arn"),
        "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": "60",
        "PAYMIG_LOCK_TTL_SECONDS": "600",
        "PAYMIG_ROUTE53_SUBMIT_SECONDS": "30",
        "PAYMIG_MAX_EVENT_AGE_SECONDS": "660",
    }
    _, invoke = only(prod_tf, "aws_lambda_function_event_invoke_config")
    assert (invoke["maximum_retry_attempts"], invoke["maximum_event_age_in_seconds"]) == (2, 660)
    package = prod_synth.stack_dir / fn["filename"]
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert "paymig/lambdas/rollback.py" in names
    assert "paymig/runtime/controller/aws.py" in names
    assert "paymig/rollback_timing.py" in names
    assert not any(n.startswith(("paymig/infra/", "paymig/config/")) for n in names)
    import base64
    import hashlib

    assert (
        fn["source_code_hash"]
        == base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()
    )


def test_rollback_iam_is_scoped_to_zone_listener_table_topic(prod_tf: dict[str, Any]) -> None:
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/automation/rollback/role-policy")
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
    alert_id, _ = by_path(prod_tf, "aws_sns_topic", "/observability/alert-topic")
    assert statements["Notify"]["Resource"] == [ref("aws_sns_topic", alert_id, "arn")]
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


def test_the_stack_packages_exactly_what_the_handler_declares() -> None:
    """The handler's import closure is checked against PACKAGE_MODULES (test_controller_core);
    the stack must package that same list, or the function fails at import on AWS."""
    from paymig.infra.automation import ROLLBACK_MODULES
    from paymig.lambdas.rollback import PACKAGE_MODULES

    assert set(ROLLBACK_MODULES) == set(PACKAGE_MODULES)


# --------------------------------------------------------------------------- by stage

ARMED_BY_STAGE = {"bootstrap": False, "full-load": False, "cdc": True}


@pytest.mark.parametrize("stage", list(ARMED_BY_STAGE))
def test_replication_alarms_notify_only_once_cdc_runs(
    stage: str, prod_at_stage: Callable[[str], dict[str, Any]]
) -> None:
    """Pins defect 9: cdc-latency treats missing data as breaching and there is no CDC
    metric before CDC runs, so an armed alarm paged (and rolled back) from the first apply.
    """
    doc = prod_at_stage(stage)
    alert_id, _ = by_path(doc, "aws_sns_topic", "/observability/alert-topic")
    alert = [ref("aws_sns_topic", alert_id, "arn")]
    found = alarms(doc)
    for metric in ("cdc-latency", "dms-task-failure"):
        alarm = found[f"paymig-prod-{metric}"]
        expected = alert if ARMED_BY_STAGE[stage] else []
        assert (alarm["alarm_actions"], alarm["ok_actions"]) == (expected, expected), metric
    for metric in ("5xx-rate", "p99-latency", "aurora-cpu", "replica-lag", *WATCHERS):
        alarm = found[f"paymig-prod-{metric}"]
        assert (alarm["alarm_actions"], alarm["ok_actions"]) == (alert, alert), metric
    _, composite = only(doc, "aws_cloudwatch_composite_alarm")
    assert composite["alarm_rule"] == (
        'ALARM("paymig-prod-5xx-rate") OR ALARM("paymig-prod-p99-latency")'
    )


def test_no_replication_alarms_once_finished(
    prod_at_stage: Callable[[str], dict[str, Any]],
) -> None:
    doc = prod_at_stage("finished")
    assert sorted(alarms(doc)) == sorted(
        f"paymig-prod-{m}"
        for m in ("5xx-rate", "p99-latency", "aurora-cpu", "replica-lag", *WATCHERS)
    )
    assert "aws_cloudwatch_log_metric_filter" not in doc["resource"]
    assert "locals" not in doc or not doc["locals"]


def test_dms_task_failure_is_3_of_5_periods_by_default_and_in_every_shipped_file(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 9: 1 of 1 at threshold 0 paged on every recoverable full-load error."""
    default = ObservabilityConfig().alarms["dms-task-failure"]
    assert (default.threshold, default.period_seconds) == (0, 60)
    assert (default.evaluation_periods, default.datapoints_to_alarm) == (5, 3)
    repo = Path(__file__).resolve().parents[1]
    for name in ("prod", "staging", "rehearsal"):
        data = yaml.safe_load((repo / "config" / f"{name}.yaml").read_text())
        shipped = data["observability"]["alarms"]["dms-task-failure"]
        assert (shipped["evaluation_periods"], shipped["datapoints_to_alarm"]) == (5, 3), name
        assert shipped["threshold"] == 0
    alarm = alarms(prod_tf)["paymig-prod-dms-task-failure"]
    assert (alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (5, 3)
    assert (alarm["threshold"], alarm["comparison_operator"]) == (0, "GreaterThanThreshold")


# --------------------------------------------------------------------------- notifications


@pytest.mark.parametrize("stack", ["prod_tf", "staging_tf", "rehearsal_tf"])
def test_every_topic_reaches_someone(stack: str, request: pytest.FixtureRequest) -> None:
    """Pins defect 10: the DMS event topic had no subscription."""
    doc: dict[str, Any] = request.getfixturevalue(stack)
    topics = resources(doc, "aws_sns_topic")
    assert len(topics) == 3
    config = request.getfixturevalue(stack.replace("_tf", "_config"))
    people = sorted(config.observability.notification_emails)
    for topic_id, topic in topics.items():
        subscribed = [
            s for s in resources(doc, "aws_sns_topic_subscription").values()
            if s["topic_arn"] == ref("aws_sns_topic", topic_id, "arn")
        ]  # fmt: skip
        emails = sorted(s["endpoint"] for s in subscribed if s["protocol"] == "email")
        assert emails == people, path_of(topic)


def test_access_log_events_are_read_by_a_rule_that_alerts(prod_tf: dict[str, Any]) -> None:
    """Pins defect 10: the bucket sent EventBridge notifications no rule read."""
    bucket_id, _ = only(prod_tf, "aws_s3_bucket")
    _, notification = only(prod_tf, "aws_s3_bucket_notification")
    assert notification["bucket"] == ref("aws_s3_bucket", bucket_id)
    assert notification["eventbridge"] is True
    rule_id, rule = only(prod_tf, "aws_cloudwatch_event_rule")
    assert json.loads(rule["event_pattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Deleted"],
        "detail": {"bucket": {"name": [ref("aws_s3_bucket", bucket_id, "bucket")]}},
    }
    alert_id, alert = by_path(prod_tf, "aws_sns_topic", "/observability/alert-topic")
    _, target = only(prod_tf, "aws_cloudwatch_event_target")
    assert target["rule"] == ref("aws_cloudwatch_event_rule", rule_id, "name")
    assert target["arn"] == ref("aws_sns_topic", alert_id, "arn")
    # The alert topic lets EventBridge publish, and its key lets EventBridge encrypt.
    _, topic_policy = by_path(prod_tf, "aws_sns_topic_policy", "/observability/alert-topic-policy")
    assert topic_policy["arn"] == ref("aws_sns_topic", alert_id, "arn")
    statements = {s["Sid"]: s for s in policy(topic_policy["policy"])["Statement"]}
    account = {
        "StringEquals": {"aws:SourceAccount": "${data.aws_caller_identity.caller.account_id}"}
    }
    assert statements["EventBridgeRulesPublish"] == {
        "Sid": "EventBridgeRulesPublish",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["sns:Publish"],
        "Resource": ref("aws_sns_topic", alert_id, "arn"),
        "Condition": account,
    }
    key_id, key = by_path(prod_tf, "aws_kms_key", "/observability/key/key")
    assert alert["kms_master_key_id"] == ref("aws_kms_key", key_id, "arn")
    key_statements = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    events = key_statements["EventBridgeRulesPublish"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(events["Action"])
    assert events["Condition"] == account
