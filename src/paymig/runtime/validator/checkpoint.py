"""A pass's checkpoint in a local file, for `paymig validate --checkpoint PATH --resume`.

The file holds JSON lines, appended and flushed to disk one at a time:

* ``{"kind": "plan", ...}``: the pass's plan (its tables' key ranges), written first;
* ``{"kind": "batch", "session": ..., "results": [...]}``: one batch's range results;
* ``{"kind": "resumed", "session": ...}``: a resume started;
* ``{"kind": "finished", "session": ..., "consistent": ...}``: the pass completed.

A crash can at worst leave the last line cut short; reading ignores (and truncates) an
incomplete last line, so what was recorded before stays recorded. Each process writes
under its own ``session`` id, which shows which run compared which ranges.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paymig.runtime.validator.passes import PassPlan, RangeResult, trim_keys
from paymig.runtime.validator.report import Report
from paymig.runtime.validator.side import ValidatorError


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FileCheckpoint:
    """The plan and range results of one pass, in a JSON-lines file."""

    def __init__(self, path: Path, cap: int) -> None:
        """Use ``path``; keep at most ``cap`` keys per kind and batch (counts stay exact)."""
        self.path = path
        self.cap = cap
        self.session = uuid.uuid4().hex[:8]

    # ------------------------------------------------------------------ reading

    def records(self) -> list[dict[str, Any]]:
        """Every complete line of the file; an incomplete last line is cut off."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ValidatorError(f"checkpoint {self.path}: cannot read: {exc.strerror}") from None
        complete, _, tail = data.rpartition(b"\n")
        if tail:
            with self.path.open("r+b") as handle:  # a crash cut the last line short
                handle.truncate(len(complete) + 1 if complete else 0)
        out: list[dict[str, Any]] = []
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise ValidatorError(
                    f"checkpoint {self.path}: line {number} is not JSON (not a checkpoint?)"
                ) from None
        return out

    def _unfinished(self, records: list[dict[str, Any]]) -> PassPlan | None:
        if not records or records[0].get("kind") != "plan":
            return None
        if any(r.get("kind") == "finished" for r in records):
            return None
        return PassPlan.from_json(records[0]["plan"])

    # ------------------------------------------------------------------ Checkpoint

    def start(self, plan: PassPlan) -> None:
        """Start the file with a new pass's plan; refuse to overwrite an unfinished pass."""
        records = self.records()
        if records and (records[0].get("kind") != "plan"):
            raise ValidatorError(f"checkpoint {self.path}: not a paymig checkpoint; not touched")
        unfinished = self._unfinished(records)
        if unfinished is not None:
            raise ValidatorError(
                f"checkpoint {self.path}: holds unfinished pass {unfinished.pass_id}; "
                "continue it with --resume, or delete the file to start again"
            )
        line = {"kind": "plan", "session": self.session, "at": _now(), "plan": plan.to_json()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(line) + "\n", encoding="utf-8")
        partial.replace(self.path)

    def resume(self) -> tuple[PassPlan, list[RangeResult]]:
        """The unfinished pass and its recorded results; record that it resumes."""
        records = self.records()
        plan = self._unfinished(records)
        if plan is None:
            state = "holds no unfinished pass" if records else "does not exist or is empty"
            raise ValidatorError(f"checkpoint {self.path}: {state}; nothing to resume")
        results: dict[tuple[str, int], RangeResult] = {}
        for record in records:
            if record.get("kind") != "batch":
                continue
            for item in record["results"]:
                result = RangeResult.from_json(
                    str(item["table"]), int(item["index"]), self.cap, item["result"]
                )
                results.setdefault((result.table, result.index), result)
        self._append({"kind": "resumed", "session": self.session, "at": _now()})
        return plan, list(results.values())

    def commit(self, results: Sequence[RangeResult]) -> None:
        """Append one batch's results and flush them to disk."""
        trim_keys(results, self.cap)
        items = [{"table": r.table, "index": r.index, "result": r.to_json()} for r in results]
        self._append({"kind": "batch", "session": self.session, "at": _now(), "results": items})

    def finish(self, report: Report) -> None:
        """Mark the pass complete."""
        self._append(
            {
                "kind": "finished",
                "session": self.session,
                "at": _now(),
                "consistent": report.consistent,
            }
        )

    def _append(self, record: dict[str, Any]) -> None:
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise ValidatorError(f"checkpoint {self.path}: cannot write: {exc.strerror}") from None
