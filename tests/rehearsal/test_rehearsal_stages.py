"""The fault after cutover waits for the composite to be OK before it cuts the path.

A composite alarm already in ALARM has no transition left to notify, so a fault injected
then would reach no rollback Lambda: a fresh-clone run saw the cutover's own 503s trip
5xx-rate 1.8 s before the fault, and the rehearsal waited 180 s for a run that could not
come. Fakes stand in for the migration: what is asserted is the order of the calls.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from paymig.errors import PaymigError
from paymig.rehearsal.stages import CutoverPath


class Calls:
    """Records every call made on the fakes, in order."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, name: str, result: Any = None) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.made.append(name)
            return result

        return record


def test_the_fault_after_cutover_waits_for_the_composite_to_be_ok_before_cutting() -> None:
    calls = Calls()

    def no_run(*args: Any) -> Any:
        calls.made.append("wait for the Lambda")
        raise PaymigError("not within 180 s")

    migration = SimpleNamespace(
        steps=SimpleNamespace(enter=calls("enter"), step=calls("step")),
        live=SimpleNamespace(zone=SimpleNamespace(weights=lambda: {"aws": 100}), wait_for=no_run),
        timeline=SimpleNamespace(event=calls("event")),
        wait_recovery=calls("wait until the composite is OK"),
        rollback_outcome=calls("rollback outcome"),
    )
    path = SimpleNamespace(cut=calls("cut"), restore=calls("restore"))
    stages = CutoverPath(cast(Any, migration), cast(Any, None), cast(Any, path))
    assert stages._fault_after_cutover() is False
    assert calls.made == [
        "enter", "wait until the composite is OK", "cut", "event", "wait for the Lambda",
        "restore", "step",
    ]  # fmt: skip
