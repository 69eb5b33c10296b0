"""The rollback time budget as a bound: every term from AWS's documentation, every path.

Requirement 8: from a sustained fault on the AWS side to clients resolving to legacy
within 300 s. The bound is the worst path through the rollback, each term the worst case
AWS documents (cited beside each constant) or one of our own settings; where AWS
documents nothing, the term is a named assumption from the configuration, said so in the
table. What no setting can bound is listed in :data:`UNBOUNDED`, with how the runbook
handles it.

Paths: the first invocation changes the weights (`first-invocation`); a shift whose lock
was taken over lands its change after the rollback's, which re-reads after the landing
bound and re-applies (`re-apply`). Lambda's own retry of a failed invocation waits at
least a minute (documented below) and is a backstop outside the bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paymig.naming import COMPOSITE_ALARM, ROLLBACK_ALARM_METRICS
from paymig.rollback_timing import (
    BEST_EFFORT_CALL_SECONDS,
    LAMBDA_INIT_SECONDS,
    SHIFT_LANDING_SECONDS,
    SNS_FIRST_RETRIES_SECONDS,
    STAGE_READ_ATTEMPTS,
    STAGE_READ_SECONDS,
)
from paymig.runtime.controller.core import (
    ROLLBACK_LIMIT_SECONDS,
    ROLLBACK_TARGET_SECONDS,
)
from paymig.semantics.cloudwatch_alarm import (
    AlarmState,
    MetricAlarm,
    TreatMissingData,
    evaluate_range,
)

if TYPE_CHECKING:
    from paymig.config import AlarmSettings, PaymigConfig

# --------------------------------------------------------------------------- AWS's numbers

#: CloudWatch User Guide, "Using Amazon CloudWatch alarms", "Evaluating an alarm": "If
#: the alarm period is 10 seconds or 30 seconds, the alarm is evaluated every 10 seconds."
HIGH_RESOLUTION_EVALUATION_SECONDS = 10
#: Same section: "For any period of one minute or longer, an alarm is evaluated every
#: minute."
STANDARD_EVALUATION_SECONDS = 60
#: Elastic Load Balancing, "CloudWatch metrics for your Application Load Balancer":
#: "Elastic Load Balancing measures and sends its metrics in 60-second intervals", so a
#: minute's datapoint can reach CloudWatch up to one interval after the minute ends.
AWS_METRIC_PUBLISH_SECONDS = 60
#: Route 53 Developer Guide, e.g. "Creating records by using the Amazon Route 53
#: console": "Changes generally propagate to all Route 53 name servers within 60
#: seconds" (GetChange then reports INSYNC). "Generally": see UNBOUNDED.
ROUTE53_PROPAGATION_SECONDS = 60
#: Route 53 Developer Guide, "Choosing between alias and non-alias records": an alias to
#: an AWS resource has that resource's TTL; Elastic Load Balancing's DNS records have a
#: TTL of 60 s. An answer pointing at the AWS side is cached this long at most.
ALB_ALIAS_TTL_SECONDS = 60


@dataclass(frozen=True)
class Unbounded:
    """Something the budget cannot bound, and how it is handled."""

    what: str
    handling: str


#: What no setting bounds; the runbook's rollback section repeats it.
UNBOUNDED = (
    Unbounded(
        "clients that keep connections open past the DNS TTL (normal for server-to-server "
        "payment clients) and resolvers that ignore the TTL",
        "the listener half of the rollback moves those requests to the stable alias; the "
        "runbook has the operator watch the load balancer's RequestCount fall to zero and "
        "ask the named client teams to recycle their connections",
    ),
    Unbounded(
        "Route 53 propagation slower than 'generally within 60 seconds', or its API "
        "failing longer than `controller.route53_submit_seconds`",
        "the function waits for INSYNC within its time left, records `unconfirmed` or "
        "`failed` and notifies; Lambda retries it; its Errors alarm pages; the runbook's "
        "manual rollback applies",
    ),
    Unbounded(
        "SNS unable to hand the event to Lambda within its immediate and pre-backoff "
        "retries, Lambda throttling the function, or the function failing before its "
        "Route 53 change (Lambda's retry waits a minute)",
        "the function's Throttles and Errors alarms and its dead-letter queue's depth page "
        "people; events older than the maximum event age are rejected, not acted on",
    ),
    Unbounded(
        "the assumptions AWS documents no bound for: composite evaluation, ingestion of "
        "high-resolution metrics, the wait in Lambda's asynchronous queue",
        "configured in `controller.*_seconds`; measure them in a rehearsal on AWS and "
        "correct the configuration: the budget test then recomputes every path",
    ),
)


@dataclass(frozen=True)
class BudgetStep:
    """One term of a path: its worst-case seconds and where that number comes from."""

    name: str
    seconds: int
    detail: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "seconds": self.seconds,
            "detail": self.detail,
            "source": self.source,
        }


@dataclass(frozen=True)
class BudgetPath:
    """One way the rollback can go, as the sum of its terms."""

    name: str
    description: str
    steps: tuple[BudgetStep, ...]

    @property
    def total_seconds(self) -> int:
        """The path's worst case."""
        return sum(step.seconds for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "description": self.description,
            "total_seconds": self.total_seconds,
            "steps": [step.as_dict() for step in self.steps],
        }


