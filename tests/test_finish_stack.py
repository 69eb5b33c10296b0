"""The cdc -> finished switch on the synthesized prod stack: exactly what goes, what changes.

Issue 17: one config switch removes both DMS tasks, the endpoints and the instance, the
legacy weighted record and its health checks. Everything else that goes is the
replication tier's own (subnet group, key, roles, event topic, security-group rules,
DMS certificates), the replication alarms and DMS log group that watch it, and the
validation job and deployment checks that compare the two databases (nothing is
compared once the source is gone). Three resources change, each only by dropping what
was removed. The only addition is the finish guard, a data source (no resource).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from paymig.infra.finish_guard import GUARD_CONDITION, guard_message

pytestmark = pytest.mark.slow

Stage = Callable[[str], dict[str, Any]]

#: Construct paths under paymig-prod/ that `migration.stage: finished` removes.
REMOVED = {
    "checks/validation/post-check",
    "checks/validation/pre-check",
    "data/ingress-dms-5432",
    "data/ingress-paymig-prod-validation-job-5432",
    "network/endpoints/ingress-dms",
    "network/endpoints/ingress-paymig-prod-validation-job",
    "observability/alarm-cdc-latency",
    "observability/alarm-dms-task-failure",
    "observability/dms-error-filter",
    "observability/dms-log-group",
    "replication/dms-cloudwatch-logs-role",
    "replication/dms-cloudwatch-logs-role-policy",
    "replication/dms-vpc-role",
    "replication/dms-vpc-role-policy",
    "replication/egress-aurora-5432",
    "replication/egress-endpoints",
    "replication/egress-source-5432",
    "replication/event-email-0",
    "replication/event-topic",
    "replication/event-topic-policy",
    "replication/instance",
    "replication/instance-events",
    "replication/key/alias",
    "replication/key/key",
    "replication/reverse-source-endpoint",
    "replication/reverse-target-endpoint",
    "replication/reverse-task",
    "replication/secrets-access-policy",
    "replication/secrets-access-role",
    "replication/security-group",
    "replication/service-roles-propagated",
    "replication/source-endpoint",
    "replication/subnet-group",
    "replication/target-endpoint",
    "replication/task",
    "replication/task-events",
    "traffic/health-legacy-0",
    "traffic/health-legacy-1",
    "traffic/health-legacy-calculated",
    "traffic/legacy",
    "trust/aurora-dms-ca",
    "trust/source-dms-ca",
    "validation/function/dlq",
    "validation/function/egress-aurora-5432",
    "validation/function/egress-dynamodb",
    "validation/function/egress-endpoints",
    "validation/function/egress-source-5432",
    "validation/function/function",
    "validation/function/log-group",
    "validation/function/role",
    "validation/function/role-policy",
    "validation/function/sg",
    "validation/job/role",
    "validation/job/role-policy",
    "validation/job/state-machine",
    "validation/log-group",
}


def by_path(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every resource by construct path (without the stack's name), with its type."""
    return {
        body["//"]["metadata"]["path"].removeprefix("paymig-prod/"): (kind, body)
        for kind, items in doc["resource"].items()
        for body in items.values()
    }


def bare(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "//"}


def test_finished_removes_exactly_the_migration_resources(prod_at_stage: Stage) -> None:
    cdc, finished = by_path(prod_at_stage("cdc")), by_path(prod_at_stage("finished"))
    assert set(cdc) - set(finished) == REMOVED
    assert set(finished) - set(cdc) == set()
    changed = {p for p in finished if bare(finished[p][1]) != bare(cdc[p][1])}
    assert changed == {"observability/dashboard", "automation/key/key", "observability/key/key"}
    removed_types = {cdc[p][0] for p in REMOVED}
    assert {"aws_dms_replication_task", "aws_dms_endpoint", "aws_dms_replication_instance",
            "aws_route53_record", "aws_route53_health_check"} <= removed_types  # fmt: skip
    tasks = sorted(p for p in REMOVED if cdc[p][0] == "aws_dms_replication_task")
    assert tasks == ["replication/reverse-task", "replication/task"]
    records = [p for p in REMOVED if cdc[p][0] == "aws_route53_record"]
    assert records == ["traffic/legacy"]
    assert finished["traffic/aws"][1] == cdc["traffic/aws"][1]  # left alone, not replaced


def _log_groups(policy_text: str) -> list[str]:
    statements = {s["Sid"]: s for s in json.loads(policy_text)["Statement"]}
    logs = statements.get("CloudWatchLogsUsesKey")
    if logs is None:
        return []
    arns: list[str] = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    return [a.rsplit(":log-group:", 1)[1] for a in arns]


