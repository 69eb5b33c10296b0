"""Where a cutover or fallback stands, kept in the audit table so that a re-run resumes.

Two kinds of item, next to the stage item (``pk="STAGE"``):

* ``sk="progress"``: the operation under way (``cutover`` or ``fallback``), who started
  it and why, every step done with its figures (``steps``) and what later steps need
  (``data``: the marker id, the fence time, sequence values...). It exists from the
  first step until the operation's audit event is written, then it is deleted.
* ``sk="fence#source"`` / ``sk="fence#aurora"``: the grants a fence revoked on that
  database, written *before* the revoke (a crash between the two loses nothing) and
  deleted once an unfence has given them back. They outlive the operation: the
  cutover's fence of the source is undone by a later fallback.

Only the holder of the controller's lock writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY
from paymig.runtime.controller.stage import STAGE_PK, Operation
from paymig.runtime.cutover.database import Grant

PROGRESS_SK = "progress"


def fence_key(server: str) -> str:
    """Sort key of the fence item of ``server`` (``source`` or ``aurora``)."""
    return f"fence#{server}"


@dataclass
class Progress:
    """One operation's progress: the steps done, in order, and the data they left."""

    operation: Operation
    run_id: str
    started_at: str
    actor: str
    reason: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def done(self, step: str) -> bool:
        """Whether ``step`` was completed (by this run or an earlier, interrupted one)."""
        return any(s["step"] == step for s in self.steps)

    @property
    def last_step(self) -> str | None:
        """The latest step done, or None before the first."""
        return self.steps[-1]["step"] if self.steps else None

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored and as `status --format json` shows it."""
        return {
            "operation": self.operation,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "actor": self.actor,
            "reason": self.reason,
            "steps": self.steps,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        """The stored JSON back to a record."""
        return cls(
            operation=data["operation"],
            run_id=data["run_id"],
            started_at=data["started_at"],
            actor=data["actor"],
            reason=data["reason"],
            steps=list(data.get("steps", [])),
            data=dict(data.get("data", {})),
        )


class ProgressStore:
    """Read and write the progress and fence items of the audit table."""

    def __init__(self, client: Any, table_name: str) -> None:
        """A DynamoDB client and the audit table's name."""
        self.client = client
        self.table = table_name

    def _key(self, sk: str) -> dict[str, Any]:
        return {AUDIT_PARTITION_KEY: {"S": STAGE_PK}, AUDIT_SORT_KEY: {"S": sk}}

    def _get(self, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(sk), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        loaded: dict[str, Any] = json.loads(item["document"]["S"])
        return loaded

    def _put(self, sk: str, document: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={**self._key(sk), "document": {"S": json.dumps(document, default=str)}},
        )

    def read(self) -> Progress | None:
        """The operation under way, or None."""
        found = self._get(PROGRESS_SK)
        return Progress.from_dict(found) if found else None

    def save(self, progress: Progress) -> None:
        """Store the progress as it is now."""
        self._put(PROGRESS_SK, progress.as_dict())

    def clear(self) -> None:
        """Delete the progress (the operation ended and was recorded)."""
        self.client.delete_item(TableName=self.table, Key=self._key(PROGRESS_SK))

    def fenced(self, server: str) -> list[Grant]:
        """The grants a fence of ``server`` revoked and no unfence has given back yet."""
        found = self._get(fence_key(server))
        return [Grant(**g) for g in (found or {}).get("grants", [])]

    def add_fenced(self, server: str, grants: Iterable[Grant]) -> list[Grant]:
        """Add ``grants`` to what ``server``'s fence holds; return the whole set."""
        merged = sorted(
            set(self.fenced(server)) | set(grants), key=lambda g: (g.role, g.table, g.privilege)
        )
        self._put(
            fence_key(server),
            {"grants": [{"role": g.role, "table": g.table, "privilege": g.privilege}
                        for g in merged]},
        )  # fmt: skip
        return merged

    def clear_fenced(self, server: str) -> None:
        """Forget ``server``'s fence (it was undone)."""
        self.client.delete_item(TableName=self.table, Key=self._key(fence_key(server)))
