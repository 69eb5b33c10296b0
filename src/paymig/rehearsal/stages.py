"""The rest of the migration after the first fault: to 100 %, cutover, fallback, cutover, finish.

After the automatic rollback (:mod:`paymig.rehearsal.migration`) the rehearsal does what
an operator would: a fresh validation and `paymig ack`, the shifts to 100 % through the
controller, a validation after 100 %, then `paymig cutover`'s own code
(:mod:`paymig.rehearsal.switches`). A fault then hits the AWS side's path to Aurora: the
alarms fire, the composite's notification reaches the rollback Lambda, and the stage's
rule (`cut-over`: notify) must leave the weights where they are. Then `paymig fallback`
(writes and traffic back on-prem), and the same way to a second cutover. The load keeps
writing through all of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from paymig import naming
from paymig.config import PaymigConfig
from paymig.errors import PaymigError
from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal.delivery import Delivery
from paymig.rehearsal.live import LiveMigration
from paymig.rehearsal.switches import Switches
from paymig.rehearsal.timeline import Timeline

#: Seconds a phase holds on the way back to 100 % (its share was measured in round one).
QUICK_HOLD_SECONDS = 2.0
#: Seconds of writes on the new database after a switch before the next step.
AFTER_SWITCH_SECONDS = 5.0
#: Longest wait from the fault after cutover to the rollback Lambda's run.
HELD_TIMEOUT_SECONDS = 180.0
#: The audit action of an alarm that the stage kept from moving traffic.
HELD_ACTION = "alarm-after-cutover"


class StepsLike(Protocol):
    """How a stage reports (the rehearsal)."""

    def enter(self, name: str) -> None:
        """A step starts."""

    def step(self, name: str, ok: bool, began: float, detail: str) -> None:
        """A step ended."""

    def validate_live(self) -> bool:
        """Validate while the load runs; True when consistent."""


class Driver(Protocol):
    """What the stages use of the migration (:class:`paymig.rehearsal.migration.Migration`)."""

    config: PaymigConfig
    steps: StepsLike
    live: LiveMigration
    timeline: Timeline
    repaired_at: float | None

    def ttl(self) -> float:
        """The clients' DNS cache time."""

    def next_phase(
        self, name: str, weight: int, at: float | None = None, since: float | None = None
    ) -> None:
        """A new traffic phase begins; the weights began to move at ``since``."""

    def rollback_outcome(self, since: float | None = None) -> Delivery | None:
        """The rollback function's run since ``since``, or None while none finished."""

    def wait_recovery(self) -> None:
        """Wait until the composite is OK again."""


@dataclass
class HeldAlarm:
    """The fault after cutover: what the rollback Lambda did, and what stayed."""

    fault_at: float
    lambda_at: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    weights_before: dict[str, int] = field(default_factory=dict)
    weights_after: dict[str, int] = field(default_factory=dict)
    audit_event: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "lambda_seconds_after_fault": (
                None if self.lambda_at is None else round(self.lambda_at - self.fault_at, 3)
            ),
            "result": self.result.get("result"),
            "detail": self.result.get("detail"),
            "weights_before": self.weights_before,
            "weights_after": self.weights_after,
            "audit_action": (self.audit_event or {}).get("action"),
            "audit_result": (self.audit_event or {}).get("result"),
            "advice": (self.audit_event or {}).get("advice"),
        }

    @property
    def ok(self) -> bool:
        """Traffic stayed, the alarm was recorded as held and people were notified."""
        event = self.audit_event or {}
        return (
            self.weights_after == self.weights_before
            and event.get("action") == HELD_ACTION
            and event.get("result") == "notified"
        )