def test_what_changes_only_drops_what_was_removed(prod_at_stage: Stage) -> None:
    cdc, finished = by_path(prod_at_stage("cdc")), by_path(prod_at_stage("finished"))
    for path in ("automation/key/key", "observability/key/key"):
        before, after = cdc[path][1], finished[path][1]
        assert bare(before) | {"policy": None} == bare(after) | {"policy": None}
        kept = set(_log_groups(after["policy"]))
        assert kept < set(_log_groups(before["policy"]))
        gone = set(_log_groups(before["policy"])) - kept
        assert gone <= {"dms-tasks-paymig-prod-dms", "/aws/lambda/paymig-prod-validation-job",
                        "/aws/vendedlogs/states/paymig-prod-validation-job"}, gone  # fmt: skip

    def titles(doc: dict[str, Any]) -> list[str]:
        body = json.loads(doc["observability/dashboard"][1]["dashboard_body"])
        return [
            w["properties"].get("title") or w["properties"]["markdown"] for w in body["widgets"]
        ]

    before, after = titles(cdc), titles(finished)
    assert [t for t in before if t not in after] == [
        "# paymig-prod: migration progress",
        "DMS full load throughput (rows/s)",
        "DMS CDC latency (s)",
        "DMS CDC incoming changes",
        "DMS full load progress (% of tables loaded)",
        "Full validation pass (validation job)",
        "Validation failures and suspended records (from table statistics)",
        "Traffic split (% of requests per record)",
    ]
    assert [t for t in after if t not in before] == []


def test_the_guard_reads_the_stage_item_while_planning(prod_at_stage: Stage) -> None:
    doc = prod_at_stage("finished")
    assert "aws_dynamodb_table_item" not in prod_at_stage("cdc").get("data", {})
    (guard,) = doc["data"]["aws_dynamodb_table_item"].values()
    assert bare(guard) == {
        "table_name": "paymig-prod-migration-audit",
        "key": json.dumps({"pk": {"S": "STAGE"}, "sk": {"S": "current"}}, sort_keys=True),
        "lifecycle": {
            "postcondition": [
                {"condition": GUARD_CONDITION, "error_message": guard_message("prod")}
            ]
        },
    }
    # Literal arguments, no depends_on: Terraform reads it at plan time, before any destroy.
    assert "${" not in guard["table_name"] + guard["key"]


def test_cost_of_the_finished_stack_is_the_steady_state(
    prod_config: Any, prod_at_stage: Stage
) -> None:
    """`paymig cost --env prod`: the cdc stack's steady state is the finished stack's bill.

    Everything finishing removes is flagged migration-only (DMS, and the log groups,
    replication alarms and key, event topic, legacy record's health checks and queries,
    validation job and its DLQ), and nothing else: what remains is, item for item, the
    finished stack, whose month is the steady state with nothing flagged.
    """
    from paymig.cost.report import estimate_environment

    cdc = estimate_environment(prod_config, prod_at_stage("cdc"))
    finished = estimate_environment(prod_config, prod_at_stage("finished"))
    assert not [i for i in finished.items if i.migration_only]
    assert not [i for i in finished.items if "dms" in i.service.lower()]
    assert finished.bill_usd == finished.total_monthly_usd == finished.steady_state_monthly_usd
    assert round(finished.bill_usd, 2) == 963.04
    assert round(cdc.steady_state_monthly_usd, 2) == round(finished.bill_usd, 2)

    def rows(items: Any) -> list[tuple[str, str, str, float]]:
        return sorted((i.service, i.resource, i.unit, round(i.monthly_usd, 9)) for i in items)

    assert rows(cdc.steady_state_items()) == rows(finished.items)
    flagged = {(i.service, i.resource) for i in cdc.items if i.migration_only}
    assert {
        ("CloudWatch", "/aws/vendedlogs/states/paymig-prod-validation-job storage"),
        ("CloudWatch", "dms-tasks-paymig-prod-dms storage"),
        ("CloudWatch", "alarm paymig-prod-cdc-latency"),
        ("CloudWatch", "alarm paymig-prod-dms-task-failure"),
        ("KMS", "paymig-prod/replication/key/key"),
        ("Route 53", "paymig-prod-legacy"),
        ("Route 53", "paymig-prod-legacy-203.0.113.20 optional features"),
        ("Route 53", "api.payments.example.com queries"),
        ("SNS", "paymig-prod-dms-events"),
        ("SQS", "paymig-prod-validation-job-dlq"),
    } <= flagged
