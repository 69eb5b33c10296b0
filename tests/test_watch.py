"""`paymig watch`'s decision per poll, from what it read (no AWS, no database).

The loop around it, with the real fallback, runs in tests/test_cutover.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paymig.config import AutomationConfig
from paymig.runtime.controller.core import CompositeNow
from paymig.runtime.controller.stage import StageRecord
from paymig.runtime.cutover.watch import Verdict, verdict

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
CUT_OVER = StageRecord("cut-over", since="2026-12-02T11:00:00Z", actor="ops", version=3)


def _alarm(state: str, seconds_ago: float | None) -> CompositeNow:
    at = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return CompositeNow(state=state, updated_at=at)


@pytest.mark.parametrize(
    ("stage", "composite", "expected"),
    [
        (
            CUT_OVER,
            _alarm("ALARM", 120),
            Verdict("fallback", "composite alarm in ALARM since 2026-12-02T11:58:00+00:00 (120 s)"),
        ),
        (
            CUT_OVER,
            _alarm("ALARM", 119),
            Verdict(
                "wait",
                "composite alarm in ALARM since 2026-12-02T11:58:01+00:00 (119 s of 120 s)",
            ),
        ),
        (CUT_OVER, _alarm("OK", 5000), Verdict("wait", "stage cut-over, composite alarm OK")),
        (
            CUT_OVER,
            _alarm("INSUFFICIENT_DATA", 5000),
            Verdict("wait", "stage cut-over, composite alarm INSUFFICIENT_DATA"),
        ),
        (
            CUT_OVER,
            _alarm("ALARM", None),
            Verdict("wait", "composite alarm in ALARM, but since when is not known"),
        ),
        (
            CUT_OVER,
            None,
            Verdict("wait", "the composite alarm does not exist: nothing to act on"),
        ),
        (
            StageRecord("cut-over", "fallback", since="2026-12-02T11:59:00Z", actor="ops"),
            _alarm("ALARM", 600),
            Verdict(
                "wait",
                "a fallback is under way (since 2026-12-02T11:59:00Z, by ops): "
                "`paymig fallback` resumes it",
            ),
        ),
        (
            StageRecord("replicating", "cutover", since="2026-12-02T11:59:00Z", actor="ops"),
            _alarm("ALARM", 600),
            Verdict(
                "wait",
                "a cutover is under way (since 2026-12-02T11:59:00Z, by ops): "
                "`paymig cutover` resumes it",
            ),
        ),
        (
            StageRecord("replicating"),
            _alarm("ALARM", 600),
            Verdict("end", "stage is replicating: the writes are not on aurora"),
        ),
        (
            StageRecord("complete"),
            _alarm("ALARM", 600),
            Verdict("end", "stage is complete: the writes are not on aurora"),
        ),
    ],
)
def test_only_a_cut_over_stage_with_the_composite_held_in_alarm_falls_back(
    stage: StageRecord, composite: CompositeNow | None, expected: Verdict
) -> None:
    assert verdict(stage, composite, NOW, hold_seconds=120) == expected


def test_the_default_after_cutover_is_notify_and_fallback_waits_two_minutes() -> None:
    defaults = AutomationConfig()
    assert (defaults.after_cutover, defaults.fallback_alarm_seconds) == ("notify", 120)
