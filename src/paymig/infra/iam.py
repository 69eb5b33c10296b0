"""IAM policy documents as plain data.

Policies are rendered with :func:`json.dumps` rather than ``Fn.jsonencode`` so that the
synthesized JSON holds them as JSON text that tests (and reviewers) can parse and scan.
Terraform tokens inside values survive as ``${...}`` interpolations.
"""

from __future__ import annotations

import json
from typing import Any

Statement = dict[str, Any]


def statement(
    sid: str,
    actions: list[str],
    resources: list[str] | str | None,
    *,
    effect: str = "Allow",
    principal: dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    """Build one policy statement; `resources` is None only in trust policies."""
    out: Statement = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out["Action"] = actions
    if resources is not None:
        out["Resource"] = resources
    if condition is not None:
        out["Condition"] = condition
    return out


def policy_document(*statements: Statement) -> str:
    """Render statements as an IAM policy document (JSON text)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=False)


def assume_role_policy(service: str, *, condition: dict[str, Any] | None = None) -> str:
    """A trust policy that lets one AWS service assume the role."""
    return policy_document(
        statement(
            "TrustService",
            ["sts:AssumeRole"],
            None,
            principal={"Service": service},
            condition=condition,
        )
    )


#: Write actions that AWS offers no resource-level permission for, so a policy may name
#: them with ``"Resource": "*"``. Each is listed with the reason; tests reject any other
#: write action on ``*``.
NO_RESOURCE_LEVEL_WRITE_ACTIONS: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray trace segments are not a resource",
    "xray:PutTelemetryRecords": "X-Ray telemetry is not a resource",
    "cloudwatch:PutMetricData": "metrics have no ARN; the policy pins the namespace instead",
    "ec2:CreateNetworkInterface": "Lambda in a VPC: ENIs do not exist before they are created",
    "ec2:DeleteNetworkInterface": "Lambda in a VPC: ENI ids are not known in advance",
    "ec2:AssignPrivateIpAddresses": "Lambda in a VPC: acts on ENIs created at run time",
    "ec2:UnassignPrivateIpAddresses": "Lambda in a VPC: acts on ENIs created at run time",
    # Step Functions Developer Guide, "Using CloudWatch Logs to log execution history in
    # Step Functions": the vended-logs delivery actions take no resource ("Resource": "*").
    "logs:CreateLogDelivery": "vended log delivery has no resource-level permission",
    "logs:UpdateLogDelivery": "vended log delivery has no resource-level permission",
    "logs:DeleteLogDelivery": "vended log delivery has no resource-level permission",
    "logs:PutResourcePolicy": "vended log delivery writes the account's log resource policy",
}
