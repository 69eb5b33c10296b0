"""The fault's path, measured, beside the same path modelled by the controller's budget.

Measured: each step is the time between two events the rehearsal saw happen (clients'
answers, the alarm evaluator's transitions, the rollback handler's own start and end),
all on the machine's monotonic clock. Modelled: the controller's rollback budget
(:func:`paymig.runtime.controller.budget.budget_from_config`), its first-invocation
path with the detection terms of the alarm that fired in this run (the model's own
:func:`~paymig.runtime.controller.budget.detection_steps`).

The traffic split is measured the same way: for each phase, the share of requests each
side served once the change was older than the DNS TTL plus the clients' view's refresh
interval (clients holding an answer from before the change are the transition, counted
apart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from paymig.config import PaymigConfig
from paymig.rehearsal.alarms import Transition
from paymig.rehearsal.clients import RequestRecord
from paymig.runtime.controller.budget import budget_from_config, budget_inputs, detection_steps
from paymig.semantics.cloudwatch_alarm import AlarmState

#: The budget's path in which the rollback's first invocation changes the weights (what
#: a rehearsal without a shift in flight exercises).
FIRST_INVOCATION_PATH = "first-invocation"


@dataclass(frozen=True)
class PathStep:
    """One measured step: from which event to which, and the seconds between them."""

    name: str
    seconds: float | None
    detail: str


@dataclass(frozen=True)
class FaultPath:
    """The fault's path through detection and rollback, as measured."""

    steps: tuple[PathStep, ...]
    fired: str | None  # the metric alarm that reached ALARM first
    failed_to_clients: int
    answered_during_fault: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _first(items: Sequence[float]) -> float | None:
    return min(items) if items else None


def _between(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def measure_fault_path(
    fault_at: float,
    *,
    repaired_at: float | None,
    records: Sequence[RequestRecord],
    transitions: Sequence[Transition],
    handler_started: float | None,
    weights_restored: float | None,
    bad: tuple[str, Callable[[RequestRecord], bool]] = ("5xx", lambda r: r.status >= 500),
    reshifted_at: float | None = None,
) -> FaultPath:
    """The measured path: fault, first bad answer, alarm, composite, handler, weights, last AWS.

    `reshifted_at` is when traffic was next sent to AWS on purpose (the whole migration
    shifts again after the ack): the last AWS request counts only requests before it.
    `bad` names what a bad answer is for the scenario and how to tell one (a 5xx by
    default; a slow answer for a slow database).
    """
    label, is_bad = bad
    after = [t for t in transitions if t.at >= fault_at and t.new is AlarmState.ALARM]
    alarm = next((t for t in after if not t.composite), None)
    composite = next((t for t in after if t.composite), None)
    first_bad = _first([r.done for r in records
                        if r.side == "aws" and r.sent >= fault_at and is_bad(r)])  # fmt: skip
    until = reshifted_at if reshifted_at is not None else float("inf")
    last_aws = max((r.sent for r in records
                    if r.side == "aws" and fault_at <= r.sent < until), default=None)  # fmt: skip
    alarm_at = alarm.at if alarm else None
    composite_at = composite.at if composite else None
    end = repaired_at if repaired_at is not None else float("inf")
    during = [r for r in records if fault_at <= r.sent < end]
    steps = (
        PathStep(f"fault -> first {label}", _between(fault_at, first_bad),
                 f"a client's first {label} answer from the AWS side"),
        PathStep(f"first {label} -> alarm ALARM", _between(first_bad, alarm_at),
                 f"{alarm.alarm if alarm else 'no alarm'} entered ALARM (evaluated from metrics)"),
        PathStep("alarm -> composite ALARM", _between(alarm_at, composite_at),
                 f"{composite.alarm if composite else 'the composite'} followed"),
        PathStep("composite -> handler start", _between(composite_at, handler_started),
                 "notification published, filtered, delivered; the function's cold start"),
        PathStep("handler start -> weights restored", _between(handler_started, weights_restored),
                 "listener and Route 53 back to legacy, INSYNC"),
        PathStep("weights restored -> last AWS request", _between(weights_restored, last_aws),
                 "clients holding a cached answer until its TTL ran out"),
        PathStep("fault -> weights restored", _between(fault_at, weights_restored), "total"),
    )  # fmt: skip
    return FaultPath(
        steps=steps,
        fired=alarm.alarm if alarm else None,
        failed_to_clients=sum(1 for r in during if not r.acknowledged),
        answered_during_fault=len(during),
    )


def modelled_path(config: PaymigConfig, metric: str | None) -> list[dict[str, Any]]:
    """The budget's first-invocation path, detected by the alarm `metric` (a config key).

    The budget detects with the slowest of the composite's members; a rehearsal's fault
    is detected by the alarm that fired, so its detection terms (alignment, breaching
    periods, ingestion, evaluation) replace the slowest member's, and the terms after
    detection stay the budget's. Without a known alarm it is the budget's worst path.
    """
    budget = budget_from_config(config)
    alarms = {str(name): settings for name, settings in config.observability.alarms.items()}
    if metric is None or metric not in alarms:
        return [step.as_dict() for step in budget.steps]
    path = next(p for p in budget.paths if p.name == FIRST_INVOCATION_PATH)
    detection = detection_steps(
        metric, alarms[metric], budget_inputs(config).metric_ingestion_seconds
    )
    return [step.as_dict() for step in (*detection, *path.steps[len(detection) :])]


@dataclass(frozen=True)
class PhaseShare:
    """One phase of the migration: its weight and the share each side served."""

    phase: str
    aws_weight: int
    requests: int
    aws_share: float | None  # percent of the requests whose answer was read after the change
    transition_requests: int  # sent with an answer read before the change

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def phase_shares(
    phases: Sequence[tuple[str, int, float, float]], records: Sequence[RequestRecord]
) -> list[PhaseShare]:
    """Per phase (name, aws weight, start, end): measured share of requests on AWS.

    A request counts once its DNS answer was drawn from zone records read after the phase
    began (each phase begins once its weights are in place): until then a client may hold
    an answer from before, for its TTL, and the clients' view of the zone may lag, by its
    poll interval and, on a loaded machine, by a slow read. The first phase has no
    transition: the clients start with no answer cached.
    """
    shares = []
    for index, (name, weight, start, end) in enumerate(phases):
        inside = [r for r in records if start <= r.sent < end]
        steady = [r for r in inside if r.answer_read_at >= start] if index else inside
        aws = sum(1 for r in steady if r.side == "aws")
        share = round(100.0 * aws / len(steady), 1) if steady else None
        shares.append(PhaseShare(name, weight, len(steady), share, len(inside) - len(steady)))
    return shares
