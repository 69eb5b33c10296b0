"""The live part of the rehearsal: two sides, clients, alarms, shifts, a fault, a rollback.

:class:`LiveMigration` holds everything that runs at once while traffic flows: the
legacy side, the AWS side (the production payment API behind the load balancer
stand-in), the virtual clients following DNS, the alarm evaluator and the delivery of
its notifications, and a sampler for the timeline. The rehearsal drives it
(:mod:`paymig.rehearsal.run`): hold, shift through the controller, inject the fault,
wait for the automatic rollback, drain, repair.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymig import naming
from paymig.config import PaymigConfig
from paymig.errors import PaymigError
from paymig.rehearsal.alarms import (
    AlarmDefinition,
    AlarmEvaluator,
    EmulatorMetrics,
    MetricQuery,
    Transition,
    alarm_definition,
)
from paymig.rehearsal.aws_side import AwsSide
from paymig.rehearsal.cdc import CdcPublisher
from paymig.rehearsal.clients import ClientPool, ZoneView
from paymig.rehearsal.delivery import (
    CompositeDefinition,
    Deliverer,
    composite_message,
    metric_message,
    subject,
)
from paymig.rehearsal.legacy_side import LegacySide
from paymig.rehearsal.timeline import Timeline
from paymig.semantics.cloudwatch_alarm import AlarmState

#: Metrics a local stand-in publishes: an alarm on others cannot be evaluated here.
PUBLISHED_METRICS = {
    ("AWS/ApplicationELB", "RequestCount"): "the load balancer stand-in (what it served)",
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"): "the load balancer stand-in",
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"): "the load balancer stand-in",
    ("AWS/ApplicationELB", "TargetResponseTime"): "the load balancer stand-in",
    (naming.CDC_LATENCY_NAMESPACE, naming.CDC_LATENCY_METRIC): (
        "the sampler (logical replication's measured replay lag)"
    ),
}
SAMPLE_INTERVAL_SECONDS = 0.5


def split_evaluable(
    described: Sequence[Mapping[str, Any]],
) -> tuple[list[AlarmDefinition], dict[str, str]]:
    """The alarms whose every metric a stand-in publishes, and why the others are not."""
    evaluable: list[AlarmDefinition] = []
    skipped: dict[str, str] = {}
    for item in described:
        definition = alarm_definition(item)
        missing = [f"{q.namespace} {q.name}" for q in definition.queries
                   if (q.namespace, q.name) not in PUBLISHED_METRICS]  # fmt: skip
        if missing:
            skipped[definition.name] = "no local stand-in publishes " + ", ".join(missing)
        else:
            evaluable.append(definition)
    return evaluable, skipped


class Sampler(threading.Thread):
    """Samples the weights, the replication lag and the alarm states for the timeline."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        cdc: CdcPublisher,
        zone: ZoneView,
        states: Callable[[], dict[str, str]],
        on_sample: Callable[[dict[str, int], float | None], None],
    ) -> None:
        """Prepare; sampling starts with the thread."""
        super().__init__(name="paymig-sampler", daemon=True)
        self.timeline, self.cdc, self.zone = timeline, cdc, zone
        self.states, self.on_sample = states, on_sample
        self.stop_event = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stop_event.wait(SAMPLE_INTERVAL_SECONDS):
            try:
                lag, weights = self.cdc.latest, self.zone.weights()
                self.timeline.sample(
                    legacy=weights.get(naming.LEGACY_SET_ID),
                    aws=weights.get(naming.AWS_SET_ID),
                    lag_seconds=None if lag is None else lag.seconds,
                    lag_bytes=None if lag is None else lag.bytes,
                    alarms=self.states(),
                )
                self.on_sample(weights, None if lag is None else lag.seconds)
            except Exception as error:  # a failed sample must not end the sampling
                self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        """Stop sampling."""
        self.stop_event.set()
        if self.is_alive():
            self.join(10)


@dataclass
class LiveParts:
    """What the live migration is built from (made by the rehearsal's setup steps)."""

    config: PaymigConfig
    session: Any
    legacy: LegacySide
    aws: AwsSide
    cdc: CdcPublisher
    composite: CompositeDefinition | None
    accounts: list[str]
    account_id: str
    invoke: Callable[[str, dict[str, Any]], Any]
    workdir: Path
    rate: float
    clients: int


