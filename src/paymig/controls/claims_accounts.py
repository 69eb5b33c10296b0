"""Claims of the account and logging requirements: logins, secrets, rotation, audit logs.

Each function takes the stack and the configuration and returns its claims, or raises
:class:`~paymig.controls.evidence.ControlMapError` when one does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymig import naming
from paymig.config import PaymigConfig
from paymig.controls.evidence import Claim, ControlMapError, every, name, parameters, refers_to
from paymig.logins import LOGINS, PGAUDIT_PARAMETERS
from paymig.relations.stack import (
    Address,
    StackGraph,
    as_list,
    first_block,
    parse_policy,
    references_in,
    statements,
)

_CMK = refers_to("aws_kms_key")
_PUBLIC_BLOCKS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)
_PUBLIC_BLOCKS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)
#: Roles that must read exactly the login secrets of these clients (rotation and setup
#: read several on purpose: they set and rotate them).
_ROLE_CLIENTS = {
    "app/api/role-policy": {"api"},
    "checks/validation/role-policy": {"validation"},
    "replication/secrets-access-policy": {"dms", "dms_apply", "dms_target", "dms_reverse"},
}


def _secret_names(graph: StackGraph) -> dict[Address, str]:
    return {a: str(b.get("name")) for a, b in graph.of_type("aws_secretsmanager_secret").items()}


def _clients_read(graph: StackGraph, policy: Mapping[str, Any]) -> set[str]:
    """The clients whose login secrets a policy lets its role read."""
    names = _secret_names(graph)
    clients = set()
    for statement in statements(parse_policy(policy.get("policy"))):
        if "secretsmanager:GetSecretValue" not in as_list(statement.get("Action")):
            continue
        for ref in references_in(statement.get("Resource")):
            if ref.address in names:
                clients.add(names[ref.address].rsplit("/", 1)[-1])
    return clients


def identification_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """8.2: one login per client per server, each in its own secret, read by that client only."""
    names = set(_secret_names(graph).values())
    expected = [
        naming.login_secret_name(config.stack_name, server, login.client)
        for server, logins in LOGINS.items()
        for login in logins
    ]
    missing = [n for n in expected if n not in names]
    if missing:
        raise ControlMapError(f"control map: login secrets missing: {', '.join(missing)}")
    roles = graph.of_type("aws_iam_role_policy")
    policies = {name(graph, a).split(" ", 1)[1]: b for a, b in roles.items()}
    for path, clients in _ROLE_CLIENTS.items():
        read = _clients_read(graph, policies.get(path, {}))
        if read != clients:
            raise ControlMapError(
                f"control map: {path} reads the login secrets of {sorted(read)}, "
                f"not {sorted(clients)}"
            )
    return [
        Claim(
            f"Each database client has its own login on each server ({len(expected)} logins, "
            "paymig.logins), each in its own secret `<stack>/<server>/<client>`; no client "
            "uses the master user.",
            tuple(sorted(expected)),
        ),
        Claim(
            "The payment API's, the validation function's and DMS's roles read only their own "
            "clients' login secrets.",
            tuple(f"aws_iam_role_policy {path}" for path in sorted(_ROLE_CLIENTS)),
        ),
    ]


def authentication_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """8.3.2: authentication factors unreadable in storage (CMK) and in transit (TLS)."""
    return [
        every(
            graph,
            ["aws_secretsmanager_secret"],
            lambda b: _CMK(b.get("kms_key_id")),
            "Every login secret is encrypted with a customer-managed key; clients reach the "
            "databases only over verified TLS (4.2).",
        ),
        every(
            graph,
            ["aws_rds_cluster"],
            lambda b: (
                b.get("manage_master_user_password") is True
                and "master_password" not in b
                and _CMK(b.get("master_user_secret_kms_key_id"))
            ),
            "The Aurora master password is generated and kept by RDS in Secrets Manager, "
            "encrypted with the data key; it never appears in code, configuration or state.",
        ),
    ]


def _rotation_days(graph: StackGraph) -> dict[Address, int]:
    """Rotation interval (days) by rotated secret: a login secret or the RDS cluster's master."""
    found: dict[Address, int] = {}
    for body in graph.of_type("aws_secretsmanager_secret_rotation").values():
        days = int(first_block(body.get("rotation_rules")).get("automatically_after_days", 0))
        refs = references_in(body.get("secret_id"))
        if refs:
            found[refs[0].address] = days
    return found


