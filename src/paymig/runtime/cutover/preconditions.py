"""What must hold before a cutover begins; every failure is named in the refusal.

* ``phase``: the live Route 53 weights send 100% to AWS and the audit trail agrees;
* every gate of the controller passes (:mod:`paymig.runtime.controller.gates`: alarms,
  armed rollback, CDC latency, validation, rollback hold), with the dwell at 100% set
  to ``cutover.dwell_minutes``;
* ``fresh-validation``: the latest validation is consistent, was checked after traffic
  reached 100% and is younger than ``cutover.validation_max_age_minutes``: the one that
  let the shift to 100 pass proves nothing about the writes taken since.

A resumed cutover does not check them again: once the source is fenced the CDC alarm
may fire by design (nothing is written any more), and stopping half-way is worse than
finishing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from paymig.config import CutoverConfig
from paymig.runtime.controller.actions import gather_facts
from paymig.runtime.controller.aws import CallerIdentity, ControllerAws
from paymig.runtime.controller.core import (
    CLOCK_SKEW_SECONDS,
    ControllerSettings,
    Weights,
    parse_time,
)
from paymig.runtime.controller.gates import Gate, evaluate_gates
from paymig.runtime.controller.replay import live_phase_entered_at, phase_from_events, reconcile

FULL = 100


def _phase_problem(live: Weights, recorded: int) -> str | None:
    if live.aws_percent != FULL:
        return f"precondition phase failed: live weights are {live.describe()}, not aws 100"
    if recorded != FULL:
        return f"precondition phase failed: the audit trail's phase is {recorded}%, not 100%"
    return None


def _fresh_validation_problem(
    validation: dict[str, Any] | None, entered: datetime | None, now: datetime, minutes: int
) -> str | None:
    label = "precondition fresh-validation failed"
    if not validation or validation.get("status") != "consistent":
        status = (validation or {}).get("status", "none")
        return f"{label}: the latest validation is {status}, not consistent"
    checked = parse_time(validation.get("checked_at"))
    if checked is None:
        return f"{label}: the latest validation has no valid checked_at"
    skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
    if entered is None or checked <= entered + skew:
        since = entered.isoformat() if entered else "an unknown time"
        return (
            f"{label}: the latest validation ({checked.isoformat()}) is not newer than "
            f"traffic reaching 100% ({since}); run `paymig validate --record`"
        )
    if now - checked > timedelta(minutes=minutes):
        return f"{label}: the latest validation ({checked.isoformat()}) is older than {minutes} min"
    return None


def cutover_problems(
    aws: ControllerAws,
    settings: ControllerSettings,
    cutover: CutoverConfig,
    now: datetime,
    identity: CallerIdentity | None,
) -> tuple[list[str], list[Gate]]:
    """Every unmet precondition of a cutover (empty: go), and the gates evaluated."""
    records = aws.route53.read()
    history = aws.audit.events()
    state = reconcile(phase_from_events(history, settings.initial_phase), history, records.weights)
    entered = live_phase_entered_at(state, records.weights)
    problems = [p for p in [_phase_problem(records.weights, state.phase)] if p]
    dwell = {**settings.dwell_minutes, FULL: cutover.dwell_minutes}
    facts = gather_facts(aws, settings, now, entered_at=entered, history=history, identity=identity)
    gates = evaluate_gates(
        replace(settings, dwell_minutes=dwell), facts, records.weights.aws_percent
    )
    problems += [f"gate {g.name} failed: {g.detail}" for g in gates if not g.ok]
    fresh = _fresh_validation_problem(
        dict(facts.validation) if facts.validation else None,
        entered,
        now,
        cutover.validation_max_age_minutes,
    )
    if fresh:
        problems.append(fresh)
    return problems, gates