@dataclass(frozen=True)
class RollbackBudget:
    """Worst case from a sustained fault to clients resolving to legacy, over every path."""

    paths: tuple[BudgetPath, ...]
    fastest_signal_seconds: int
    fastest_alarm: str
    unbounded: tuple[Unbounded, ...] = UNBOUNDED

    @property
    def worst_path(self) -> BudgetPath:
        """The slowest path (the first of equals)."""
        return max(self.paths, key=lambda p: p.total_seconds)

    @property
    def total_seconds(self) -> int:
        """The bound: the worst case over every path."""
        return self.worst_path.total_seconds

    @property
    def steps(self) -> tuple[BudgetStep, ...]:
        """The terms of the worst path."""
        return self.worst_path.steps

    @property
    def within_limit(self) -> bool:
        """Every path within 5 minutes (requirement 8)."""
        return all(p.total_seconds <= ROLLBACK_LIMIT_SECONDS for p in self.paths)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for `paymig status --format json`."""
        return {
            "total_seconds": self.total_seconds,
            "worst_path": self.worst_path.name,
            "limit_seconds": ROLLBACK_LIMIT_SECONDS,
            "target_seconds": ROLLBACK_TARGET_SECONDS,
            "within_limit": self.within_limit,
            "fastest_signal_seconds": self.fastest_signal_seconds,
            "fastest_alarm": self.fastest_alarm,
            "steps": [s.as_dict() for s in self.steps],
            "paths": [p.as_dict() for p in self.paths],
            "unbounded": [{"what": u.what, "handling": u.handling} for u in self.unbounded],
        }


@dataclass(frozen=True)
class BudgetInputs:
    """The configured terms: our settings and the assumptions AWS documents no bound for."""

    composite_evaluation_seconds: int
    metric_ingestion_seconds: int
    lambda_queue_seconds: int
    route53_submit_seconds: int


# --------------------------------------------------------------------------- detection


def periods_to_alarm(settings: AlarmSettings) -> int:
    """Breaching periods of a sustained fault until the alarm is in ALARM.

    Found with CloudWatch's documented evaluation (:mod:`paymig.semantics.cloudwatch_alarm`):
    healthy datapoints, then breaching ones, evaluated after each period over a range of
    N + 2 periods (AWS retrieves more than N; its worked example uses 5 for 3).
    """
    alarm = MetricAlarm(
        comparison_operator="GreaterThanThreshold",
        threshold=settings.threshold,
        period_seconds=settings.period_seconds,
        evaluation_periods=settings.evaluation_periods,
        datapoints_to_alarm=settings.datapoints_to_alarm,
        treat_missing_data=TreatMissingData(settings.treat_missing_data),
    )
    window = settings.evaluation_periods + 2
    healthy, breaching = settings.threshold / 2, settings.threshold + 1
    values: list[float | None] = [healthy] * window
    for periods in range(1, settings.evaluation_periods + 1):
        values = [*values[1:], breaching]
        if evaluate_range(alarm, values, AlarmState.OK).state is AlarmState.ALARM:
            return periods
    raise ValueError("a sustained breach never alarms")  # pragma: no cover - M <= N


def detection_steps(name: str, settings: AlarmSettings, ingestion: int) -> tuple[BudgetStep, ...]:
    """Fault start to the alarm's ALARM: alignment, breaching periods, ingestion, cadence."""
    period = settings.period_seconds
    periods = periods_to_alarm(settings)
    if settings.high_resolution:
        published = BudgetStep(
            "ingestion",
            ingestion,
            f"{name}: the last period's datapoint reaches CloudWatch",
            "assumption: controller.metric_ingestion_seconds (AWS documents no bound)",
        )
        cadence = HIGH_RESOLUTION_EVALUATION_SECONDS
    else:
        published = BudgetStep(
            "ingestion",
            AWS_METRIC_PUBLISH_SECONDS,
            f"{name}: the service sends one-minute metrics every 60 s",
            "ELB guide, CloudWatch metrics for your Application Load Balancer",
        )
        cadence = STANDARD_EVALUATION_SECONDS
    return (
        BudgetStep(
            "alignment",
            period,
            f"{name}: a fault that starts just after a period began dilutes it",
            "CloudWatch guide, Evaluating an alarm (one datapoint per period)",
        ),
        BudgetStep(
            "breaching periods",
            period * periods,
            f"{name}: {periods} x {period} s breaching until ALARM "
            f"({settings.datapoints_to_alarm} of {settings.evaluation_periods})",
            "CloudWatch guide, Evaluating an alarm (paymig.semantics.cloudwatch_alarm)",
        ),
        published,
        BudgetStep(
            "evaluation",
            cadence,
            f"{name}: evaluated every {cadence} s",
            "CloudWatch guide, Evaluating an alarm",
        ),
    )


