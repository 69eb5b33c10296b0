"""The load balancer stand-in's listener weights and metrics, against the emulator's ELB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paymig.rehearsal.alb_event import HttpResponse, bad_gateway
from paymig.rehearsal.aws_side import Listener, Metrics, TargetGroup
from paymig.rehearsal.sides import arn_suffix

pytestmark = pytest.mark.slow


def _balancer(aws: Any) -> tuple[Any, str, dict[str, TargetGroup]]:
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"us-east-2{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("ab")]  # fmt: skip
    balancer = elbv2.create_load_balancer(Name="alb", Subnets=subnets)["LoadBalancers"][0]
    groups = {}
    for alias in ("blue", "green"):
        group = elbv2.create_target_group(Name=f"tg-{alias}", TargetType="lambda")
        arn = group["TargetGroups"][0]["TargetGroupArn"]
        groups[arn] = TargetGroup(arn, alias, arn_suffix(arn, "targetgroup/"), False)
    blue, green = list(groups)
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 100}, {"TargetGroupArn": green, "Weight": 0}]}}],
    )["Listeners"][0]["ListenerArn"]  # fmt: skip
    return elbv2, listener, groups


def test_requests_go_where_the_listener_forwards(aws: Any) -> None:
    elbv2, arn, groups = _balancer(aws)
    listener = Listener(elbv2, arn, groups)
    assert {listener.pick().alias for _ in range(50)} == {"blue"}
    blue, green = list(groups)
    elbv2.modify_listener(ListenerArn=arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": blue, "Weight": 0},
                         {"TargetGroupArn": green, "Weight": 100}]}}])  # fmt: skip
    listener.refresh()
    assert {listener.pick().alias for _ in range(50)} == {"green"}


def test_metrics_are_what_was_served_per_second(aws: Any) -> None:
    cloudwatch = aws.client("cloudwatch")
    metrics = Metrics(cloudwatch, "app/alb/1")
    second = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
    wall = second.timestamp()
    ok = HttpResponse(201, [], b"{}", from_target=True)
    failed = HttpResponse(503, [], b"{}", from_target=True)
    for response, seconds in ((ok, 0.1), (ok, 0.3), (failed, 0.2), (bad_gateway("x"), 0.0)):
        metrics.add(wall + 0.5, "targetgroup/tg-blue/1", response, seconds)
    metrics.flush(everything=True)
    assert metrics.errors == []

    def value(name: str, stat: str, dims: list[tuple[str, str]]) -> list[float]:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {
                "Namespace": "AWS/ApplicationELB", "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims]},
                "Period": 10, "Stat": stat}}],
            StartTime=second, EndTime=second + timedelta(seconds=10),
        )  # fmt: skip
        return [float(v) for v in answer["MetricDataResults"][0]["Values"]]

    lb = [("LoadBalancer", "app/alb/1")]
    both = [*lb, ("TargetGroup", "targetgroup/tg-blue/1")]
    assert value("RequestCount", "Sum", lb) == [4.0]
    assert value("RequestCount", "Sum", both) == [4.0]
    assert value("HTTPCode_Target_5XX_Count", "Sum", lb) == [1.0]
    assert value("HTTPCode_ELB_5XX_Count", "Sum", lb) == [1.0]
    # The target answered three; the load balancer's own 502 has no target response time.
    assert value("TargetResponseTime", "SampleCount", lb) == [3.0]
    assert value("TargetResponseTime", "Maximum", lb) == [0.3]


def test_the_functions_emf_lines_become_its_metrics(aws: Any) -> None:
    """The payment API's own EMF document, through the function log into CloudWatch."""
    import io
    from http import HTTPStatus

    from paymig.lambdas import payment_api_outcome
    from paymig.rehearsal.aws_side import FunctionLog
    from paymig.rehearsal.emf import metric_data

    when = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
    outcome = payment_api_outcome.PaymentOutcome(HTTPStatus.SERVICE_UNAVAILABLE, {})
    document = payment_api_outcome.emf_document(
        outcome, environment="rehearsal", alias="blue", function_version="3",
        request_id="r-1", timestamp_ms=int(when.timestamp() * 1000),
    )  # fmt: skip
    line = json.dumps(document)
    data = metric_data(line)["Paymig/Payments"]
    # Three counters, each per environment and per environment and alias.
    assert [(d["MetricName"], [x["Value"] for x in d["Dimensions"]], d["Value"]) for d in data] == [
        ("PaymentsProcessed", ["rehearsal"], 1.0), ("PaymentsSucceeded", ["rehearsal"], 0.0),
        ("PaymentsFailed", ["rehearsal"], 1.0),
        ("PaymentsProcessed", ["rehearsal", "blue"], 1.0),
        ("PaymentsSucceeded", ["rehearsal", "blue"], 0.0),
        ("PaymentsFailed", ["rehearsal", "blue"], 1.0),
    ]  # fmt: skip
    assert metric_data("not json") == {} and metric_data('{"a": 1}') == {}
    cloudwatch = aws.client("cloudwatch")
    metrics = Metrics(cloudwatch, "app/alb/1")
    stream = io.StringIO()
    log = FunctionLog(stream, metrics)
    log.write(line[:10])
    log.write(line[10:] + "\nplain text line\n")
    log.flush()
    metrics.flush(everything=True)
    assert stream.getvalue() == line + "\nplain text line\n"
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {
            "Namespace": "Paymig/Payments", "MetricName": "PaymentsFailed",
            "Dimensions": [{"Name": "Environment", "Value": "rehearsal"}]},
            "Period": 60, "Stat": "Sum"}}],
        StartTime=when.replace(second=0), EndTime=when.replace(second=0) + timedelta(minutes=1),
    )  # fmt: skip
    assert answer["MetricDataResults"][0]["Values"] == [1.0]