@dataclass
class LiveMigration:
    """Everything that runs while traffic flows."""

    parts: LiveParts
    timeline: Timeline
    on_sample: Callable[[dict[str, int], float | None], None]
    zone: ZoneView = field(init=False)
    pool: ClientPool = field(init=False)
    evaluator: AlarmEvaluator = field(init=False)
    deliverer: Deliverer = field(init=False)
    sampler: Sampler = field(init=False)
    not_evaluated: dict[str, str] = field(init=False)
    _children_changed: list[Transition] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Build the clients, the evaluator, the deliverer and the sampler."""
        p = self.parts
        session, config = p.session, p.config
        self.zone = ZoneView(session.client("route53"), config.dns.hosted_zone_id,
                             config.dns.api_record_name, config.dns.record_ttl_seconds)  # fmt: skip
        endpoints = {naming.LEGACY_SET_ID: p.legacy.url, naming.AWS_SET_ID: p.aws.url}
        self.pool = ClientPool(self.zone, endpoints, p.accounts, rate=p.rate, clients=p.clients,
                               ack_log=p.workdir / "acknowledged.log")  # fmt: skip
        self.deliverer = Deliverer(session.client("sns"), session.client("lambda"), p.invoke,
                                   time.monotonic)  # fmt: skip
        self.evaluator = self._evaluator()
        self.sampler = Sampler(
            self.timeline,
            cdc=p.cdc,
            zone=self.zone,
            states=self.alarm_states,
            on_sample=self.on_sample,
        )

    # ------------------------------------------------------------------ alarms

    def _evaluator(self) -> AlarmEvaluator:
        p = self.parts
        cloudwatch = p.session.client("cloudwatch")
        names = list(naming.alarm_names(p.config.stack_name))
        found = cloudwatch.describe_alarms(AlarmNames=names)
        definitions, self.not_evaluated = split_evaluable(found.get("MetricAlarms", []))
        every = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
        initial = {a["AlarmName"]: AlarmState(a["StateValue"]) for a in every}
        metrics = EmulatorMetrics(cloudwatch, self._served_times)
        composite = (p.composite.name, p.composite.rule) if p.composite else None
        return AlarmEvaluator(cloudwatch, definitions, metrics, composite=composite,
                              on_transition=self._notify, initial=initial)  # fmt: skip

    def _served_times(self, query: MetricQuery, start: Any, end: Any) -> list[float]:
        """TargetResponseTime values the load balancer stand-in served in [start, end)."""
        if (query.namespace, query.name) != ("AWS/ApplicationELB", "TargetResponseTime"):
            return []
        group = dict(query.dimensions).get("TargetGroup")
        low, high = start.timestamp(), end.timestamp()
        return [e["done"] - e["t"] for e in self.parts.aws.served()
                if e["from_target"] and low <= e["wall"] < high
                and (group is None or e["target_group"] == group)]  # fmt: skip

    def alarm_states(self) -> dict[str, str]:
        """The current state of every alarm the evaluator knows."""
        return {name: state.value for name, state in self.evaluator.snapshot().items()}

    def _notify(self, transition: Transition) -> None:
        """CloudWatch's part after a state change: publish to the state's actions."""
        p = self.parts
        region = p.config.region
        if transition.composite and p.composite is not None:
            children = [t for t in self._children_changed if t.alarm in transition.triggering]
            message = composite_message(p.composite, transition, children, p.account_id, region)
            topics = p.composite.actions_for(transition.new)
            self.timeline.event("composite-" + transition.new.value.lower(), transition.reason,
                                transition.at)  # fmt: skip
        else:
            self._children_changed.append(transition)
            definition = self.evaluator.definitions[transition.alarm]
            message = metric_message(definition, transition, p.account_id, region)
            topics = definition.actions_for(transition.new)
            self.timeline.event("alarm", f"{transition.alarm} {transition.new.value}",
                                transition.at)  # fmt: skip
        for topic in topics:
            self.deliverer.publish(
                topic,
                subject(transition.alarm, transition.new, region),
                json.dumps(message),
                source=f"CloudWatch: {transition.alarm} {transition.new.value}",
            )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the zone view, the clients, the evaluator and the sampler."""
        self.zone.start()
        self.pool.start()
        self.evaluator.start()
        self.sampler.start()

    def stop_traffic(self) -> None:
        """Stop the clients (requests in flight finish)."""
        self.pool.stop()

    def stop(self) -> None:
        """Stop everything that runs. Safe to call twice."""
        self.pool.stop()
        self.sampler.stop()
        self.evaluator.stop()
        self.zone.stop()
        self.deliverer.wait(30)

    # ------------------------------------------------------------------ waiting

    def wait_for(self, what: str, test: Callable[[], Any], timeout: float) -> Any:
        """Poll `test` until it returns something truthy; fail naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            value = test()
            if value:
                return value
            if time.monotonic() > deadline:
                raise PaymigError(f"{what}: not within {timeout:g} s")
            time.sleep(0.1)
