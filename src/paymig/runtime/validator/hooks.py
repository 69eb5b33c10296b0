"""What a caller hands the validator: where progress goes, where the pass is recorded.

:class:`paymig.runtime.validator.engine.Validator` calls a :class:`Progress` as tables
advance and a :class:`Checkpoint` at a pass's start, after each batch and at its end;
:class:`paymig.runtime.validator.checkpoint.FileCheckpoint` is the checkpoint of
``paymig validate --checkpoint``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from paymig.runtime.validator.passes import PassPlan, RangeResult
from paymig.runtime.validator.report import Report


class Progress(Protocol):
    """Receives progress of a pass, one table at a time."""

    def start(self, table: str, ranges: int) -> None:
        """Note that a table's comparison starts, cut into ``ranges`` top-level ranges."""

    def advance(self, table: str, ranges: int) -> None:
        """Note that ``ranges`` more top-level ranges are fully compared."""

    def finish(self, table: str) -> None:
        """Note that the table is done."""


class Checkpoint(Protocol):
    """Where a pass records its plan and its range results, so that it can resume."""

    def start(self, plan: PassPlan) -> None:
        """Record a new pass's plan, before any range is compared."""

    def resume(self) -> tuple[PassPlan, list[RangeResult]]:
        """The unfinished pass and the results recorded so far (an error if none)."""

    def commit(self, results: Sequence[RangeResult]) -> None:
        """Record one batch's results."""

    def finish(self, report: Report) -> None:
        """Record that the pass is complete, with its report."""
