"""The migration as the rehearsal plays it: phases, the fault, the automatic rollback.

Traffic starts on legacy alone; the controller shifts to 10 % and 50 % (its gates read
the alarms, the CDC latency and the validation from the emulator); during the 50 %
phase the scenario's fault hits the AWS side's path to its database. Nothing here
triggers the rollback: the alarms detect the fault from the metrics, the composite
follows, its notification is delivered to the rollback Lambda, which restores the
weights. The rehearsal only waits, then lets the clients' cached answers expire,
repairs the fault and stops the traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from paymig import naming
from paymig.config import PaymigConfig
from paymig.errors import PaymigError
from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal.aws_side import AwsSide
from paymig.rehearsal.data import LogicalReplication
from paymig.rehearsal.delivery import Delivery
from paymig.rehearsal.live import LiveMigration
from paymig.rehearsal.scenarios import Scenario
from paymig.rehearsal.timeline import Timeline
from paymig.semantics.cloudwatch_alarm import AlarmState

#: Seconds of traffic on legacy alone before the first shift.
OPENING_HOLD_SECONDS = 5.0
#: Seconds a phase keeps its weights after the clients' older answers have expired.
STEADY_SECONDS = 15.0
#: Longest wait from the fault to the end of the rollback handler.
ROLLBACK_TIMEOUT_SECONDS = 180.0
#: Seconds of traffic after the fault is repaired, at least.
CLOSING_HOLD_SECONDS = 5.0
#: Longest wait, after the repair, for the composite to return to OK.
RECOVERY_TIMEOUT_SECONDS = 60.0
#: Seconds after the composite's ALARM within which its delivery must have been made.
DELIVERY_GRACE_SECONDS = 5.0


class Stages(Protocol):
    """What runs after the first rollback (:class:`paymig.rehearsal.stages.CutoverPath`)."""

    def run(self) -> bool:
        """Every stage; False at the first that failed."""


class Steps(Protocol):
    """How the migration reports its steps and asks for a validation (the rehearsal)."""

    def enter(self, name: str) -> None:
        """A step starts."""

    def step(self, name: str, ok: bool, began: float, detail: str) -> None:
        """A step ended."""

    def validate_live(self) -> bool:
        """Validate while the load runs; True when consistent."""


@dataclass
class Phase:
    """One phase of the traffic: its aws weight and when it held."""

    name: str
    aws_weight: int
    start: float
    end: float | None = None


@dataclass
class Migration:
    """Drives one migration through the live parts."""

    steps: Steps
    config: PaymigConfig
    scenario: Scenario
    vpn: TcpProxy
    aws_side: AwsSide
    replication: LogicalReplication
    live: LiveMigration
    timeline: Timeline
    phases: list[Phase] = field(default_factory=list)
    fault_at: float | None = None
    repaired_at: float | None = None
    rollback: Delivery | None = None
    catch_up_seconds: float | None = None
    #: The stages after the first rollback (the default scenario); None: traffic only.
    after: Stages | None = None
    completed: bool = False

    def run(self) -> None:
        """Phases, fault, rollback; the traffic stops and replication catches up."""
        self.live.start()
        self.phases.append(Phase("0%", 0, time.monotonic()))
        self.timeline.event("traffic", f"{self.live.parts.rate:g} payments/s")
        try:
            time.sleep(OPENING_HOLD_SECONDS)
            if self.steps.validate_live() and self._shifts():
                self._fault_and_rollback()
                self.completed = self.after.run() if self.after is not None else True
        finally:
            self._stop()

    # ------------------------------------------------------------------ phases

    def ttl(self) -> float:
        """The clients' DNS cache time (the records' TTL)."""
        return float(self.config.dns.record_ttl_seconds)

    def _shifts(self) -> bool:
        """Shift to 10 % then 50 % through the controller, holding each phase."""
        from paymig.runtime.controller import actions
        from paymig.runtime.controller.aws import ControllerAws
        from paymig.runtime.controller.core import ControllerSettings

        settings = ControllerSettings.from_config(self.config)
        aws = ControllerAws.connect(settings.rollback, self.live.parts.session)
        for target in (10, 50):
            self.steps.enter(f"shift to {target}% (controller, gates against the emulator)")
            began = time.monotonic()
            try:
                outcome = actions.shift(
                    aws,
                    settings,
                    target=target,
                    source="rehearsal",
                    reason=f"paymig rehearse: phase {target}%",
                )
            except PaymigError as error:
                self.steps.step(f"shift-{target}", False, began, str(error))
                return False
            self.next_phase(f"{target}%", target, since=began)
            gates = ", ".join(f"{g.name} ok" for g in outcome.gates)
            self.steps.step(f"shift-{target}", True, began, f"{outcome.detail}; gates: {gates}")
            time.sleep(self.ttl() + STEADY_SECONDS)
        return True

    def next_phase(
        self, name: str, weight: int, at: float | None = None, since: float | None = None
    ) -> None:
        """Close the current traffic phase and open the next.

        ``since`` is when the change of weights began (a shift's call, the rollback's
        start): the weights moved at some moment until the new phase opens, so the
        requests sent in between belong to neither phase.
        """
        moment = time.monotonic() if at is None else at
        self.phases[-1].end = moment if since is None else min(since, moment)
        self.phases.append(Phase(name, weight, moment))

    # ------------------------------------------------------------------ the fault

    def _fault_and_rollback(self) -> None:
        """Inject the fault; wait for the rollback; drain the cached answers; repair."""
        scenario, vpn = self.scenario, self.vpn
        self.steps.enter(f"fault: {scenario.name}; waiting for the automatic rollback")
        self.fault_at = time.monotonic()
        scenario.inject(vpn)
        self.timeline.event("fault", scenario.description, self.fault_at)
        self.rollback = self.live.wait_for(
            "the rollback Lambda's run after the fault",
            self.rollback_outcome,
            ROLLBACK_TIMEOUT_SECONDS,
        )
        invocation = self.rollback.invocation
        assert invocation is not None
        restored = invocation.finished or time.monotonic()
        self.next_phase("rolled back", 0, restored, since=invocation.started)
        self.timeline.event("weights-restored", str(invocation.result), restored)
        self._record_rollback()
        time.sleep(max(0.0, restored + self.ttl() + 1.0 - time.monotonic()))
        self.repaired_at = time.monotonic()
        scenario.repair(vpn)
        self.timeline.event("repaired", "", self.repaired_at)
        time.sleep(CLOSING_HOLD_SECONDS)
        self.wait_recovery()

    def wait_recovery(self) -> None:
        """Keep the traffic until the composite is OK again (its OK notification shows)."""
        composite = self.live.parts.composite
        if composite is None:
            return
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while self.live.evaluator.state(composite.name) is not AlarmState.OK:
            if time.monotonic() > deadline:
                return  # reported: the transitions table shows the composite still in ALARM
            time.sleep(0.5)

    def rollback_outcome(self, since: float | None = None) -> Delivery | None:
        """The rollback function's run after the fault, or None while none finished."""
        since = self.fault_at if since is None else since
        assert since is not None
        function = naming.rollback_function_name(self.config.stack_name)
        recent = [d for d in self.live.deliverer.snapshot() if d.published_at >= since]
        for delivery in recent:
            invocation = delivery.invocation
            if invocation is None or delivery.endpoint.split(":")[6:7] != [function]:
                continue
            if invocation.error or (invocation.result or {}).get("result") != "ignored":
                return delivery
        composite = [
            t
            for t in self.live.evaluator.history.transitions
            if t.composite and t.new is AlarmState.ALARM and t.at >= since
        ]
        if composite and time.monotonic() - composite[0].at > DELIVERY_GRACE_SECONDS:
            reached = [d for d in recent if d.matched and d.protocol == "lambda"]
            if not reached and not self.live.deliverer.errors:
                seen = (
                    "; ".join(
                        f"{d.topic.rsplit(':', 1)[-1]} -> {d.endpoint.rsplit(':', 1)[-1]}"
                        f": {d.detail}"
                        for d in recent
                    )
                    or "nothing was published"
                )
                raise PaymigError(
                    f"the composite's ALARM notification invoked no function ({seen})"
                )
        if self.live.deliverer.errors:
            raise PaymigError("delivery failed: " + " | ".join(self.live.deliverer.errors))
        return None

    def _record_rollback(self) -> None:
        assert self.rollback is not None and self.rollback.invocation is not None
        invocation, began = self.rollback.invocation, self.fault_at or time.monotonic()
        result: dict[str, Any] = dict(invocation.result or {})
        ok = (
            invocation.error is None
            and result.get("result") == "succeeded"
            and not invocation.denied
        )
        weights = self.live.wait_for("the restored weights in Route 53", self._restored, 10.0)
        detail = (
            f"handler as {invocation.principal}: {result.get('result')}: "
            f"{result.get('detail')}; Route 53 now {weights}"
        )
        if invocation.error:
            detail = f"handler failed: {invocation.error['type']}: {invocation.error['message']}"
        if invocation.denied:
            detail += "; denied: " + ", ".join(invocation.denied)
        self.steps.step("rollback", ok, began, detail)

    def _restored(self) -> dict[str, int] | None:
        weights = self.live.zone.weights()
        return weights if weights.get(naming.AWS_SET_ID) == 0 else None

    # ------------------------------------------------------------------ the end

    def _stop(self) -> None:
        """Stop the traffic and the live parts; replication catches up."""
        self.steps.enter("stopping the load; replication catches up")
        self.phases[-1].end = time.monotonic()
        self.live.stop_traffic()
        self.live.stop()
        self.aws_side.stop()  # its last second of metrics is flushed
        began = time.monotonic()
        self.catch_up_seconds = round(self.replication.wait_caught_up(), 3)
        self.steps.step("catch up", True, began, "target replayed all the source's WAL")


def phase_windows(phases: list[Phase]) -> list[tuple[str, int, float, float]]:
    """(name, aws weight, start, end) of each closed phase."""
    return [(p.name, p.aws_weight, p.start, p.end) for p in phases if p.end is not None]
