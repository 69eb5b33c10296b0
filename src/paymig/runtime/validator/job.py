"""The validation job on AWS: a full pass as Step Functions drives it, one action at a time.

The state machine (:mod:`paymig.infra.validation_job_definition`) invokes one Lambda
function (:mod:`paymig.lambdas.validation_job`) with four actions:

* ``plan``: resume the latest unfinished pass, or plan a new one (its key ranges and
  slices go to the audit table first); returns the pass id and its slice numbers;
* ``slice``: compare the pending ranges of one slice, batch after batch, each batch
  committed to the audit table, until the slice is done or the invocation has no time
  left for another batch; returns whether the slice is done (the state machine loops);
* ``verdict``: assemble the report from every slice, mark the pass finished, and record
  the verdict where the shift gate and the cutover read it (``pk = VALIDATION``);
* ``error``: note why the execution stopped; the pass stays resumable, and a verdict of
  ``error`` is recorded so that no gate mistakes an interrupted pass for a good one.

Progress (ranges done of total, rows compared, differing keys so far) is in the pass
item and published to CloudWatch (:data:`METRIC_NAMESPACE`) after every invocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paymig.config.validation import ValidationConfig
from paymig.runtime.validator.engine import Validator
from paymig.runtime.validator.estimate import pass_rate
from paymig.runtime.validator.pass_store import STATUS_RUNNING, PassStore
from paymig.runtime.validator.passes import (
    PassTotals,
    RangeResult,
    assemble_report,
    assign_slices,
    slice_rows,
)
from paymig.runtime.validator.plan import ScopeRule
from paymig.runtime.validator.side import Settings, ValidatorError

#: CloudWatch namespace of the job's progress; dimension ``Environment``.
METRIC_NAMESPACE = "Paymig/Validation"
#: The job's progress metrics (all unit Count, published as running totals).
METRIC_RANGES_TOTAL = "RangesTotal"
METRIC_RANGES_DONE = "RangesDone"
METRIC_ROWS_COMPARED = "RowsCompared"
METRIC_DIFFERING_KEYS = "DifferingKeys"
PROGRESS_METRICS = (
    METRIC_RANGES_TOTAL,
    METRIC_RANGES_DONE,
    METRIC_ROWS_COMPARED,
    METRIC_DIFFERING_KEYS,
)


def job_function_name(stack_name: str) -> str:
    """Name of the validation job's Lambda function."""
    return f"{stack_name}-validation-job"


def state_machine_name(stack_name: str) -> str:
    """Name of the validation job's state machine."""
    return f"{stack_name}-validation-job"


@dataclass
class JobRuntime:
    """What the actions work with; the Lambda handler builds it from its environment."""

    cfg: ValidationConfig
    rules: tuple[ScopeRule, ...]
    environment: str
    #: The two databases' connection strings (source, target), resolved when first needed.
    databases: Callable[[], tuple[str, str]]
    store: PassStore
    audit: Any  # paymig.runtime.controller.aws.AuditTrail (record_validation)
    cloudwatch: Any
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def slice_settings(self) -> Settings:
        """Settings of one slice: the workers and the rate limit shared among the slices."""
        share = self.cfg.job_concurrency
        rate = self.cfg.rate_limit_rows_per_second
        return Settings.from_config(
            self.cfg,
            workers=max(1, self.cfg.workers // share),
            rate_limit_rows_per_second=None if rate is None else rate / share,
        )

    def validator(self) -> Validator:
        """A validator over the job's two databases."""
        source, target = self.databases()
        return Validator(source, target, self.slice_settings(), clock=self.clock)

    def publish(self, totals: PassTotals) -> None:
        """Put the pass's progress in CloudWatch."""
        values = {
            METRIC_RANGES_TOTAL: totals.ranges_total,
            METRIC_RANGES_DONE: totals.ranges_done,
            METRIC_ROWS_COMPARED: totals.source_rows,
            METRIC_DIFFERING_KEYS: totals.differing,
        }
        self.cloudwatch.put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": self.environment}],
                    "Value": float(value),
                    "Unit": "Count",
                }
                for name, value in values.items()
            ],
        )


