"""What moto 5.2.5's IAM enforcement does, measured: why the rehearsal checks IAM itself.

Each assertion is one point of paymig.rehearsal.iam_requests' docstring. When moto
changes, this test fails and the rehearsal can hand more of the enforcement to moto.
Enforcement is switched on at run time with POST /moto-api/reset-auth (the server form
of INITIAL_NO_AUTH_ACTION_COUNT), on a server of this test's own.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from paymig.local.emulator import MotoServer

pytestmark = pytest.mark.slow

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}  # fmt: skip


def _reset_auth(server: MotoServer, count: str) -> None:
    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/reset-auth", data=count.encode(), method="POST",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10):
        pass


def _code(call: Callable[[], Any]) -> str:
    """The error code a call answers, or "allowed"."""
    try:
        call()
    except Exception as error:
        response = getattr(error, "response", None)
        if response is None:
            return type(error).__name__
        return str(
            response.get("Error", {}).get("Code") or response["ResponseMetadata"]["HTTPStatusCode"]
        )
    return "allowed"


@pytest.fixture
def enforced() -> Iterator[dict[str, Any]]:
    """A role and an administrator, then enforcement on."""
    with MotoServer() as server:
        kw = {"endpoint_url": server.endpoint_url, "region_name": "us-east-2"}
        root = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        iam = root.client("iam", **kw)
        topic = root.client("sns", **kw).create_topic(Name="alarms")["TopicArn"]
        zone = root.client("route53", **kw).create_hosted_zone(
            Name="example.com", CallerReference="z")["HostedZone"]["Id"].rsplit("/", 1)[-1]  # fmt: skip
        iam.create_user(UserName="admin")
        iam.attach_user_policy(UserName="admin",
                               PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")  # fmt: skip
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        statements = [
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
            {"Effect": "Allow", "Action": "route53:ListResourceRecordSets",
             "Resource": f"arn:aws:route53:::hostedzone/{zone}"},
            {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
            {"Effect": "Allow", "Action": "monitoring:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": "N"}}},
            {"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"},
        ]  # fmt: skip
        sessions = {}
        for name, granted in (("fn", statements),
                              ("named", [{"Effect": "Allow", "Action": "monitoring:PutMetricData",
                                          "Resource": "*"}])):  # fmt: skip
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": granted}))  # fmt: skip
            creds = root.client("sts", **kw).assume_role(
                RoleArn=f"arn:aws:iam::123456789012:role/{name}", RoleSessionName=name
            )["Credentials"]  # fmt: skip
            sessions[name] = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                           aws_secret_access_key=creds["SecretAccessKey"],
                                           aws_session_token=creds["SessionToken"])  # fmt: skip
        admin = boto3.Session(aws_access_key_id=key["AccessKeyId"],
                              aws_secret_access_key=key["SecretAccessKey"])  # fmt: skip
        _reset_auth(server, "0")
        yield {"kw": kw, "role": sessions["fn"], "named": sessions["named"], "admin": admin,
               "topic": topic, "zone": zone}  # fmt: skip
        _reset_auth(server, "inf")


def test_moto_enforcement_cannot_judge_a_least_privilege_role(enforced: dict[str, Any]) -> None:
    kw, role, admin = enforced["kw"], enforced["role"], enforced["admin"]
    # A statement granted on "*" works ...
    assert _code(lambda: role.client("dynamodb", **kw).list_tables()) == "allowed"
    # ... one scoped to the topic's ARN does not: moto checks against resource "*".
    sns = role.client("sns", **kw)
    assert _code(lambda: sns.publish(TopicArn=enforced["topic"], Message="m")) == "AccessDenied"
    # CloudWatch is checked as "monitoring:PutMetricData", never "cloudwatch:..." ...
    metric = [{"MetricName": "m", "Value": 1.0}]
    named = enforced["named"].client("cloudwatch", **kw)
    assert _code(lambda: named.put_metric_data(Namespace="N", MetricData=metric)) == "allowed"
    # ... and a statement's condition is ignored: granted for namespace N, allowed for any.
    cloudwatch = role.client("cloudwatch", **kw)
    assert _code(lambda: cloudwatch.put_metric_data(Namespace="Other", MetricData=metric)) == (
        "allowed"
    )
    # Route 53 refuses everyone, an administrator included.
    route53 = role.client("route53", **kw)
    assert _code(lambda: route53.list_resource_record_sets(HostedZoneId=enforced["zone"])) != (
        "allowed"
    )
    assert _code(lambda: admin.client("route53", **kw).list_hosted_zones()) != "allowed"
    # AssumeRole of a role trusting a service principal breaks the server (HTTP 500).
    sts = admin.client("sts", **kw)
    assume = _code(lambda: sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/fn",
                                           RoleSessionName="again"))  # fmt: skip
    assert assume == "ResponseParserError"
