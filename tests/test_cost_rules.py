"""Pricing rules of issue 19, each against a hand calculation on a small synthetic fragment.

Free allowances AWS applies by itself, the traffic nobody counts (health checks, X-Ray's
reservoir, the VPN, the initial load's I/O) and the resource types the other open issues
add. Fragments are hand-made Terraform resource dicts in the synthesized JSON's shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from paymig.config import UsageConfig
from paymig.cost.context import ConfigFacts
from paymig.cost.estimate import Estimate, estimate
from paymig.cost.line_item import LineItem, Timing
from paymig.cost.months import MigrationPlan, Month
from paymig.cost.prices import PricingError, load_price_table
from paymig.cost.registry import FREE_TYPES, RULES

PRICES = load_price_table()
PLAN = MigrationPlan(Month(2026, 12), 3)
USAGE = UsageConfig()
TX = 50_000 * 730 / 24
MONTH_S = 730 * 3600
PEAK_S = 4 * 730 / 24 * 3600
OFF_S = MONTH_S - PEAK_S


def doc(**resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resource": resources}


def price(
    document: dict[str, Any],
    *,
    month: Month | None = None,
    usage: UsageConfig = USAGE,
    facts: ConfigFacts | None = None,
) -> Estimate:
    return estimate(document, usage, PRICES, plan=PLAN, month=month, facts=facts or ConfigFacts())


def item(est: Estimate, resource: str) -> LineItem:
    found = [i for i in est.items if i.resource == resource]
    assert len(found) == 1, [i.resource for i in est.items]
    return found[0]


# --------------------------------------------------------------------------- free allowances


@pytest.mark.parametrize(
    ("instance_class", "included", "hourly"),
    [("dms.r5.large", 100, 0.21), ("dms.c5.large", 100, 0.154), ("dms.t3.medium", 50, 0.073)],
)
def test_dms_storage_beyond_what_the_class_includes(
    instance_class: str, included: int, hourly: float
) -> None:
    for allocated in (50, 100, 150):
        est = price(doc(aws_dms_replication_instance={"d": {
            "replication_instance_id": "d", "replication_instance_class": instance_class,
            "allocated_storage": allocated, "multi_az": True}}))  # fmt: skip
        assert item(est, "d storage").monthly_usd == pytest.approx(
            2 * max(0, allocated - included) * 0.115
        )
        assert item(est, f"d ({instance_class})").monthly_usd == pytest.approx(2 * 730 * hourly)


def _checks(aws: int, legacy: int = 0, calculated: int = 0) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for n in range(aws):
        checks[f"a{n:02d}"] = {"type": "HTTP", "ip_address": "${aws_eip.e.public_ip}",
                               "tags": {"Name": f"a{n:02d}"}}  # fmt: skip
    for n in range(legacy):
        checks[f"l{n}"] = {"type": "HTTPS", "ip_address": f"203.0.113.{n}",
                           "tags": {"Name": f"l{n}"}}  # fmt: skip
    for n in range(calculated):
        checks[f"c{n}"] = {"type": "CALCULATED", "tags": {"Name": f"c{n}"}}
    return doc(aws_route53_health_check=checks, aws_eip={"e": {"tags": {"Name": "e"}}})


def test_the_first_50_aws_endpoint_health_checks_are_free() -> None:
    est = price(_checks(aws=51, legacy=2, calculated=1))
    route53 = [i for i in est.items if i.service == "Route 53"]
    # 50 AWS checks free, the 51st at $0.50; each legacy check $0.75 + HTTPS $2; calculated $0.50
    assert sum(i.monthly_usd for i in route53) == pytest.approx(0.50 + 2 * (0.75 + 2.00) + 0.50)
    assert item(est, "a49 (AWS endpoint)").quantity == 0
    assert item(est, "a50 (AWS endpoint)").quantity == 1
    assert "0 within the account's first 50 free ones" in item(est, "a50 (AWS endpoint)").basis


def test_kms_rotations_add_a_key_month_each_for_the_first_two() -> None:
    keys = doc(aws_kms_key={
        "yearly": {"enable_key_rotation": True, "tags": {"Name": "yearly"}},
        "fast": {"enable_key_rotation": True, "rotation_period_in_days": 90,
                 "tags": {"Name": "fast"}},
        "never": {"tags": {"Name": "never"}},
    })  # fmt: skip
    # keys are created at the start (2026-12-01); yearly rotates 2027-12-01, 2028-11-30, ...
    for month, yearly, fast in [
        (Month(2026, 12), 0, 0),
        (Month(2027, 2), 0, 0),  # 90 days after 1 Dec is 1 Mar
        (Month(2027, 3), 0, 1),
        (Month(2027, 6), 0, 2),  # the second rotation, 29 May
        (Month(2027, 11), 0, 2),
        (Month(2027, 12), 1, 2),
        (Month(2029, 12), 2, 2),  # later rotations are free
    ]:
        est = price(keys, month=month)
        got = {i.resource: i.monthly_usd for i in est.items}
        assert got.get("yearly rotations", 0.0) == pytest.approx(yearly * 1.00), month
        assert got.get("fast rotations", 0.0) == pytest.approx(fast * 1.00), month
        assert "never rotations" not in got
        keys_only = {k: v for k, v in got.items() if k in ("yearly", "fast", "never")}
        assert keys_only == {"yearly": 1.00, "fast": 1.00, "never": 1.00}


# --------------------------------------------------------------------------- traffic nobody counts


def _api_behind_alb(health_check: dict[str, Any] | None, route53: bool = False) -> dict[str, Any]:
    """An API function behind an internet-facing ALB (3 AZs) with blue and green groups."""
    groups = {
        alias: {"target_type": "lambda", "name": f"tg-{alias}",
                **({"health_check": health_check} if health_check else {})}
        for alias in ("blue", "green")
    }  # fmt: skip
    resources: dict[str, Any] = dict(
        aws_lb={"alb": {"name": "alb", "subnets": ["a", "b", "c"]}},
        aws_lb_listener={"https": {
            "load_balancer_arn": "${aws_lb.alb.arn}",
            "default_action": [{"type": "forward", "forward": {"target_group": [
                {"arn": "${aws_lb_target_group.blue.arn}", "weight": 100},
                {"arn": "${aws_lb_target_group.green.arn}", "weight": 0}]}}]}},
        aws_lb_target_group=groups,
        aws_lambda_function={"api": {"function_name": "api", "memory_size": 1024,
                                     "tracing_config": {"mode": "Active"}}},
        aws_lambda_alias={a: {"function_name": "${aws_lambda_function.api.function_name}"}
                          for a in ("blue", "green")},
        aws_lb_target_group_attachment={a: {
            "target_group_arn": f"${{aws_lb_target_group.{a}.arn}}",
            "target_id": f"${{aws_lambda_alias.{a}.arn}}"} for a in ("blue", "green")},
        aws_wafv2_web_acl={"acl": {"name": "acl", "rule": [{"name": "r"}]}},
        aws_cloudwatch_log_group={"logs": {"name": "/aws/lambda/api", "retention_in_days": 30}},
    )  # fmt: skip
    if route53:
        resources["aws_route53_health_check"] = {
            "aws": {"type": "HTTPS", "fqdn": "${aws_lb.alb.dns_name}", "request_interval": 30,
                    "tags": {"Name": "hc"}}}  # fmt: skip
    return doc(**resources)


def test_alb_health_checks_invoke_the_function_on_blue_and_green_from_every_node() -> None:
    enabled = {"enabled": True, "interval": 35, "path": "/health"}
    est = price(_api_behind_alb(enabled))
    # 2 target groups x 3 load balancer nodes x 2,628,000 s / 35 s
    alb_checks = 2 * 3 * MONTH_S / 35
    assert alb_checks == pytest.approx(450_514.2857, rel=1e-9)
    assert item(est, "api requests").quantity == pytest.approx((TX + alb_checks) / 1e6)
    # they do not pass the WAF (only client requests do)
    assert item(est, "acl requests").quantity == pytest.approx(TX / 1e6)
    # the function logs 300 B of platform lines per check
    assert item(est, "/aws/lambda/api ingestion").quantity == pytest.approx(
        (TX * 1024 + alb_checks * 300) / 1e9
    )
    # 50 ms each at 1 GB, on demand (no provisioned concurrency)
    assert item(est, "api duration on demand").quantity == pytest.approx(
        TX * 0.2 + alb_checks * 0.05
    )
    # health checks of Lambda target groups are off unless enabled
    off = price(_api_behind_alb({"enabled": False, "interval": 35}))
    assert item(off, "api requests").quantity == pytest.approx(TX / 1e6)


def test_route53_checks_pass_the_waf_the_alb_the_function_and_xray() -> None:
    usage = UsageConfig(route53_health_checkers=15)
    est = price(_api_behind_alb(None, route53=True), usage=usage)
    checks = 15 * MONTH_S / 30  # 1,314,000 requests a month
    assert item(est, "acl requests").quantity == pytest.approx((TX + checks) / 1e6)
    assert item(est, "api requests").quantity == pytest.approx((TX + checks) / 1e6)
    assert "new connections" in item(est, "alb LCUs").basis
    assert item(est, "alb LCUs").quantity == pytest.approx((TX + checks) / 730 / 3600 / 25 * 730)
    # X-Ray: 1 trace/s reservoir plus 5% beyond it, in each period of the day
    peak = (TX / 2 + checks * PEAK_S / MONTH_S) / PEAK_S  # 2.236/s
    off = (TX / 2 + checks * OFF_S / MONTH_S) / OFF_S  # 0.847/s
    assert peak > 1 > off
    traces = (1 + 0.05 * (peak - 1)) * PEAK_S + off * OFF_S
    assert item(est, "api traces").monthly_usd == pytest.approx(traces / 1e6 * 5.00)


def test_xray_records_every_request_below_the_reservoir_and_5_percent_above() -> None:
    quiet = UsageConfig(transactions_per_day=1_000)
    est = price(_api_behind_alb(None), usage=quiet)
    requests = 1_000 * 730 / 24
    assert item(est, "api traces").quantity == pytest.approx(requests / 1e6)  # all of them
    busy = UsageConfig(transactions_per_day=50_000_000, peak_share_of_requests=4 / 24)
    est = price(_api_behind_alb(None), usage=busy)
    rate = 50_000_000 / 86_400  # flat profile: 578.7 requests/s all day
    assert item(est, "api traces").quantity == pytest.approx(
        (1 + 0.05 * (rate - 1)) * MONTH_S / 1e6
    )


def _database_stack(write_parameter: str | None) -> dict[str, Any]:
    env = {"PAYMIG_WRITE_TARGET_PARAMETER": "${aws_ssm_parameter.target.name}"}
    stack = _api_behind_alb(None)
    stack["resource"]["aws_lambda_function"]["api"]["environment"] = {"variables": env}
    stack["resource"]["aws_rds_cluster"] = {"db": {"engine": "aurora-postgresql"}}
    if write_parameter is not None:
        stack["resource"]["aws_ssm_parameter"] = {
            "target": {"name": "/paymig/x/write-target", "type": "String",
                       "value": write_parameter}}  # fmt: skip
    return stack


def test_with_the_source_as_write_target_the_database_traffic_leaves_over_the_vpn() -> None:
    # the SSM parameter in the stack wins over app.write_target
    est = price(_database_stack("source"), facts=ConfigFacts(write_target="aurora"))
    vpn = item(est, "API to the source database over the VPN (data out)")
    assert vpn.monthly_usd == pytest.approx(TX * 8192 / 1e9 * 0.09)
    assert item(est, "inter-AZ API requests and responses").monthly_usd == pytest.approx(
        2 * TX * 3072 / 1e9 * 0.67 * 0.01
    )
    aurora = price(_database_stack("aurora"), facts=ConfigFacts(write_target="source"))
    assert item(aurora, "inter-AZ API to Aurora").monthly_usd == pytest.approx(
        2 * TX * 11264 / 1e9 * 0.67 * 0.01
    )
    assert not [i for i in aurora.items if "VPN (data out)" in i.resource]
    # no parameter in the stack: app.write_target decides
    fallback = price(_database_stack(None), facts=ConfigFacts(write_target="source"))
    assert item(fallback, "API to the source database over the VPN (data out)")


def _dms(*tasks: tuple[str, str, str, str], log_group: bool = False, validate: bool = True):
    """A DMS instance with tasks `(id, migration_type, source, target)` between endpoints."""
    settings = json.dumps({"ValidationSettings": {"EnableValidation": validate}})
    resources: dict[str, Any] = dict(
        aws_rds_cluster={"db": {"engine": "aurora-postgresql", "cluster_identifier": "db"}},
        aws_dms_replication_instance={"dms": {"replication_instance_id": "dms",
                                              "replication_instance_class": "dms.r5.large"}},
        aws_dms_endpoint={
            "onprem": {"engine_name": "postgres", "endpoint_type": "source"},
            "onprem_target": {"engine_name": "postgres", "endpoint_type": "target"},
            "aurora": {"engine_name": "aurora-postgresql", "endpoint_type": "target"},
            "aurora_source": {"engine_name": "postgres", "endpoint_type": "source",
                              "server_name": "${aws_rds_cluster.db.endpoint}"},
        },
        aws_dms_replication_task={tid: {
            "replication_task_id": tid, "migration_type": kind,
            "replication_instance_arn": "${aws_dms_replication_instance.dms.replication_instance_arn}",
            "source_endpoint_arn": f"${{aws_dms_endpoint.{src}.endpoint_arn}}",
            "target_endpoint_arn": f"${{aws_dms_endpoint.{dst}.endpoint_arn}}",
            "replication_task_settings": settings} for tid, kind, src, dst in tasks},
    )  # fmt: skip
    if log_group:
        resources["aws_cloudwatch_log_group"] = {
            "dms": {"name": "dms-tasks-dms", "retention_in_days": 30}}  # fmt: skip
    return doc(**resources)


FORWARD = ("forward", "full-load-and-cdc", "onprem", "aurora")
REVERSE = ("reverse", "cdc", "aurora_source", "onprem_target")
CDC_ONLY = ("cdc-only", "cdc", "onprem", "aurora")


def test_the_initial_load_is_a_one_off_with_its_write_io_and_validation_reads() -> None:
    est = price(_dms(FORWARD))
    writes = item(est, "forward full load write I/O")
    # 500 GB x 2 log bytes per byte / 4,096 B per write I/O = 244,140,625 I/Os x $0.20 / 1M
    assert writes.quantity == pytest.approx(244.140625)
    assert writes.monthly_usd == pytest.approx(48.828125)
    reads = item(est, "forward row validation read I/O")
    assert reads.monthly_usd == pytest.approx(500e9 / 8192 / 1e6 * 0.20)  # 61,035,156 pages
    assert {writes.timing, reads.timing} == {Timing.one_off}
    assert item(est, "forward CDC to Aurora (inter-AZ)").timing is Timing.migration
    # the load month bills them once; the next month does not
    assert writes in price(_dms(FORWARD)).billed_items()
    assert writes not in price(_dms(FORWARD), month=Month(2027, 1)).billed_items()
    unvalidated = price(_dms(FORWARD, validate=False))
    assert not [i for i in unvalidated.items if "validation read" in i.resource]


def test_reverse_and_cdc_only_tasks_are_priced_through_what_they_move() -> None:
    est = price(_dms(FORWARD, REVERSE, CDC_ONLY))
    out = item(est, "reverse CDC from Aurora to on-prem (VPN data out)")
    assert out.monthly_usd == pytest.approx(30 * 0.09)
    assert item(est, "cdc-only CDC to Aurora (inter-AZ)").monthly_usd == pytest.approx(
        2 * 30 * 0.01
    )
    # the tasks themselves carry no DMS charge: only the instance does
    assert [i.resource for i in est.items if i.service == "DMS"] == [
        "dms (dms.r5.large)", "dms storage"]  # fmt: skip
    # three tasks write three tasks' logs into the group DMS creates
    assert item(est, "dms task logs ingestion").quantity == pytest.approx(3 * 5)
    wrong = _dms(("back", "full-load", "aurora_source", "onprem_target"))
    with pytest.raises(PricingError, match=r"a full load from AWS to on-prem has no pricing rule"):
        price(wrong)


def test_dms_task_logs_are_priced_once_when_the_stack_has_their_log_group() -> None:
    est = price(_dms(FORWARD, REVERSE, log_group=True))
    assert not [i for i in est.items if i.resource == "dms task logs ingestion"]
    ingestion = item(est, "dms-tasks-dms ingestion")
    assert ingestion.monthly_usd == pytest.approx(2 * 5 * 0.50)
    assert ingestion.timing is Timing.migration
    assert item(est, "dms-tasks-dms storage").quantity == pytest.approx(10 * 30 / (730 / 24))


# --------------------------------------------------------------------------- new resource types


def test_ten_interface_endpoints_in_three_azs_and_gateway_endpoints() -> None:
    subnets = ["${aws_subnet.a.id}", "${aws_subnet.b.id}", "${aws_subnet.c.id}"]
    services = ["secretsmanager", "monitoring", "sns", "sts", "ssm", "xray",
                "elasticloadbalancing", "dms", "kms", "states"]  # fmt: skip
    endpoints = {
        s: {"vpc_endpoint_type": "Interface", "subnet_ids": subnets, "tags": {"Name": s}}
        for s in services
    }
    endpoints |= {g: {"vpc_endpoint_type": "Gateway", "tags": {"Name": g}}
                  for g in ("s3", "dynamodb")}  # fmt: skip
    est = price(doc(aws_vpc_endpoint=endpoints))
    vpc = [i for i in est.items if i.service == "VPC"]
    # 10 x 3 ENIs x 730 h x $0.01 + 10 GB/month x $0.01; gateways free
    assert sum(i.monthly_usd for i in vpc) == pytest.approx(10 * 3 * 730 * 0.01 + 10 * 0.01)
    assert item(est, "kms").quantity == 3 * 730
    assert item(est, "kms data processing").quantity == pytest.approx(1.0)
    assert not [i for i in est.items if i.resource.startswith(("s3", "dynamodb"))]


def test_ssm_parameters_standard_free_advanced_per_month_and_per_call() -> None:
    est = price(doc(aws_ssm_parameter={
        "small": {"name": "/p/small", "type": "String", "tier": "Standard"},
        "default": {"name": "/p/default", "type": "String"},
        "ca": {"name": "/p/ca", "type": "String", "tier": "Advanced"},
    }))  # fmt: skip
    assert [i.resource for i in est.items] == [
        "/p/ca (Advanced parameter)", "/p/ca API interactions"]  # fmt: skip
    assert item(est, "/p/ca (Advanced parameter)").monthly_usd == pytest.approx(0.05)
    assert item(est, "/p/ca API interactions").monthly_usd == pytest.approx(10_000 / 10_000 * 0.05)
    with pytest.raises(PricingError, match=r"tier 'Premium'"):
        price(doc(aws_ssm_parameter={"x": {"tier": "Premium"}}))


def test_the_validation_job_state_machine_its_slices_and_its_aurora_reads() -> None:
    definition = json.dumps({"States": {"Slice": {
        "Type": "Task", "Resource": "${aws_lambda_function.validation.arn}"}}})  # fmt: skip
    est = price(doc(
        aws_rds_cluster={"db": {"engine": "aurora-postgresql"}},
        aws_lambda_function={"validation": {"function_name": "validation", "memory_size": 1024}},
        aws_sfn_state_machine={"job": {"name": "job", "definition": definition}},
    ))  # fmt: skip
    transitions = item(est, "job state transitions")
    # 30 passes x 500 slices x 4 transitions = 60,000 x $0.025 / 1,000
    assert transitions.monthly_usd == pytest.approx(60_000 / 1000 * 0.025)
    reads = item(est, "job full-pass read I/O")
    # each pass reads 500 GB of 8,192 B pages from storage
    assert reads.monthly_usd == pytest.approx(30 * 500e9 / 8192 / 1e6 * 0.20)
    slices = item(est, "validation requests (validation job)")
    assert slices.quantity == pytest.approx(30 * 500 / 1e6)
    assert item(est, "validation duration (validation job)").monthly_usd == pytest.approx(
        15_000 * 60 * 1 * 0.0000166667
    )
    assert {transitions.timing, reads.timing, slices.timing} == {Timing.migration}
    with pytest.raises(PricingError, match=r"type 'EXPRESS'"):
        price(doc(aws_sfn_state_machine={"x": {"type": "EXPRESS"}}))
    with pytest.raises(PricingError, match=r"invokes no Lambda function"):
        price(doc(aws_sfn_state_machine={"x": {"definition": "{}"}}))


def test_rotation_functions_are_invoked_four_times_per_rotation() -> None:
    est = price(doc(
        aws_lambda_function={"rotate": {"function_name": "rotate", "memory_size": 256}},
        aws_secretsmanager_secret={f"s{n}": {"name": f"s{n}"} for n in range(10)},
        aws_secretsmanager_secret_rotation={f"r{n}": {
            "secret_id": f"${{aws_secretsmanager_secret.s{n}.id}}",
            "rotation_lambda_arn": "${aws_lambda_function.rotate.arn}",
            "rotation_rules": {"automatically_after_days": 30}} for n in range(10)},
    ))  # fmt: skip
    # 10 secrets x 4 steps x (730/24 days / 30 days) rotations a month
    assert item(est, "rotate requests").quantity == pytest.approx(10 * 4 * (730 / 24) / 30 / 1e6)
    secrets = [i for i in est.items if i.service == "Secrets Manager" and i.unit == "secret-month"]
    assert sum(i.monthly_usd for i in secrets) == pytest.approx(10 * 0.40)
    scheduled = doc(
        aws_lambda_function={"rotate": {"function_name": "rotate"}},
        aws_secretsmanager_secret_rotation={"r": {
            "rotation_lambda_arn": "${aws_lambda_function.rotate.arn}",
            "rotation_rules": {"schedule_expression": "rate(10 days)"}}},
    )  # fmt: skip
    assert item(price(scheduled), "rotate requests").quantity == pytest.approx(
        4 * (730 / 24) / 10 / 1e6
    )
    scheduled["resource"]["aws_secretsmanager_secret_rotation"]["r"]["rotation_rules"] = {
        "schedule_expression": "cron(0 4 1 * ? *)"
    }
    with pytest.raises(PricingError, match=r"neither automatically_after_days nor rate"):
        price(scheduled)


def test_high_resolution_alarms_cost_more_by_period() -> None:
    est = price(doc(aws_cloudwatch_metric_alarm={
        "std": {"alarm_name": "std", "period": 60},
        "hi": {"alarm_name": "hi", "period": 30},
        "math": {"alarm_name": "math", "metric_query": [
            {"id": "e", "expression": "m1+m2"},
            {"id": "m1", "metric": {"metric_name": "a", "period": 10}},
            {"id": "m2", "metric": {"metric_name": "b", "period": 60}}]},
    }))  # fmt: skip
    assert item(est, "alarm std").monthly_usd == pytest.approx(0.10)
    assert item(est, "alarm hi").monthly_usd == pytest.approx(0.30)
    assert item(est, "alarm math").monthly_usd == pytest.approx(2 * 0.30)


def test_event_rules_on_the_default_bus_are_free_and_a_custom_bus_fails() -> None:
    free = price(doc(
        aws_cloudwatch_event_rule={"r": {"event_pattern": "{}"},
                                   "d": {"event_bus_name": "default", "event_pattern": "{}"}},
        aws_cloudwatch_event_target={"t": {"rule": "${aws_cloudwatch_event_rule.r.name}"}},
    ))  # fmt: skip
    assert free.items == ()
    with pytest.raises(PricingError, match=r"event bus 'payments'"):
        price(doc(aws_cloudwatch_event_rule={"r": {"event_bus_name": "payments"}}))


@pytest.mark.parametrize(
    "kind",
    [
        "terraform_data",
        "aws_dms_certificate",
        "aws_cloudwatch_event_target",
        "aws_secretsmanager_secret_rotation",
        "aws_lambda_function_event_invoke_config",
        "aws_sns_topic_subscription",
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_iam_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy_attachment",
    ],
)
def test_types_without_a_charge_of_their_own_are_listed_with_a_reason(kind: str) -> None:
    assert FREE_TYPES.get(kind)
    assert price(doc(**{kind: {"x": {}}})).items == ()


def test_every_new_type_has_a_rule() -> None:
    for kind in (
        "aws_dms_replication_task",
        "aws_ssm_parameter",
        "aws_sfn_state_machine",
        "aws_cloudwatch_event_rule",
        "aws_route53_health_check",
        "aws_vpc_endpoint",
    ):
        assert kind in RULES, kind  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["aws_dms_replication_task"]["forward"].update(migration_type="other"),
         r"migration_type 'other' has no pricing rule"),
        (lambda r: r["aws_dms_replication_task"]["forward"].update(target_endpoint_arn="arn:x"),
         r"target_endpoint_arn names no aws_dms_endpoint in the stack"),
        (lambda r: r["aws_dms_replication_task"]["forward"].update(
            replication_task_settings="{"), r"replication_task_settings is not JSON"),
    ],
)  # fmt: skip
def test_dms_tasks_that_cannot_be_priced_name_the_reason(change: Any, message: str) -> None:
    stack = _dms(FORWARD)
    change(stack["resource"])
    with pytest.raises(PricingError, match=message):
        price(stack)


def test_a_health_check_interval_that_is_not_literal_fails() -> None:
    with pytest.raises(PricingError, match=r"health_check.interval is not a literal"):
        price(_api_behind_alb({"enabled": True, "interval": "${var.i}"}))


def test_an_instance_outside_any_cluster_uses_its_own_engine_version() -> None:
    alone = doc(aws_rds_cluster_instance={"i": {
        "identifier": "i", "instance_class": "db.r6g.large", "engine": "aurora-postgresql",
        "engine_version": "14.9"}})  # fmt: skip
    est = price(alone, month=Month(2027, 3))
    assert item(est, "i RDS Extended Support (year 1-2)").monthly_usd == pytest.approx(146.00)
    unpinned = doc(aws_rds_cluster_instance={"i": {"instance_class": "db.r6g.large"}})
    assert not [i for i in price(unpinned, month=Month(2027, 3)).items if "Extended" in i.resource]


def test_the_support_calendar_counts_years_from_a_leap_day() -> None:
    from paymig.cost.prices import EngineSupport

    calendar = EngineSupport.model_validate({
        "standard_support_ends": "2028-02-28", "source": "https://docs.aws.amazon.com/x",
        "taken": "2026-12-01", "note": "n"})  # fmt: skip
    assert calendar.extended_support_starts.isoformat() == "2028-02-29"
    assert calendar.year3_starts.isoformat() == "2030-03-01"
    assert calendar.extended_support_ends.isoformat() == "2031-03-01"
