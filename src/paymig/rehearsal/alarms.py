"""CloudWatch's alarm evaluation, for the alarms Terraform created in the emulator.

moto stores alarms but never evaluates them. This module is the stand-in: it reads each
metric alarm back from the emulator (DescribeAlarms: its metric queries, threshold,
M of N, missing-data treatment), fetches the datapoints its queries name from the
emulator's CloudWatch (GetMetricData), computes the metric math of an expression alarm
(:mod:`paymig.semantics.cloudwatch_metric_math`), decides the state with CloudWatch's
documented rules (:mod:`paymig.semantics.cloudwatch_alarm`), and writes each new state
back to the emulator (SetAlarmState), where the controller's gates read it. The
composite alarm's state follows its children (:mod:`paymig.semantics.cloudwatch_composite`,
rule from the synthesized stack).

Choices where AWS publishes no number, stated here once:

- Evaluation cadence: "If the alarm period is 10 seconds or 30 seconds, the alarm is
  evaluated every 10 seconds" (Using Amazon CloudWatch alarms); other alarms every
  minute. Each evaluation covers the periods that ended :data:`INGESTION_DELAY_SECONDS`
  before it (the load balancer stand-in flushes every second).
- Evaluation range: :func:`evaluation_range` periods (AWS's worked example retrieves 5
  for 3 evaluation periods and documents no formula).
- Percentiles: moto 5.2.5 computes only Sum, Average, Minimum, Maximum and SampleCount
  (a ``p99`` query answers HTTP 500), so a percentile statistic is computed from the
  values the load balancer stand-in served (its access log), nearest-rank.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from paymig.semantics.cloudwatch_alarm import (
    AlarmState,
    Evaluation,
    MetricAlarm,
    TreatMissingData,
    evaluate_range,
    period_starts,
)
from paymig.semantics.cloudwatch_composite import child_alarms, composite_state, parse_rule
from paymig.semantics.cloudwatch_metric_math import evaluate_expression

#: Seconds after a period ends before the evaluation that includes it.
INGESTION_DELAY_SECONDS = 2.0
#: Statistics moto computes; any other (pNN) comes from the percentile source.
EMULATOR_STATISTICS = frozenset({"Sum", "Average", "Minimum", "Maximum", "SampleCount"})


def evaluation_range(evaluation_periods: int) -> int:
    """Periods retrieved per evaluation: two more than Evaluation Periods (our choice)."""
    return evaluation_periods + 2


def evaluation_interval(period_seconds: int) -> int:
    """Seconds between two evaluations of an alarm with this period."""
    return 10 if period_seconds < 60 else 60


@dataclass(frozen=True)
class MetricQuery:
    """One ``MetricStat`` query of an alarm."""

    id: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    period: int
    stat: str
    returned: bool


@dataclass(frozen=True)
class AlarmDefinition:
    """A metric alarm as the emulator holds it."""

    name: str
    arn: str
    description: str | None
    alarm: MetricAlarm
    queries: tuple[MetricQuery, ...]
    expression: tuple[str, str, str] | None  # (id, expression, label)
    actions_enabled: bool
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    insufficient_data_actions: tuple[str, ...]
    configuration_updated: datetime

    def actions_for(self, state: AlarmState) -> tuple[str, ...]:
        """The topics notified on entering `state` (none when actions are disabled)."""
        if not self.actions_enabled:
            return ()
        return {
            AlarmState.ALARM: self.alarm_actions,
            AlarmState.OK: self.ok_actions,
            AlarmState.INSUFFICIENT_DATA: self.insufficient_data_actions,
        }[state]


def alarm_definition(described: Mapping[str, Any]) -> AlarmDefinition:
    """Read one ``MetricAlarms`` entry of DescribeAlarms (metric-query alarms only)."""
    queries: list[MetricQuery] = []
    expression: tuple[str, str, str] | None = None
    for item in described.get("Metrics") or []:
        if "Expression" in item:
            expression = (str(item["Id"]), str(item["Expression"]), str(item.get("Label", "")))
            continue
        stat = item["MetricStat"]
        metric = stat["Metric"]
        queries.append(
            MetricQuery(
                id=str(item["Id"]),
                namespace=str(metric["Namespace"]),
                name=str(metric["MetricName"]),
                dimensions=tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
                period=int(stat["Period"]),
                stat=str(stat["Stat"]),
                returned=bool(item.get("ReturnData", True)),
            )
        )
    if not queries:
        raise ValueError(f"alarm {described['AlarmName']}: only metric-query alarms are read")
    alarm = MetricAlarm(
        comparison_operator=str(described["ComparisonOperator"]),
        threshold=float(described["Threshold"]),
        period_seconds=queries[0].period,
        evaluation_periods=int(described["EvaluationPeriods"]),
        datapoints_to_alarm=described.get("DatapointsToAlarm"),
        treat_missing_data=TreatMissingData(described.get("TreatMissingData") or "missing"),
    )
    return AlarmDefinition(
        name=str(described["AlarmName"]),
        arn=str(described["AlarmArn"]),
        description=described.get("AlarmDescription"),
        alarm=alarm,
        queries=tuple(queries),
        expression=expression,
        actions_enabled=bool(described.get("ActionsEnabled", True)),
        alarm_actions=tuple(described.get("AlarmActions", [])),
        ok_actions=tuple(described.get("OKActions", [])),
        insufficient_data_actions=tuple(described.get("InsufficientDataActions", [])),
        configuration_updated=described.get("AlarmConfigurationUpdatedTimestamp")
        or datetime.now(UTC),
    )


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]


#: values of (metric query, period start, period end) served by a stand-in, or None.
PercentileSource = Callable[[MetricQuery, datetime, datetime], Sequence[float] | None]


class EmulatorMetrics:
    """Datapoints of alarm queries, from the emulator's CloudWatch."""

    def __init__(self, cloudwatch: Any, percentiles: PercentileSource) -> None:
        """`percentiles` answers the pNN statistics moto cannot compute."""
        self.cloudwatch = cloudwatch
        self.percentiles = percentiles

    def series(
        self, queries: Sequence[MetricQuery], starts: Sequence[datetime]
    ) -> dict[str, dict[datetime, float]]:
        """Each query's datapoints on the period starts `starts` (missing ones absent)."""
        period = timedelta(seconds=queries[0].period)
        out: dict[str, dict[datetime, float]] = {q.id: {} for q in queries}
        stats = [q for q in queries if q.stat in EMULATOR_STATISTICS]
        if stats:
            answer = self.cloudwatch.get_metric_data(
                MetricDataQueries=[_query(q) for q in stats],
                StartTime=starts[0], EndTime=starts[-1] + period, ScanBy="TimestampAscending",
            )  # fmt: skip
            wanted = set(starts)
            for result in answer["MetricDataResults"]:
                for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    moment = stamp.astimezone(UTC)
                    if moment in wanted and value is not None:
                        out[result["Id"]][moment] = float(value)
        for query in (q for q in queries if q.stat not in EMULATOR_STATISTICS):
            percentile = float(query.stat.removeprefix("p"))
            for start in starts:
                values = self.percentiles(query, start, start + period)
                if values:
                    out[query.id][start] = nearest_rank(values, percentile)
        return out