def application_account_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """8.6.2 and 8.6.3: no stored passwords; every credential rotates on schedule."""
    limit = config.database.secret_rotation_days
    if graph.of_type("aws_secretsmanager_secret_version"):
        raise ControlMapError("control map: the stack writes a secret value (secret_version)")
    days = _rotation_days(graph)
    secrets = graph.of_type("aws_secretsmanager_secret")
    clusters = graph.of_type("aws_rds_cluster")
    rotated = sorted([*secrets, *clusters])
    late = [name(graph, a) for a in rotated if not 0 < days.get(a, 0) <= limit]
    if late:
        raise ControlMapError(f"control map: not rotated every {limit} days: {late}")
    return [
        Claim(
            "The stack writes no secret value: every password is generated by the rotation "
            "function, by RDS, or by the DBA into its secret.",
            tuple(name(graph, a) for a in sorted(secrets)),
        ),
        Claim(
            f"Every login secret (by the rotation function) and the Aurora master secret (by "
            f"RDS) rotate every {limit} days (database.secret_rotation_days).",
            tuple(name(graph, a) for a in rotated),
        ),
    ]


def audit_log_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """10.2: what is logged."""
    return [
        every(
            graph,
            ["aws_rds_cluster_parameter_group"],
            lambda b: (
                "pgaudit" in parameters(b).get("shared_preload_libraries", "")
                and all(parameters(b).get(k) == v for k, v in PGAUDIT_PARAMETERS.items())
                and parameters(b).get("log_connections") == "1"
                and parameters(b).get("log_disconnections") == "1"
            ),
            f"Aurora logs every connection and disconnection, and pgaudit logs "
            f"{PGAUDIT_PARAMETERS['pgaudit.log']} statements (writes, DDL, role changes) "
            "without the reads' flood or parameter values.",
        ),
        every(
            graph,
            ["aws_rds_cluster"],
            lambda b: "postgresql" in as_list(b.get("enabled_cloudwatch_logs_exports")),
            "The PostgreSQL log (with the pgaudit records) is exported to CloudWatch Logs.",
        ),
        every(
            graph,
            ["aws_flow_log"],
            lambda b: b.get("traffic_type") == "ALL",
            "VPC flow logs record all traffic, accepted and rejected.",
        ),
        every(
            graph,
            ["aws_wafv2_web_acl_logging_configuration"],
            lambda b: bool(b.get("redacted_fields")) and not b.get("logging_filter"),
            "AWS WAF logs every request (no logging filter), with headers redacted.",
        ),
        every(
            graph,
            ["aws_lb"],
            lambda b: first_block(b.get("access_logs")).get("enabled") is True,
            "The load balancer writes access logs.",
        ),
        every(
            graph,
            ["aws_dynamodb_table"],
            lambda b: first_block(b.get("point_in_time_recovery")).get("enabled") is True,
            "The controller's audit table (shifts, rollbacks, validations) has point-in-time "
            "recovery.",
        ),
    ]


def log_protection_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """10.3 and 10.5.1: logs protected and kept a year."""
    return [
        every(
            graph,
            ["aws_cloudwatch_log_group"],
            lambda b: _CMK(b.get("kms_key_id")),
            "Every log group is encrypted with a customer-managed key.",
        ),
        every(
            graph,
            ["aws_s3_bucket_versioning"],
            lambda b: first_block(b.get("versioning_configuration")).get("status") == "Enabled",
            "The access-log bucket keeps every version of every object.",
        ),
        every(
            graph,
            ["aws_s3_bucket_public_access_block"],
            lambda b: all(b.get(k) is True for k in _PUBLIC_BLOCKS),
            "The access-log bucket blocks every kind of public access.",
        ),
    ]


def retention_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """10.5.1: at least twelve months of history."""
    return [
        every(
            graph,
            ["aws_cloudwatch_log_group"],
            lambda b: int(b.get("retention_in_days", 0)) >= 365,
            "Every log group keeps its events at least 365 days.",
        ),
        every(
            graph,
            ["aws_s3_bucket_lifecycle_configuration"],
            lambda b: all(
                int(first_block(r.get("expiration")).get("days", 0)) >= 365
                for r in as_list(b.get("rule"))
            ),
            "Access-log objects expire only after at least 365 days.",
        ),
    ]


def detection_claims(graph: StackGraph, config: PaymigConfig) -> list[Claim]:
    """11.5: intrusion prevention at the web edge; change detection on the log bucket."""
    rules = {
        a: b
        for a, b in graph.of_type("aws_cloudwatch_event_rule").items()
        if "Object Deleted" in str(b.get("event_pattern", ""))
    }
    targets = {
        graph.target(b.get("rule"), "aws_cloudwatch_event_rule")
        for b in graph.of_type("aws_cloudwatch_event_target").values()
        if graph.target(b.get("arn"), "aws_sns_topic") is not None
    }
    if not rules or not set(rules) <= targets:
        raise ControlMapError("control map: no deletion watch on the access-log bucket")
    return [
        Claim(
            "A deletion from the load balancer's access-log bucket raises an event to the alert "
            "topic (EventBridge).",
            tuple(name(graph, a) for a in sorted(rules)),
        ),
        Claim(
            "Requests reach the API only through AWS WAF's managed rule groups (SQL injection, "
            "known bad inputs, anonymous IPs), which block known attack patterns (6.4).",
            tuple(name(graph, a) for a in sorted(graph.of_type("aws_wafv2_web_acl"))),
        ),
    ]
