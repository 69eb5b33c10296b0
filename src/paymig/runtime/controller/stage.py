"""The migration's stage at run time, kept in the audit table: where the writes are.

Stages, in order: ``replicating`` (writes on the source, no traffic on AWS),
``shifting`` (writes on the source, some traffic on AWS: the phases), ``cut-over``
(writes on Aurora, the way back open through reverse replication) and ``complete``
(the migration finished; nothing replicates any more).

Only what cannot be read elsewhere is stored: which database takes the writes and
whether the migration is complete. ``replicating`` and ``shifting`` differ only by the
live phase, which Route 53 holds, so they are never stored (two copies could disagree).
The item is ``pk="STAGE"``, ``sk="current"`` with ``stage`` (``replicating``,
``cut-over`` or ``complete``), ``operation`` (``cutover`` or ``fallback`` while one is
under way: from its first database step until it ends), ``since``, ``actor``,
``reason`` and ``version``. Every
transition is a conditional write on the version read, so two operators racing to cut
over cannot both succeed. A missing item means ``replicating`` (nothing was cut over).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from paymig.errors import PaymigError
from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY

#: Every stage, in migration order.
Stage = Literal["replicating", "shifting", "cut-over", "complete"]
STAGES: tuple[Stage, ...] = ("replicating", "shifting", "cut-over", "complete")
#: The stages the audit table stores (``shifting`` is ``replicating`` with a phase > 0).
StoredStage = Literal["replicating", "cut-over", "complete"]
STORED_STAGES: tuple[StoredStage, ...] = ("replicating", "cut-over", "complete")

#: A write move under way: its database steps have begun and it has not ended.
Operation = Literal["cutover", "fallback"]
OPERATIONS: tuple[Operation, ...] = ("cutover", "fallback")

STAGE_PK = "STAGE"
STAGE_SK = "current"


class StageConflictError(PaymigError):
    """The stage changed since it was read (another operator acted): nothing was written."""


@dataclass(frozen=True)
class StageRecord:
    """The stored stage and who set it; ``version`` 0 when nothing was ever stored."""

    stored: StoredStage
    operation: Operation | None = None
    since: str | None = None
    actor: str | None = None
    reason: str | None = None
    version: int = 0

    @property
    def writes_on(self) -> Literal["source", "aurora"] | None:
        """Which database takes the writes (None once complete: only Aurora is left)."""
        if self.stored == "replicating":
            return "source"
        return "aurora" if self.stored == "cut-over" else None

    @property
    def traffic_may_return_to_legacy(self) -> bool:
        """Whether moving traffic to legacy keeps every payment on a database that writes.

        Only while the source takes the writes and no cutover or fallback is moving them:
        once a fence has begun, legacy would answer from a database that may be fenced
        or behind, so an alarm must not route traffic there by itself.
        """
        return self.stored == "replicating" and self.operation is None

    def stage(self, phase: int | None) -> Stage:
        """The stage with the live phase: ``shifting`` while some traffic is on AWS."""
        if self.stored == "replicating" and phase:
            return "shifting"
        return self.stored

    def as_dict(self) -> dict[str, Any]:
        """For `status --format json` and audit events."""
        return {
            "stage": self.stored,
            "operation": self.operation,
            "since": self.since,
            "actor": self.actor,
            "reason": self.reason,
            "version": self.version,
        }


def parse_stage_item(item: Mapping[str, Any] | None) -> StageRecord:
    """A DynamoDB item (low-level attribute values) to a record; absent is replicating."""
    if not item:
        return StageRecord("replicating")
    stored = item.get("stage", {}).get("S")
    if stored not in STORED_STAGES:
        raise PaymigError(
            f"audit table: stage item holds {stored!r}, not one of {', '.join(STORED_STAGES)}"
        )
    operation = item.get("operation", {}).get("S")
    if operation is not None and operation not in OPERATIONS:
        raise PaymigError(
            f"audit table: stage item's operation is {operation!r}, "
            f"not one of {', '.join(OPERATIONS)}"
        )
    text = {key: item[key]["S"] for key in ("since", "actor", "reason") if key in item}
    return StageRecord(
        stored=stored,
        operation=operation,
        since=text.get("since"),
        actor=text.get("actor"),
        reason=text.get("reason"),
        version=int(item.get("version", {}).get("N", "0")),
    )


class StageStore:
    """Read and move the stored stage (one item of the audit table)."""

    def __init__(self, client: Any, table_name: str) -> None:
        """A DynamoDB client and the audit table's name."""
        self.client = client
        self.table = table_name

    def _key(self) -> dict[str, Any]:
        return {AUDIT_PARTITION_KEY: {"S": STAGE_PK}, AUDIT_SORT_KEY: {"S": STAGE_SK}}

    def read(self) -> StageRecord:
        """The stored stage, read consistently."""
        response = self.client.get_item(TableName=self.table, Key=self._key(), ConsistentRead=True)
        return parse_stage_item(response.get("Item"))

    def move(
        self,
        expected: StageRecord,
        to: StoredStage,
        *,
        operation: Operation | None = None,
        now: datetime,
        actor: str,
        reason: str,
    ) -> StageRecord:
        """Store ``to`` and ``operation`` if the stage is still ``expected`` (by version).

        ``operation`` is None when no cutover or fallback is under way. Returns the new
        record. Raises :class:`StageConflictError` when someone else moved it in between.
        """
        since = now.isoformat()
        new = StageRecord(to, operation, since, actor, reason, expected.version + 1)
        if expected.version:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected.version)}},
            }
        else:
            condition = {
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": AUDIT_PARTITION_KEY},
            }
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(),
                    "stage": {"S": to},
                    **({"operation": {"S": operation}} if operation else {}),
                    "since": {"S": since},
                    "actor": {"S": actor},
                    "reason": {"S": reason},
                    "version": {"N": str(new.version)},
                },
                **condition,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self.read()
            raise StageConflictError(
                f"stage: expected {expected.stored} (version {expected.version}) but it is "
                f"{current.stored} (version {current.version}, set by {current.actor} at "
                f"{current.since}); nothing was changed"
            ) from None
        return new