# --------------------------------------------------------------------------- paths


def _delivery(inputs: BudgetInputs) -> tuple[BudgetStep, ...]:
    """From the members' ALARM to the rollback function running."""
    return (
        BudgetStep(
            "composite",
            inputs.composite_evaluation_seconds,
            f"{COMPOSITE_ALARM} follows its member and publishes",
            "assumption: controller.composite_evaluation_seconds (AWS documents no bound)",
        ),
        BudgetStep(
            "sns delivery",
            SNS_FIRST_RETRIES_SECONDS,
            "SNS hands the event to Lambda (immediate and pre-backoff retries)",
            "SNS guide, Amazon SNS message delivery retries (AWS managed endpoints)",
        ),
        BudgetStep(
            "lambda queue",
            inputs.lambda_queue_seconds,
            "the event waits in Lambda's asynchronous queue",
            "assumption: controller.lambda_queue_seconds (AWS documents no bound)",
        ),
        BudgetStep(
            "cold start",
            LAMBDA_INIT_SECONDS,
            "the function's Init phase",
            "Lambda guide, execution environment lifecycle (Init limited to 10 s)",
        ),
        BudgetStep(
            "event check",
            BEST_EFFORT_CALL_SECONDS,
            "the composite is read once: is this event still current?",
            "our setting: core.BEST_EFFORT_CALL_SECONDS (one bounded attempt)",
        ),
        BudgetStep(
            "stage read",
            STAGE_READ_SECONDS,
            "the migration stage is read: may traffic return to legacy?",
            f"our setting: rollback_timing.STAGE_READ_SECONDS ({STAGE_READ_ATTEMPTS} "
            "bounded attempts)",
        ),
        BudgetStep(
            "intent record",
            BEST_EFFORT_CALL_SECONDS,
            "best-effort audit record before any change (one bounded attempt)",
            "our setting: core.BEST_EFFORT_CALL_SECONDS",
        ),
    )


def _submit(inputs: BudgetInputs, which: str) -> BudgetStep:
    """One Route 53 read and change, retried on throttling and connection errors."""
    return BudgetStep(
        f"route53 {which}",
        inputs.route53_submit_seconds,
        f"{which} change of the weights submitted (retried within the window)",
        "our setting: controller.route53_submit_seconds",
    )


def _dns_tail() -> tuple[BudgetStep, ...]:
    """From the last change to clients resolving to legacy."""
    return (
        BudgetStep(
            "propagation",
            ROUTE53_PROPAGATION_SECONDS,
            "the change reaches every Route 53 name server (INSYNC)",
            "Route 53 guide: changes generally propagate within 60 seconds",
        ),
        BudgetStep(
            "dns ttl",
            ALB_ALIAS_TTL_SECONDS,
            "resolvers drop a cached answer pointing at the AWS side",
            "Route 53 guide, alias records: the TTL of the load balancer, 60 s",
        ),
    )