def _query(query: MetricQuery) -> dict[str, Any]:
    return {
        "Id": query.id,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in query.dimensions],
            },
            "Period": query.period,
            "Stat": query.stat,
        },
        "ReturnData": True,  # moto returns only queries with ReturnData
    }


@dataclass(frozen=True)
class Outcome:
    """One evaluation: the state decided, the datapoints it saw (oldest first)."""

    evaluation: Evaluation
    datapoints: tuple[float | None, ...]
    range_end: datetime


def evaluate_alarm(
    definition: AlarmDefinition,
    metrics: EmulatorMetrics,
    range_end: datetime,
    current: AlarmState,
) -> Outcome:
    """Evaluate one alarm over the periods ending at `range_end`."""
    alarm = definition.alarm
    starts = period_starts(
        range_end, alarm.period_seconds, evaluation_range(alarm.evaluation_periods)
    )
    series = metrics.series(definition.queries, starts)
    if definition.expression is not None:
        values = evaluate_expression(definition.expression[1], series, starts)
    else:
        returned = next(q for q in definition.queries if q.returned)
        values = series[returned.id]
    datapoints = tuple(values.get(start) for start in starts)
    return Outcome(evaluate_range(alarm, datapoints, current), datapoints, range_end)


@dataclass(frozen=True)
class Transition:
    """An alarm changing state, when (monotonic and wall clock), and why."""

    at: float
    wall: datetime
    alarm: str
    old: AlarmState
    new: AlarmState
    reason: str
    composite: bool
    triggering: tuple[str, ...] = ()  # a composite's children that changed with it


