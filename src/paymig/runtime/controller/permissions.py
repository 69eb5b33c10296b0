"""The IAM actions each controller command calls: the operator's policy comes from here.

`COMMANDS` lists, per command (and for the rollback function), every IAM action its
code calls; a test records the calls each command makes against the emulator and fails
if one is missing here, and another keeps `docs/controller.md`'s generated policy equal
to :func:`policy_markdown`. Regenerate the doc with
`python -m paymig.runtime.controller.permissions docs/controller.md`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: IAM service prefix of each boto3 client the controller uses.
IAM_PREFIX = {
    "route53": "route53",
    "elbv2": "elasticloadbalancing",
    "dynamodb": "dynamodb",
    "cloudwatch": "cloudwatch",
    "sns": "sns",
    "lambda": "lambda",
    "dms": "dms",
    "sts": "sts",
    "ssm": "ssm",
    "secretsmanager": "secretsmanager",
}

ZONE = "arn:aws:route53:::hostedzone/<hosted zone id>"
TABLE = "arn:aws:dynamodb:<region>:<account>:table/<stack>-migration-audit"
ALERT_TOPIC = "arn:aws:sns:<region>:<account>:<stack>-migration-alerts"
ALARM_TOPIC = "arn:aws:sns:<region>:<account>:<stack>-migration-alarms"
#: `naming.write_target_parameter_name`; a parameter's ARN drops its name's leading slash.
WRITE_TARGET = "arn:aws:ssm:<region>:<account>:parameter/paymig/<stack>/write-target"
#: A task's ARN ends in a resource id DMS generates, not its identifier (`<stack>-task`),
#: so the stack's two tasks cannot be told apart from the account's others by ARN.
TASKS = "arn:aws:dms:<region>:<account>:task:*"


@dataclass(frozen=True)
class Permission:
    """One IAM action: the resources it is scoped to and why the controller calls it."""

    resources: tuple[str, ...]
    why: str
    condition: dict[str, Any] | None = None


#: Every action, with its resources (service authorization reference: Describe* of
#: Elastic Load Balancing, GetMetricStatistics, PutMetricData, ListTopics,
#: GetSubscriptionAttributes and DescribeReplicationTasks take no resource-level scope).
PERMISSIONS: dict[str, Permission] = {
    "route53:ListResourceRecordSets": Permission((ZONE,), "read the weighted records"),
    "route53:ChangeResourceRecordSets": Permission((ZONE,), "set the weights"),
    "route53:GetChange": Permission(("arn:aws:route53:::change/*",), "wait for INSYNC"),
    "route53:GetHealthCheck": Permission(
        ("arn:aws:route53:::healthcheck/*",), "what Route 53 answers: the records' checks"
    ),
    "route53:GetHealthCheckStatus": Permission(
        ("arn:aws:route53:::healthcheck/*",), "what Route 53 answers: their status"
    ),
    "elasticloadbalancing:DescribeLoadBalancers": Permission(("*",), "find the listener"),
    "elasticloadbalancing:DescribeListeners": Permission(("*",), "read the listener weights"),
    "elasticloadbalancing:DescribeTargetGroups": Permission(("*",), "blue/green group ARNs"),
    "elasticloadbalancing:ModifyListener": Permission(
        ("arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<stack>-alb/*",),
        "listener back to the stable alias",
    ),
    "dynamodb:Query": Permission((TABLE,), "read the audit trail and validations"),
    "dynamodb:GetItem": Permission(
        (TABLE,), "read the lock, the stage, a cutover's progress and fences"
    ),
    "dynamodb:PutItem": Permission(
        (TABLE,), "record events; take the lock; store progress and fences"
    ),
    "dynamodb:UpdateItem": Permission((TABLE,), "confirm the lock"),
    "dynamodb:DeleteItem": Permission((TABLE,), "release the lock; clear progress and fences"),
    "cloudwatch:DescribeAlarms": Permission(
        ("*",),
        "alarm gates, armed gate, is an alarm event current (a composite alarm is returned "
        "only to a permission scoped to *, CloudWatch API reference)",
    ),
    "cloudwatch:GetMetricStatistics": Permission(("*",), "CDC latency gate"),
    "cloudwatch:PutMetricData": Permission(
        ("*",),
        "publish the traffic split and DMS progress",
        {"StringEquals": {"cloudwatch:namespace": "Paymig/Migration"}},
    ),
    "sns:Publish": Permission((ALERT_TOPIC,), "notify people (the alert topic only)"),
    "sns:ListTopics": Permission(("*",), "find the topics when STS is unavailable"),
    "sns:ListSubscriptionsByTopic": Permission((ALARM_TOPIC,), "armed gate: the subscription"),
    "sns:GetSubscriptionAttributes": Permission(("*",), "armed gate: its filter policy"),
    "lambda:GetFunction": Permission(
        ("arn:aws:lambda:<region>:<account>:function:<stack>-rollback",),
        "armed gate: the function is active and may run",
    ),
    "dms:DescribeReplicationTasks": Permission(("*",), "find the task (CDC gate, progress)"),
    "dms:DescribeTableStatistics": Permission((TASKS,), "DMS per-table progress"),
    "dms:StopReplicationTask": Permission(
        (TASKS,), "cutover: stop the forward task; fallback: stop the reverse task"
    ),
    "dms:StartReplicationTask": Permission(
        (TASKS,), "start the reverse (cutover) or forward (fallback) task at the new slot"
    ),
    "dms:ModifyReplicationTask": Permission(
        (TASKS,), "fallback: make the stopped forward task CDC only before its restart"
    ),
    "dms:DescribeEndpoints": Permission(
        ("*",), "fallback: which slot the forward task's source endpoint names"
    ),
    "dms:ModifyEndpoint": Permission(
        ("arn:aws:dms:<region>:<account>:endpoint:*",),
        "fallback: the forward source endpoint names the slot created at the fallback point",
    ),
    "ssm:GetParameter": Permission((WRITE_TARGET,), "read the API's write target"),
    "ssm:PutParameter": Permission(
        (WRITE_TARGET,),
        "switch the API's write target (overwrite only: Terraform creates the parameter)",
        {"StringEquals": {"ssm:Overwrite": "true"}},
    ),
    "sts:GetCallerIdentity": Permission(("*",), "who acts (needs no permission; listed)"),
}

_READ = (
    "route53:ListResourceRecordSets",
    "route53:GetHealthCheck",
    "route53:GetHealthCheckStatus",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricStatistics",
    "sns:ListTopics",
    "sns:ListSubscriptionsByTopic",
    "sns:GetSubscriptionAttributes",
    "lambda:GetFunction",
    "dms:DescribeReplicationTasks",
    "dms:DescribeTableStatistics",
    "sts:GetCallerIdentity",
)
_ROLLBACK = (
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "route53:GetChange",
    "route53:GetHealthCheck",
    "route53:GetHealthCheckStatus",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:ModifyListener",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "cloudwatch:PutMetricData",
    "sns:Publish",
    "sts:GetCallerIdentity",
)

#: Cutover and fallback: the lock (with its confirmation before each step), the stage,
#: progress and fence items and the audit event, the two DMS tasks, the write target.
_MOVE_WRITES = (
    "sts:GetCallerIdentity",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dms:DescribeReplicationTasks",
    "dms:StopReplicationTask",
    "dms:StartReplicationTask",
    "ssm:GetParameter",
    "ssm:PutParameter",
)

_ROLLBACK_COMMAND = (*_ROLLBACK, "sns:ListTopics")
#: What a cutover's preconditions read: the live weights, the trail and every gate (the
#: armed gate finds the alarm topic with ListTopics: no identity is passed to it).
_CUTOVER_CHECKS = (
    "route53:ListResourceRecordSets",
    "dynamodb:Query",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricStatistics",
    "dms:DescribeReplicationTasks",
    "sns:ListTopics",
    "sns:ListSubscriptionsByTopic",
    "sns:GetSubscriptionAttributes",
    "lambda:GetFunction",
)
#: A fallback ends with the weights to legacy 100 through the rollback path.
_FALLBACK = (
    *_MOVE_WRITES,
    *_ROLLBACK_COMMAND,
    "dms:ModifyReplicationTask",
    "dms:DescribeEndpoints",
    "dms:ModifyEndpoint",
)

#: The IAM actions each command's code calls.
COMMANDS: dict[str, tuple[str, ...]] = {
    "status": _READ,
    "shift": (
        *_READ,
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "cloudwatch:PutMetricData",
    ),
    "rollback": _ROLLBACK_COMMAND,
    "ack": ("dynamodb:Query", "dynamodb:PutItem", "sts:GetCallerIdentity"),
    "progress": (
        "dms:DescribeReplicationTasks",
        "dms:DescribeTableStatistics",
        "cloudwatch:PutMetricData",
    ),
    "cutover": (*_CUTOVER_CHECKS, *_MOVE_WRITES),
    "fallback": _FALLBACK,
    #: A fallback it runs itself, after reading the stage and the composite each poll, and
    #: telling people before and after.
    "watch": (*_FALLBACK, "cloudwatch:DescribeAlarms", "sns:Publish"),
    #: The rollback Lambda's execution role (the alert topic's ARN comes from its env).
    "rollback-function": (*_ROLLBACK, "cloudwatch:DescribeAlarms"),
}

#: KMS use the calls above imply: the audit table and the topics are encrypted with
#: customer keys, used through the services (the keys' policies admit the account).
KMS_NOTE = (
    "The audit table (`<stack>/automation` key) and the alert topic (`<stack>/observability` "
    "key) are encrypted with customer managed keys: add `kms:Decrypt` and "
    "`kms:GenerateDataKey` on those two keys, with `kms:ViaService` = "
    "`dynamodb.<region>.amazonaws.com` / `sns.<region>.amazonaws.com`. The write-target "
    "parameter is a `String` parameter (not `SecureString`): it needs no key."
)

BEGIN = "<!-- BEGIN generated by paymig.runtime.controller.permissions -->"
END = "<!-- END generated -->"


def iam_action(service_name: str, operation: str) -> str:
    """The IAM action of one boto3 operation, e.g. `route53:GetChange`."""
    return f"{IAM_PREFIX[service_name]}:{operation}"


def operator_policy() -> dict[str, Any]:
    """The IAM policy an operator needs for every command, one statement per scope."""
    operator = sorted({a for c, actions in COMMANDS.items() if c != "rollback-function"
                       for a in actions})  # fmt: skip
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for action in operator:
        permission = PERMISSIONS[action]
        key = (permission.resources, json.dumps(permission.condition, sort_keys=True))
        groups.setdefault(key, []).append(action)
    statements = []
    for (resources, condition), actions in groups.items():
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Action": actions,
            "Resource": list(resources) if len(resources) > 1 else resources[0],
        }
        if condition != "null":
            statement["Condition"] = json.loads(condition)
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_markdown() -> str:
    """The generated section of docs/controller.md, markers included."""
    lines = [BEGIN, "", "| command | IAM actions |", "|---|---|"]
    for command, actions in COMMANDS.items():
        lines.append(f"| `{command}` | {', '.join(f'`{a}`' for a in sorted(set(actions)))} |")
    lines += ["", "| action | resource | why |", "|---|---|---|"]
    for action, permission in sorted(PERMISSIONS.items()):
        lines.append(f"| `{action}` | `{'`, `'.join(permission.resources)}` | {permission.why} |")
    lines += ["", KMS_NOTE, "", "Operator policy (every command but the function's):", ""]
    lines += ["```json", json.dumps(operator_policy(), indent=2), "```", "", END]
    return "\n".join(lines)


def refresh(text: str) -> str:
    """`text` with its generated section replaced by the current one."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + policy_markdown() + text[end:]


if __name__ == "__main__":  # pragma: no cover - the doc's regeneration command
    path = Path(sys.argv[1])
    path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")
