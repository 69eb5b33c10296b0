"""What the AWS side's process needs to know of the load balancer, read from the emulator.

The load balancer, its HTTPS listener and the two target groups are the ones Terraform
created; their ARNs give the metric dimensions the stack's alarms name
(``LoadBalancer=app/<name>/<id>``, ``TargetGroup=targetgroup/<name>/<id>``), and each
target group's attributes say whether the event carries multi-value headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymig import naming
from paymig.config import PaymigConfig
from paymig.errors import CommandFailedError
from paymig.rehearsal.lambda_process import FunctionSpec


def arn_suffix(arn: str, marker: str) -> str:
    """The part of an ELB ARN CloudWatch names it by (``app/...``, ``targetgroup/...``)."""
    if f":{marker}" not in arn:
        raise CommandFailedError(f"{arn}: not an ELB ARN with {marker!r}")
    resource = arn.split(":", 5)[5]
    return resource.removeprefix("loadbalancer/")


def aws_side_spec(
    session: Any,
    config: PaymigConfig,
    function: FunctionSpec,
    principal: str,
    root: Mapping[str, str],
) -> dict[str, Any]:
    """The AWS side's spec: the function, the listener, the target groups, the dimensions."""
    elbv2 = session.client("elbv2")
    stack = config.stack_name
    balancer = elbv2.describe_load_balancers(Names=[naming.alb_name(stack)])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    https = next((x for x in listeners if x["Port"] == naming.HTTPS_LISTENER_PORT), None)
    if https is None:
        raise CommandFailedError(f"{naming.alb_name(stack)}: no listener on port 443")
    groups = []
    for alias in naming.DEPLOYMENT_ALIASES:
        name = naming.target_group_name(stack, alias)
        group = elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]
        attributes = elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])[
            "Attributes"
        ]
        multi = any(
            a["Key"] == "lambda.multi_value_headers.enabled" and a["Value"] == "true"
            for a in attributes
        )
        groups.append(
            {
                "arn": group["TargetGroupArn"],
                "alias": alias,
                "multi_value": multi,
                "dimension": arn_suffix(group["TargetGroupArn"], "targetgroup/"),
            }
        )
    return {
        "function": function.as_dict(),
        "root": dict(root),
        "principal": principal,
        "listener_arn": https["ListenerArn"],
        "target_groups": groups,
        "load_balancer": arn_suffix(balancer["LoadBalancerArn"], "loadbalancer/"),
    }
