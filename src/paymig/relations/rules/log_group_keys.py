"""A log group encrypted with a customer key, and the key policy that must admit it.

AWS documents (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using
AWS KMS"): the key policy must allow ``logs.<region>.amazonaws.com`` the actions
``kms:Encrypt*``, ``kms:Decrypt*``, ``kms:ReEncrypt*``, ``kms:GenerateDataKey*`` and
``kms:Describe*``; when the statement carries a ``kms:EncryptionContext:aws:logs:arn``
condition, that condition must match the log group's ARN, or CreateLogGroup (and
AssociateKmsKey) is denied. moto checks none of this.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from paymig.relations.findings import Finding
from paymig.relations.stack import StackGraph, as_list, parse_policy, statements

RULE = "log-group-key"
CONTEXT_KEY = "kms:EncryptionContext:aws:logs:arn"
#: The action families CloudWatch Logs needs, each matched by any action in the statement.
NEEDED_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey")


def check(graph: StackGraph, region: str) -> list[Finding]:
    """Every CMK-encrypted log group is admitted by its key's policy."""
    findings: list[Finding] = []
    for group, body in sorted(graph.of_type("aws_cloudwatch_log_group").items()):
        key = graph.target(body.get("kms_key_id"), "aws_kms_key")
        if key is None:
            continue
        name = str(body.get("name", ""))
        policy = parse_policy(graph.get(key).get("policy"))
        if not any(_admits(s, region, name) for s in statements(policy)):
            findings.append(
                Finding(
                    RULE,
                    graph.path(group),
                    graph.path(key),
                    f"the key policy does not let logs.{region}.amazonaws.com use the key "
                    f"for log group {name!r}; CreateLogGroup would be denied",
                )
            )
    return findings


def _admits(statement: Mapping[str, Any], region: str, group_name: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal", {})
    services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
    if f"logs.{region}.amazonaws.com" not in services:
        return False
    actions = [str(a) for a in as_list(statement.get("Action"))]
    if not all(any(_covers(a, needed) for a in actions) for needed in NEEDED_ACTIONS):
        return False
    return _context_matches(statement.get("Condition"), region, group_name)


def _covers(action: str, needed: str) -> bool:
    """Whether a policy action (maybe with ``*``) grants the ``needed`` family."""
    return fnmatchcase(needed, action) or fnmatchcase(needed + "X", action)


def _context_matches(condition: Any, region: str, group_name: str) -> bool:
    """No encryption-context condition, or one whose ARN matches the group."""
    if not isinstance(condition, Mapping):
        return True
    constrained = False
    for operator, clauses in condition.items():
        if not isinstance(clauses, Mapping) or CONTEXT_KEY not in clauses:
            continue
        constrained = True
        like = operator.startswith("ArnLike") or operator.startswith("StringLike")
        if any(
            _arn_matches(str(v), region, group_name, like) for v in as_list(clauses[CONTEXT_KEY])
        ):
            return True
    return not constrained


def _arn_matches(pattern: str, region: str, group_name: str, like: bool) -> bool:
    parts = pattern.split(":", 5)
    if len(parts) != 6 or parts[2] != "logs":
        return False
    resource = f"log-group:{group_name}"
    if like:
        return fnmatchcase(region, parts[3]) and fnmatchcase(resource, parts[5])
    return parts[3] == region and parts[5] == resource