def rollback_budget(alarms: Mapping[Any, AlarmSettings], inputs: BudgetInputs) -> RollbackBudget:
    """Every path's worst case; detection by the slowest of the composite's members.

    Only answers pointing at the AWS side must expire for a rollback to take effect, so
    the TTL term is the load balancer alias's, whatever the legacy record's TTL.
    """
    members = {name: alarms[name] for name in ROLLBACK_ALARM_METRICS if name in alarms}
    if not members:
        raise ValueError("no composite member alarms: the rollback has nothing to detect with")
    detection = {
        name: detection_steps(name, s, inputs.metric_ingestion_seconds)
        for name, s in members.items()
    }
    seconds = {name: sum(step.seconds for step in steps) for name, steps in detection.items()}
    slowest = max(seconds, key=lambda n: (seconds[n], n))
    fastest = min(seconds, key=lambda n: (seconds[n], n))
    guard = BudgetStep(
        "landing guard",
        SHIFT_LANDING_SECONDS,
        "a shift whose lock was taken over may still land its change; re-read after it",
        "our setting: core.SHIFT_LANDING_SECONDS (gate freshness + one Route 53 attempt)",
    )
    after_first = (*_delivery(inputs), _submit(inputs, "first"), *_dns_tail())
    after_reapply = (
        *_delivery(inputs),
        _submit(inputs, "first"),
        guard,
        _submit(inputs, "second"),
        *_dns_tail(),
    )
    paths = (
        BudgetPath(
            "first-invocation",
            "the function's first invocation changes the weights",
            (*detection[slowest], *after_first),
        ),
        BudgetPath(
            "re-apply",
            "a shift in flight lands after the rollback's change; the rollback re-applies",
            (*detection[slowest], *after_reapply),
        ),
    )
    return RollbackBudget(
        paths=paths,
        fastest_signal_seconds=seconds[fastest] + sum(s.seconds for s in after_first),
        fastest_alarm=fastest,
    )


def budget_inputs(config: PaymigConfig) -> BudgetInputs:
    """The configured budget terms of one environment."""
    ctl = config.controller
    return BudgetInputs(
        composite_evaluation_seconds=ctl.composite_evaluation_seconds,
        metric_ingestion_seconds=ctl.metric_ingestion_seconds,
        lambda_queue_seconds=ctl.lambda_queue_seconds,
        route53_submit_seconds=ctl.route53_submit_seconds,
    )


def budget_from_config(config: PaymigConfig) -> RollbackBudget:
    """The rollback budget of one environment's configuration."""
    return rollback_budget(config.observability.alarms, budget_inputs(config))


# --------------------------------------------------------------------------- the docs

BUDGET_BEGIN = "<!-- BEGIN generated by paymig.runtime.controller.budget -->"
BUDGET_END = "<!-- END generated budget -->"


def budget_markdown(budget: RollbackBudget) -> str:
    """The budget section of docs/controller.md (markers included), for one config."""
    lines = [
        BUDGET_BEGIN,
        "",
        f"Worst case over every path: **{budget.total_seconds} s** (`{budget.worst_path.name}`), "
        f"limit {ROLLBACK_LIMIT_SECONDS} s; {budget.fastest_signal_seconds} s when "
        f"`{budget.fastest_alarm}` detects the fault first.",
        "",
        "| term | " + " | ".join(f"`{p.name}` s" for p in budget.paths) + " | what | source |",
        "|---|" + "---:|" * len(budget.paths) + "---|---|",
    ]
    names = [s.name for s in budget.worst_path.steps]
    for name in names:
        row = [next((s for s in p.steps if s.name == name), None) for p in budget.paths]
        step = next(s for s in row if s is not None)
        cells = " | ".join(str(s.seconds) if s else "-" for s in row)
        lines.append(f"| {name} | {cells} | {step.detail} | {step.source} |")
    lines.append(
        "| **total** | " + " | ".join(f"**{p.total_seconds}**" for p in budget.paths) + " | | |"
    )
    lines += ["", "Not bounded:", ""]
    lines += [f"* {u.what}: {u.handling}." for u in budget.unbounded]
    lines += ["", BUDGET_END]
    return "\n".join(lines)


def refresh_budget(text: str, budget: RollbackBudget) -> str:
    """`text` with its generated budget section replaced by the current one."""
    start, end = text.index(BUDGET_BEGIN), text.index(BUDGET_END) + len(BUDGET_END)
    return text[:start] + budget_markdown(budget) + text[end:]


if __name__ == "__main__":  # pragma: no cover - the doc's regeneration command
    import sys
    from pathlib import Path

    from paymig.config import load_config

    doc, config = Path(sys.argv[1]), Path(sys.argv[2])
    current = budget_from_config(load_config(config))
    doc.write_text(refresh_budget(doc.read_text(encoding="utf-8"), current), encoding="utf-8")
