"""The migration phase and the rollback hold, rebuilt from the audit trail.

Each event that changed the weights, or checked them on purpose (a rollback that found
them rolled back, a forced shift that recorded the live phase), says which phase it left
them at (`phase_after`). The replay takes the last one. Against the live weights it
reconciles one known gap: a rollback that recorded its intent but not its outcome (the
record failed or the function died) while the weights are rolled back. Every other
disagreement stays drift, which refuses shifts until someone records the live phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paymig.runtime.controller.core import (
    APPLIED_RESULTS,
    RESULT_REFUSED,
    RESULT_STARTED,
    ROLLED_BACK,
    Weights,
    parse_time,
)

#: Audit event actions.
ACTION_SHIFT = "shift"
ACTION_ROLLBACK = "rollback"
ACTION_ACK = "ack"


@dataclass(frozen=True)
class PhaseState:
    """The phase as rebuilt from the audit trail."""

    phase: int
    entered_at: datetime | None
    unconfirmed: bool = False
    #: Set when the live weights decided what the trail left open.
    reconciled: str | None = None


def phase_after(event: Mapping[str, Any]) -> int | None:
    """The phase an event left the weights at, or None if it says nothing about them."""
    if "phase_after" in event:
        value = event["phase_after"]
        return value if isinstance(value, int) else None
    # Events written before `phase_after` existed: applied results moved to `to_phase`.
    to_phase = event.get("to_phase")
    if event.get("result") in APPLIED_RESULTS and isinstance(to_phase, int):
        return to_phase
    return None


def phase_from_events(events: Iterable[Mapping[str, Any]], initial_phase: int) -> PhaseState:
    """Rebuild the phase from audit events in chronological order.

    `entered_at` is when the phase last changed to its current value.
    """
    state = PhaseState(phase=initial_phase, entered_at=None)
    for event in events:
        phase = phase_after(event)
        if phase is None:
            continue
        entered = state.entered_at if phase == state.phase else parse_time(event.get("at"))
        state = PhaseState(
            phase=phase, entered_at=entered, unconfirmed=event.get("result") == "unconfirmed"
        )
    return state


def reconcile(state: PhaseState, events: Sequence[Mapping[str, Any]], live: Weights) -> PhaseState:
    """The replayed phase, corrected by the live weights where the trail is incomplete.

    When the weights are rolled back and the last rollback intent is newer than every
    event that set the phase, that rollback happened: phase 0 since its intent.
    """
    if live.aws_percent == state.phase or live != ROLLED_BACK:
        return state
    last_setting = max((i for i, e in enumerate(events) if phase_after(e) is not None), default=-1)
    intents = [
        e
        for e in events[last_setting + 1 :]
        if e.get("action") == ACTION_ROLLBACK and e.get("result") == RESULT_STARTED
    ]
    if not intents:
        return state
    intent = intents[-1]
    at = parse_time(intent.get("at"))
    return PhaseState(
        phase=0,
        entered_at=at,
        reconciled=(
            f"the rollback started at {intent.get('at')} recorded no outcome; the live "
            f"weights are {live.describe()}, so it went through"
        ),
    )


def live_phase_entered_at(state: PhaseState, live: Weights) -> datetime | None:
    """When the live phase was entered, as far as the trail knows; None if it does not.

    The recorded entry time belongs to the recorded phase only: for other live weights
    it says nothing (a dwell gate must not count a different phase's time).
    """
    return state.entered_at if live.aws_percent == state.phase else None


# --------------------------------------------------------------------------- hold


@dataclass(frozen=True)
class RollbackHold:
    """The latest rollback and what has happened since: an ack, by whom and why."""

    rollback_at: datetime
    rollback: Mapping[str, Any]
    ack_at: datetime | None = None
    ack: Mapping[str, Any] | None = None

    def describe(self) -> str:
        """One line: the rollback and its acknowledgement."""
        trigger = self.rollback.get("trigger") or {}
        why = trigger.get("alarm") or self.rollback.get("reason", "")
        line = (
            f"rollback at {self.rollback_at.isoformat()} ({self.rollback.get('source', '?')}, "
            f"{self.rollback.get('result', '?')}: {why})"
        )
        if self.ack is not None and self.ack_at is not None:
            line += (
                f"; acknowledged at {self.ack_at.isoformat()} by {self.ack.get('actor', '?')}: "
                f"{self.ack.get('reason', '')}"
            )
        return line


def hold_from_events(events: Iterable[Mapping[str, Any]]) -> RollbackHold | None:
    """The latest rollback (any outcome but refused) and the latest ack after it."""
    hold: RollbackHold | None = None
    for event in events:
        action, at = event.get("action"), parse_time(event.get("at"))
        if at is None:
            continue
        if action == ACTION_ROLLBACK and event.get("result") != RESULT_REFUSED:
            hold = RollbackHold(rollback_at=at, rollback=event)
        elif action == ACTION_ACK and hold is not None:
            hold = RollbackHold(hold.rollback_at, hold.rollback, ack_at=at, ack=event)
    return hold