@dataclass
class AlarmHistory:
    """What the evaluator decided, for the report and the timeline."""

    evaluations: list[tuple[float, str, AlarmState, float | None]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


def period_floor(moment: datetime, period: int) -> datetime:
    """The start of the `period`-second period `moment` falls in (epoch-aligned)."""
    seconds = int(moment.timestamp()) // period * period
    return datetime.fromtimestamp(seconds, UTC)


class AlarmEvaluator(threading.Thread):
    """Evaluates the alarms on CloudWatch's cadence; writes states; reports transitions."""

    def __init__(
        self,
        cloudwatch: Any,
        definitions: Sequence[AlarmDefinition],
        metrics: EmulatorMetrics,
        *,
        composite: tuple[str, str] | None,
        on_transition: Callable[[Transition], None],
        initial: Mapping[str, AlarmState],
    ) -> None:
        """`composite` is (name, AlarmRule); `initial` is every alarm's emulator state."""
        super().__init__(name="paymig-alarm-evaluator", daemon=True)
        self.cloudwatch, self.metrics = cloudwatch, metrics
        self.definitions = {d.name: d for d in definitions}
        self.composite = composite
        self.rule = parse_rule(composite[1]) if composite else None
        self.on_transition = on_transition
        self.states: dict[str, AlarmState] = dict(initial)
        self.history = AlarmHistory()
        self.errors: list[str] = []
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def children(self) -> frozenset[str]:
        """The composite's child alarms."""
        return child_alarms(self.rule) if self.rule is not None else frozenset()

    def state(self, name: str) -> AlarmState | None:
        """The state last decided (or read) for an alarm."""
        with self._lock:
            return self.states.get(name)

    def snapshot(self) -> dict[str, AlarmState]:
        """Every alarm's state as last decided (or read)."""
        with self._lock:
            return dict(self.states)

    def run(self) -> None:
        """Evaluate what is due, every second, until stopped."""
        while not self._stop_event.wait(1.0):
            try:
                self.tick(datetime.now(UTC))
            except Exception as error:  # one failed tick must not end the evaluation
                self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        """Stop evaluating."""
        self._stop_event.set()
        if self.is_alive():
            self.join(10)

    def tick(self, now: datetime) -> list[Transition]:
        """Evaluate every alarm whose next evaluation is due at `now`."""
        changed: list[Transition] = []
        observed = now - timedelta(seconds=INGESTION_DELAY_SECONDS)
        for name, definition in self.definitions.items():
            interval = evaluation_interval(definition.alarm.period_seconds)
            slot = period_floor(observed, interval).timestamp()
            if self._due.get(name) == slot:
                continue
            self._due[name] = slot
            range_end = period_floor(observed, definition.alarm.period_seconds)
            current = self.state(name) or AlarmState.INSUFFICIENT_DATA
            outcome = evaluate_alarm(definition, self.metrics, range_end, current)
            self.history.evaluations.append(
                (time.monotonic(), name, outcome.evaluation.state, outcome.datapoints[-1])
            )
            if outcome.evaluation.state is not current:
                evaluation = outcome.evaluation
                changed.append(self._change(name, current, evaluation.state, evaluation.reason))
        if changed and self.composite is not None:
            changed += self._composite(changed)
        return changed

    def _composite(self, children_changed: list[Transition]) -> list[Transition]:
        assert self.composite is not None and self.rule is not None
        name = self.composite[0]
        with self._lock:
            # A child the emulator does not hold has no state: composite_state then raises,
            # and the failed tick is reported (AWS refuses such a composite at creation).
            states = {
                child: self.states[child] for child in self.children() if child in self.states
            }
            current = self.states.get(name, AlarmState.INSUFFICIENT_DATA)
        new = composite_state(self.rule, states)
        if new is current:
            return []
        triggering = tuple(t.alarm for t in children_changed if t.alarm in states)
        reason = (
            "composite rule "
            + ("met" if new is AlarmState.ALARM else "not met")
            + (f" after {', '.join(f'{t} -> {states[t].value}' for t in triggering)}")
        )
        return [self._change(name, current, new, reason, triggering=triggering)]

    def _change(
        self,
        name: str,
        old: AlarmState,
        new: AlarmState,
        reason: str,
        *,
        triggering: tuple[str, ...] | None = None,
    ) -> Transition:
        """Record a new state, write it to the emulator, report the transition.

        `triggering` is given for the composite only (its children that changed).
        """
        with self._lock:
            self.states[name] = new
        transition = Transition(
            time.monotonic(), datetime.now(UTC), name, old, new, reason,
            composite=triggering is not None, triggering=triggering or (),
        )  # fmt: skip
        self.history.transitions.append(transition)
        # SetAlarmState's StateReason holds at most 1023 characters.
        self.cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=new.value, StateReason=reason[:1023]
        )
        self.on_transition(transition)
        return transition