@dataclass
class CutoverPath:
    """Drives the stages after the first rollback."""

    migration: Driver
    switches: Switches
    aurora_path: TcpProxy
    held: HeldAlarm | None = None

    def run(self) -> bool:
        """Every stage in order; False at the first that failed (already reported)."""
        m = self.migration
        m.timeline.event("stage", "replicating")
        if not (self._to_full() and self._switch("cutover")):
            return False
        if not self._fault_after_cutover():
            return False
        began = time.monotonic()
        if not self._switch("fallback"):
            return False
        m.next_phase("fallback", 0, since=began)  # its last step moves the weights
        time.sleep(m.ttl() + 1.0)
        return self._to_full() and self._switch("cutover") and self._finish()

    def _finish(self) -> bool:
        """`paymig finish`'s own code: a validation after the cutover, then stage complete.

        The config switch it leads to (``migration.stage: finished``, a plan of removals
        only, refused by Terraform until the stage is complete) is not applied here; it is
        tested with real Terraform against the emulator in tests/test_finish_guard.py.
        """
        from paymig.runtime.cutover.finish import FinishSettings, finish

        m = self.migration
        if not m.steps.validate_live():
            return False
        aws, _ = self._controller()
        m.steps.enter("finish (paymig finish: cut-over held, every check passing)")
        began = time.monotonic()
        try:
            done = finish(aws, FinishSettings.from_config(m.config), reason="paymig rehearse")
        except PaymigError as error:
            m.steps.step("finish", False, began, str(error))
            return False
        m.timeline.event("stage", "complete")
        m.steps.step("finish", True, began, f"{done.result}: {done.detail}")
        return True

    # ------------------------------------------------------------------ traffic

    def _controller(self) -> tuple[Any, Any]:
        from paymig.runtime.controller.aws import ControllerAws
        from paymig.runtime.controller.core import ControllerSettings

        settings = ControllerSettings.from_config(self.migration.config)
        return ControllerAws.connect(settings.rollback, self.migration.live.parts.session), settings

    def _to_full(self) -> bool:
        """Validate, ack the rollback, shift 10 -> 50 -> 100, validate after 100."""
        from paymig.runtime.controller import actions

        m = self.migration
        if not m.steps.validate_live():
            return False
        aws, settings = self._controller()
        m.steps.enter("ack (a person looked at the rollback)")
        began = time.monotonic()
        try:
            acked = actions.ack(aws, settings, reason="paymig rehearse: fault understood")
        except PaymigError as error:
            m.steps.step("ack", False, began, str(error))
            return False
        m.steps.step("ack", True, began, str(acked.get("detail", acked)))
        for target in (10, 50, 100):
            m.steps.enter(f"shift to {target}% (controller)")
            began = time.monotonic()
            try:
                outcome = actions.shift(aws, settings, target=target, source="rehearsal",
                                        reason=f"paymig rehearse: phase {target}%")  # fmt: skip
            except PaymigError as error:
                m.steps.step(f"shift-{target}", False, began, str(error))
                return False
            m.next_phase(f"{target}%", target, since=began)
            m.steps.step(f"shift-{target}", True, began, outcome.detail)
            time.sleep(QUICK_HOLD_SECONDS)
        # Every client's cached answer now names the AWS side.
        time.sleep(m.ttl() + 1.0)
        return m.steps.validate_live()

    # ------------------------------------------------------------------ switches

    def _switch(self, operation: str) -> bool:
        m = self.migration
        m.steps.enter(f"{operation} (paymig {operation}: fence, drain, sequences, switch)")
        began = time.monotonic()
        try:
            done = self.switches.run(
                "cutover" if operation == "cutover" else "fallback",
                f"paymig rehearse: {operation}",
            )
        except PaymigError as error:
            m.steps.step(operation, False, began, str(error))
            return False
        m.timeline.event("stage", "cut-over" if operation == "cutover" else "replicating")
        m.steps.step(operation, True, began, f"{done.result}: {done.detail}")
        time.sleep(AFTER_SWITCH_SECONDS)  # the window ends at the first write acked after it
        return True

    # ------------------------------------------------------------------ the held alarm

    def _fault_after_cutover(self) -> bool:
        """Cut the path to Aurora; the alarm must notify and leave the weights."""
        m = self.migration
        m.steps.enter("fault after cutover: the path to Aurora is cut; the stage's rule decides")
        # A composite still in ALARM sends no new notification, and the switch's own 503s
        # can trip 5xx-rate: the fault waits until it is OK (the transitions table shows it).
        m.wait_recovery()
        fault_at = time.monotonic()
        held = HeldAlarm(fault_at, weights_before=m.live.zone.weights())
        self.held = held
        self.aurora_path.cut()
        m.timeline.event("fault", "the Aurora path stand-in resets every connection", fault_at)
        try:
            delivery = m.live.wait_for(
                "the rollback Lambda's run after the fault after cutover",
                lambda: m.rollback_outcome(fault_at),
                HELD_TIMEOUT_SECONDS,
            )
        except PaymigError as error:
            self.aurora_path.restore()
            m.steps.step("alarm after cutover", False, fault_at, str(error))
            return False
        invocation = delivery.invocation
        held.lambda_at = invocation.finished if invocation else None
        held.result = dict((invocation.result if invocation else None) or {})
        time.sleep(1.0)  # a wrongly moved weight would show in Route 53 by now
        held.weights_after = m.live.zone.weights()
        held.audit_event = self._held_event()
        m.repaired_at = time.monotonic()
        self.aurora_path.restore()
        m.timeline.event("repaired", "", m.repaired_at)
        m.wait_recovery()
        detail = (
            f"rollback Lambda: {held.result.get('result')}: {held.result.get('detail')}; "
            f"weights {held.weights_before} -> {held.weights_after}; audit "
            f"{(held.audit_event or {}).get('action')}"
        )
        m.steps.step("alarm after cutover", held.ok, fault_at, detail)
        return held.ok

    def _held_event(self) -> dict[str, Any] | None:
        """The newest audit event of a held alarm (recorded by the rollback Lambda)."""
        from paymig.runtime.controller.audit import AuditTrail

        session = self.migration.live.parts.session
        audit = AuditTrail(
            session.client("dynamodb"), naming.audit_table_name(self.migration.config.stack_name)
        )
        held = [e for e in audit.events() if e.get("action") == HELD_ACTION]
        return held[-1] if held else None  # the newest: a switch's own 503s may have held one
