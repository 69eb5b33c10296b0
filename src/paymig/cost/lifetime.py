"""Which resources end with the migration: what `migration.stage: finished` removes.

The steady state is the stack after the migration; an item is migration-only when its
resource goes then. Read from the synthesized document alone (``--from-json`` prices any
stack): the migration itself is DMS, the validation job and the legacy record; a key,
topic, queue or health check goes with it when everything that uses it goes; an alarm
or log group goes when what it watches or what writes it goes.
"""

from __future__ import annotations

from collections.abc import Callable

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.line_item import Timing
from paymig.cost.stack_view import Resource

#: Types that only name, grant or deliver a resource; they do not make it needed.
NOT_USERS = (
    "aws_iam_",
    "aws_kms_alias",
    "aws_sns_topic_policy",
    "aws_sns_topic_subscription",
    "aws_sqs_queue_policy",
)
#: Types that exist while something uses them (keys, topics, queues, health checks).
SHARED = ("aws_kms_key", "aws_sns_topic", "aws_sqs_queue", "aws_route53_health_check")


def _users(ctx: Context, res: Resource) -> list[Resource]:
    """Resources that reference `res` and need it (not its aliases, policies or grants)."""
    key = (res.type, res.logical_id)
    return [
        r
        for kind, items in ctx.stack.by_type.items()
        if not kind.startswith(NOT_USERS)
        for r in items
        if key in r.references()
    ]


def _is_validation_job(ctx: Context, res: Resource) -> bool:
    """The state machine that invokes a Lambda function (the only one the rules price)."""
    return bool(ctx.stack.referenced(res, "aws_lambda_function"))


def _is_legacy_record(ctx: Context, res: Resource) -> bool:
    """A non-alias record of the API name answers with the legacy system's addresses.

    The AWS side is an alias to the load balancer; finishing removes the other record.
    """
    name = ctx.facts.api_record_name
    return name is not None and res.attrs.get("name") == name and not res.blocks("alias")


def _metrics(res: Resource) -> list[tuple[str, str]]:
    """`(namespace, metric name)` of every metric an alarm evaluates."""
    blocks = [q["metric"] for q in res.blocks("metric_query") if q.get("metric")]
    if not blocks:
        blocks = [res.attrs]
    out = []
    for block in blocks:
        for metric in block if isinstance(block, list) else [block]:
            out.append((str(metric.get("namespace", "")), str(metric.get("metric_name", ""))))
    return out


def _alarm_watches_migration(ctx: Context, res: Resource, seen: frozenset[str]) -> bool:
    """DMS's own metrics, or a metric a filter extracts from a log group that goes."""
    metrics = _metrics(res)
    if metrics and all(ns == "AWS/DMS" for ns, _ in metrics):
        return True
    extracted = set()
    for f in ctx.stack.of_type("aws_cloudwatch_log_metric_filter"):
        groups = ctx.stack.referenced(f, "aws_cloudwatch_log_group")
        if groups and all(_ends(ctx, g, seen) for g in groups):
            for t in f.blocks("metric_transformation"):
                extracted.add((str(t.get("namespace", "")), str(t.get("name", ""))))
    return bool(metrics) and all(ns == "AWS/DMS" or (ns, n) in extracted for ns, n in metrics)


def _log_group_writer_ends(ctx: Context, res: Resource, seen: frozenset[str]) -> bool:
    """DMS task logs, the validation function's logs or the validation job's execution logs."""
    name = str(res.attrs.get("name", ""))
    for instance in ctx.stack.of_type("aws_dms_replication_instance"):
        if name == f"dms-tasks-{instance.attrs.get('replication_instance_id')}":
            return True
    for function in ctx.stack.of_type("aws_lambda_function"):
        if name == f"/aws/lambda/{function.label}":
            return _ends(ctx, function, seen)
    machines = [u for u in _users(ctx, res) if u.type == "aws_sfn_state_machine"]
    return bool(machines) and all(_ends(ctx, m, seen) for m in machines)


def _function_ends(ctx: Context, res: Resource, seen: frozenset[str]) -> bool:
    """A function only the validation job invokes (its demands are all migration-only)."""
    return traffic.function_timing(traffic.function_demand(ctx, res)) is Timing.migration


def _used_only_by_what_ends(ctx: Context, res: Resource, seen: frozenset[str]) -> bool:
    """A key, topic, queue or health check whose every user goes."""
    users = _users(ctx, res)
    return bool(users) and all(_ends(ctx, u, seen) for u in users)


Predicate = Callable[[Context, Resource, frozenset[str]], bool]

#: Why each type of resource goes with the migration (a type not listed stays).
PREDICATES: dict[str, Predicate] = {
    # Nothing is compared once the source is gone.
    "aws_sfn_state_machine": lambda ctx, res, _: _is_validation_job(ctx, res),
    "aws_lambda_function": _function_ends,
    "aws_route53_record": lambda ctx, res, _: _is_legacy_record(ctx, res),
    "aws_cloudwatch_metric_alarm": _alarm_watches_migration,
    "aws_cloudwatch_log_group": _log_group_writer_ends,
    **dict.fromkeys(SHARED, _used_only_by_what_ends),
}


def _ends(ctx: Context, res: Resource, seen: frozenset[str]) -> bool:
    """Whether `res` goes when the migration finishes (`seen` breaks reference cycles)."""
    if res.address in seen:
        return False
    if res.type.startswith("aws_dms_"):
        return True  # the replication itself
    predicate = PREDICATES.get(res.type)
    return predicate is not None and predicate(ctx, res, seen | {res.address})


def ends_with_migration(ctx: Context, res: Resource) -> bool:
    """Whether finishing the migration removes the resource."""
    return _ends(ctx, res, frozenset())


def timing_of(ctx: Context, res: Resource) -> Timing:
    """Migration-only for a resource that finishing removes, else recurring."""
    return Timing.migration if ends_with_migration(ctx, res) else Timing.recurring