def plan_action(runtime: JobRuntime, state: Mapping[str, Any]) -> dict[str, Any]:
    """Resume the latest unfinished pass, or plan and store a new one."""
    latest = runtime.store.latest()
    if latest is not None and latest.get("status") == STATUS_RUNNING and not state.get("new_pass"):
        numbers = list(range(int(latest["slices_total"])))
        return {"pass_id": str(latest["pass_id"]), "slices": numbers, "resumed": True}
    with runtime.validator() as validator:
        plan = validator.plan(rules=runtime.rules, now=runtime.now())
    per_slice = slice_rows(pass_rate(runtime.cfg) / runtime.cfg.job_concurrency)
    slices = assign_slices(plan.tables, per_slice)
    runtime.store.create(plan, slices)
    runtime.publish(PassTotals(plan.ranges_total))
    return {"pass_id": plan.pass_id, "slices": [s.number for s in slices], "resumed": False}


def slice_action(
    runtime: JobRuntime, state: Mapping[str, Any], remaining_seconds: Callable[[], float]
) -> dict[str, Any]:
    """Compare one slice's pending ranges until it is done or time runs short."""
    pass_id, number = str(state["pass_id"]), int(state["slice"])
    stored = runtime.store.load_slice(pass_id, number)
    pending = stored.pending
    if pending:
        until = runtime.clock() + remaining_seconds() - runtime.cfg.invocation_reserve_seconds

        def commit(batch: list[RangeResult]) -> None:
            runtime.store.commit(pass_id, number, batch)

        with runtime.validator() as validator:
            validator.compare(
                stored.spec.table, pending, stored.rows_per_range, until=until, on_batch=commit
            )
    left = len(runtime.store.load_slice(pass_id, number).pending)
    runtime.publish(runtime.store.totals(runtime.store.get(pass_id)))
    return {"pass_id": pass_id, "slice": number, "done": left == 0, "ranges_left": left}


def verdict_action(runtime: JobRuntime, state: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble the pass's report, finish the pass and record its verdict."""
    pass_id = str(state["pass_id"])
    item = runtime.store.get(pass_id)
    slices = runtime.store.slices(pass_id)
    counts: dict[str, int] = {}
    results: list[RangeResult] = []
    for stored in slices:
        counts[stored.spec.table] = counts.get(stored.spec.table, 0) + stored.spec.count
        results.extend(stored.results.values())
    try:
        report = assemble_report(list(counts.items()), results, runtime.cfg.max_keys_reported)
    except ValueError as exc:
        raise ValidatorError(f"validation pass {pass_id}: {exc}") from None
    totals = runtime.store.totals(item)
    verdict = "consistent" if report.consistent else "inconsistent"
    differing = [t.table for t in report.tables if not t.consistent]
    summary = (
        f"full pass {pass_id}: {len(report.tables)} table(s), {totals.source_rows:,} rows "
        f"compared since {item['started_at']}"
        + (f"; differences in {', '.join(differing)}" if differing else "")
    )
    runtime.store.finish(pass_id, verdict, summary)
    runtime.audit.record_validation(
        {
            "status": verdict,
            "summary": summary,
            "source": "job",
            "pass_id": pass_id,
            "started_at": item["started_at"],
            "rows_compared": totals.source_rows,
            "tables": report.to_json()["tables"],
        },
        runtime.now(),
    )
    runtime.publish(totals)
    return {"pass_id": pass_id, "status": verdict, "summary": summary}


def error_action(runtime: JobRuntime, state: Mapping[str, Any]) -> dict[str, Any]:
    """Note why the execution stopped (the pass stays resumable); record an error verdict."""
    error = state.get("error") or {}
    message = f"{error.get('Error', 'unknown error')}: {error.get('Cause', '')}".strip(": ")
    pass_id = state.get("pass_id")
    if pass_id:
        runtime.store.note_error(str(pass_id), message)
    runtime.audit.record_validation(
        {
            "status": "error",
            "summary": f"validation job stopped: {message[:500]}"
            + (f" (pass {pass_id} resumes on the next execution)" if pass_id else ""),
            "source": "job",
            **({"pass_id": str(pass_id)} if pass_id else {}),
        },
        runtime.now(),
    )
    return {"pass_id": pass_id, "status": "error", "message": message[:500]}
