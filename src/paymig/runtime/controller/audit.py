"""The audit table: events, validation results, acknowledgements' events and the lock.

Key schema: `pk` (S, partition) and `sk` (S, sort). Items:

* events: `pk="EVENT"`, `sk="<UTC ISO time>#<uuid>"`; attributes `at`, `actor`,
  `action` (shift, rollback, ack), `source`, `from_phase`, `to_phase`, `phase_after`,
  `reason`, `result`, `detail`, `forced`, `steps`, `weights_before`, `weights_after`,
  `listener_before`, `listener_after`, `answer`, `change_id`, `failed_gates`, `trigger`,
  `preempted`;
* validations: `pk="VALIDATION"`, `sk="<UTC ISO time>#<uuid>"`; the validator's
  result dict (`status`, `checked_at`, `summary`, anything else);
* the lock: `pk="LOCK"`, `sk="controller"`; `token`, `holder`, `action`,
  `acquired_at`, `expires_at` (epoch seconds).

Times come from the caller's clock, which the shell corrects to AWS's (:mod:`.clock`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from paymig.errors import PaymigError
from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY
from paymig.runtime.controller.core import VALIDATION_STATUSES, LockHeldError, utc_now

#: Partition key values of the audit table's item kinds.
EVENT_PK = "EVENT"
VALIDATION_PK = "VALIDATION"
LOCK_PK = "LOCK"
LOCK_SK = "controller"


def utc_timestamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds: sorts as it orders in time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Python values to a DynamoDB item (floats become Decimals via a JSON round trip)."""
    plain = json.loads(json.dumps(data, default=str), parse_float=Decimal)
    return {k: _SERIALIZER.serialize(v) for k, v in plain.items() if v is not None}


def _plain(value: Any) -> Any:
    """Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item to plain Python values, without the key attributes."""
    data = {k: _plain(_DESERIALIZER.deserialize(v)) for k, v in item.items()}
    data.pop(AUDIT_PARTITION_KEY, None)
    data.pop(AUDIT_SORT_KEY, None)
    return data


@dataclass(frozen=True)
class LockLease:
    """A held controller lock."""

    token: str
    holder: str
    action: str
    expires_at: int
    preempted: Mapping[str, Any] | None = None


class AuditTrail:
    """The audit table (see the module's docstring for its items)."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], datetime] = utc_now
    ) -> None:
        """Wrap a DynamoDB client and the table's name; `clock` dates validations."""
        self.client = client
        self.table = table_name
        self.clock = clock

    # ---- events

    def record_event(self, event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Append an event (never overwrites: the sort key is unique); return it."""
        at = utc_timestamp(now)
        stored = {**event, "at": at}
        item = _to_item(
            {AUDIT_PARTITION_KEY: EVENT_PK, AUDIT_SORT_KEY: f"{at}#{uuid.uuid4()}", **stored}
        )
        self.client.put_item(
            TableName=self.table,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": AUDIT_PARTITION_KEY},
        )
        return stored

    def _query(self, pk: str, *, newest_first: bool, limit: int | None) -> list[dict[str, Any]]:
        """Items of one kind in time order, paginated."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": AUDIT_PARTITION_KEY},
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            page = self.client.query(**kwargs)
            items.extend(_from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first."""
        return self._query(EVENT_PK, newest_first=False, limit=None)

    # ---- validation results

    def record_validation(self, result: Mapping[str, Any], now: datetime | None = None) -> None:
        """Store a validation result: `status` (consistent|inconsistent|error) required.

        `checked_at` (ISO 8601) defaults to now; `summary` (str) and any other
        JSON-serialisable keys are kept as given.
        """
        status = result.get("status")
        if status not in VALIDATION_STATUSES:
            raise PaymigError(
                f"validation result: status must be one of {', '.join(VALIDATION_STATUSES)}, "
                f"got {status!r}"
            )
        moment = now or self.clock()
        data = {"checked_at": utc_timestamp(moment), **result}
        item = _to_item(
            {
                AUDIT_PARTITION_KEY: VALIDATION_PK,
                AUDIT_SORT_KEY: f"{utc_timestamp(moment)}#{uuid.uuid4()}",
                **data,
            }
        )
        self.client.put_item(TableName=self.table, Item=item)

    def latest_validation(self) -> dict[str, Any] | None:
        """The most recently recorded validation result, or None."""
        found = self._query(VALIDATION_PK, newest_first=True, limit=1)
        return found[0] if found else None

    # ---- lock

    def _lock_key(self) -> dict[str, Any]:
        """Key of the lock item."""
        return {AUDIT_PARTITION_KEY: {"S": LOCK_PK}, AUDIT_SORT_KEY: {"S": LOCK_SK}}

    def current_lock(self) -> dict[str, Any] | None:
        """The lock item, if any (it may have expired)."""
        item = self.client.get_item(
            TableName=self.table, Key=self._lock_key(), ConsistentRead=True
        ).get("Item")
        return _from_item(item) if item else None

    def _lock_item(self, token: str, holder: str, action: str, now: datetime, ttl: int) -> Any:
        """The lock item to write."""
        expires = int(now.timestamp()) + ttl
        item = {
            **self._lock_key(),
            **_to_item(
                {
                    "token": token,
                    "holder": holder,
                    "action": action,
                    "acquired_at": utc_timestamp(now),
                    "expires_at": expires,
                }
            ),
        }
        return item, expires

    def acquire_lock(self, holder: str, action: str, now: datetime, ttl: int) -> LockLease:
        """Take the lock if free or expired; else raise :class:`LockHeldError`."""
        token = str(uuid.uuid4())
        item, expires = self._lock_item(token, holder, action, now, ttl)
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk) OR #exp < :now",
                ExpressionAttributeNames={"#pk": AUDIT_PARTITION_KEY, "#exp": "expires_at"},
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            held = self.current_lock() or {}
            raise LockHeldError(
                [
                    f"another controller holds the lock: {held.get('holder', '?')} "
                    f"({held.get('action', '?')}) since {held.get('acquired_at', '?')}; "
                    "try again when it has finished"
                ]
            ) from None
        return LockLease(token=token, holder=holder, action=action, expires_at=expires)

    def take_over_lock(self, holder: str, action: str, now: datetime, ttl: int) -> LockLease:
        """Take the lock whoever holds it (rollback has priority); report whom it preempted."""
        token = str(uuid.uuid4())
        item, expires = self._lock_item(token, holder, action, now, ttl)
        old = self.client.put_item(TableName=self.table, Item=item, ReturnValues="ALL_OLD")
        previous = _from_item(old["Attributes"]) if old.get("Attributes") else None
        if previous is not None and int(previous.get("expires_at", 0)) < int(now.timestamp()):
            previous = None  # an expired lock preempts nobody
        return LockLease(token, holder, action, expires, preempted=previous)

    def confirm_lock(self, lease: LockLease, now: datetime, ttl: int) -> bool:
        """Extend the lease if still ours; False if another controller took it over."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._lock_key(),
                UpdateExpression="SET #exp = :exp",
                ConditionExpression="#tok = :tok",
                ExpressionAttributeNames={"#exp": "expires_at", "#tok": "token"},
                ExpressionAttributeValues={
                    ":exp": {"N": str(int(now.timestamp()) + ttl)},
                    ":tok": {"S": lease.token},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_lock(self, lease: LockLease) -> bool:
        """Delete the lock if still ours; False if it was taken over meanwhile."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._lock_key(),
                ConditionExpression="#tok = :tok",
                ExpressionAttributeNames={"#tok": "token"},
                ExpressionAttributeValues={":tok": {"S": lease.token}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
