"""The validation job's checkpoint: full passes, their slices and progress, in the audit table.

Items (audit table key schema ``pk``/``sk``, see :mod:`paymig.naming`):

* a **pass**: ``pk="PASS"``, ``sk=<pass id>`` (ids sort by start time); ``status``
  (``running`` | ``finished``), ``started_at``, ``finished_at``, ``verdict``,
  ``tables`` (JSON: table, estimate, ranges), ``slices_total``, and the progress
  counters ``ranges_total``, ``ranges_done``, ``source_rows``, ``target_rows``,
  ``missing``, ``extra``, ``different``, ``last_error``;
* a **slice**: ``pk="PASS#<pass id>"``, ``sk="SLICE#<number>"``; ``table``, ``first``,
  ``count``, ``rows_per_range``, ``ranges`` (JSON) and ``results``, a map from range
  index to that range's result (JSON).

A batch is committed in one ``TransactWriteItems``: its results go into the slice's map
on the condition that none of them is there yet, and the pass's counters grow by ADD.
So a range counts exactly once even when an invocation is retried while an earlier one
still runs ("Using IAM with DynamoDB transactions": the permissions are those of
``UpdateItem``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY
from paymig.runtime.validator.passes import (
    PassPlan,
    PassTotals,
    RangeResult,
    SliceSpec,
    range_from_json,
    range_to_json,
    trim_keys,
)
from paymig.runtime.validator.plan import KeyRange
from paymig.runtime.validator.side import ValidatorError

#: Partition key of the pass items (a pass of the validator, not a password).
PASS_PK = "PASS"  # noqa: S105
STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
#: JSON bytes of differing keys one slice item keeps (the counts are always exact).
SLICE_KEY_BYTES = 120_000

_COUNTERS = ("ranges_done", "source_rows", "target_rows", "missing", "extra", "different")
_DESERIALIZER = TypeDeserializer()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers as int)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        plain = _DESERIALIZER.deserialize(value)
        out[name] = int(plain) if isinstance(plain, Decimal) else plain
    return out


@dataclass(frozen=True)
class StoredSlice:
    """A slice as stored: its ranges by index and the results recorded so far."""

    spec: SliceSpec
    rows_per_range: int
    ranges: dict[int, KeyRange]
    results: dict[int, RangeResult]

    @property
    def pending(self) -> dict[int, KeyRange]:
        """The ranges of the slice not compared yet."""
        return {i: r for i, r in self.ranges.items() if i not in self.results}


class PassStore:
    """Full passes of the validation job in the audit table."""

    def __init__(self, client: Any, table_name: str, cap: int) -> None:
        """Wrap a DynamoDB client; keep at most ``cap`` keys per kind and slice."""
        self.client = client
        self.table = table_name
        self.cap = cap

    # ------------------------------------------------------------------ passes

    def latest(self) -> dict[str, Any] | None:
        """The most recently started pass, or None."""
        page = self.client.query(
            TableName=self.table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": AUDIT_PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": PASS_PK}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return _plain(items[0]) if items else None

    def get(self, pass_id: str) -> dict[str, Any]:
        """One pass; an error naming it when it does not exist."""
        item = self.client.get_item(
            TableName=self.table, Key=self._pass_key(pass_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            raise ValidatorError(f"validation pass {pass_id}: not in the audit table")
        return _plain(item)

    def create(self, plan: PassPlan, slices: Sequence[SliceSpec]) -> None:
        """Store a new pass: its slices first, then the pass item that points at them."""
        for spec in slices:
            table = plan.table(spec.table)
            ranges = [range_to_json(table.ranges[i]) for i in spec.indexes]
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._slice_key(plan.pass_id, spec.number),
                    "table": {"S": spec.table},
                    "first": {"N": str(spec.first)},
                    "count": {"N": str(spec.count)},
                    "rows_per_range": {"N": str(table.rows_per_range)},
                    "ranges": {"S": json.dumps(ranges)},
                    "results": {"M": {}},
                },
            )
        tables = [
            {"table": t.table, "estimate": t.estimate, "ranges": len(t.ranges)} for t in plan.tables
        ]
        self.client.put_item(
            TableName=self.table,
            Item={
                **self._pass_key(plan.pass_id),
                "pass_id": {"S": plan.pass_id},
                "status": {"S": STATUS_RUNNING},
                "started_at": {"S": plan.started_at},
                "updated_at": {"S": _now()},
                "tables": {"S": json.dumps(tables)},
                "slices_total": {"N": str(len(slices))},
                "ranges_total": {"N": str(plan.ranges_total)},
                **{name: {"N": "0"} for name in _COUNTERS},
            },
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": AUDIT_PARTITION_KEY},
        )

    def totals(self, item: Mapping[str, Any]) -> PassTotals:
        """The progress counters of a pass item."""
        return PassTotals(
            ranges_total=int(item["ranges_total"]),
            **{name: int(item.get(name, 0)) for name in _COUNTERS},
        )

    def finish(self, pass_id: str, verdict: str, summary: str) -> None:
        """Mark a running pass finished with its verdict (once)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._pass_key(pass_id),
                UpdateExpression="SET #st = :done, #v = :v, #s = :s, #t = :t",
                ConditionExpression="#st = :running",
                ExpressionAttributeNames={
                    "#st": "status",
                    "#v": "verdict",
                    "#s": "summary",
                    "#t": "finished_at",
                },
                ExpressionAttributeValues={
                    ":done": {"S": STATUS_FINISHED},
                    ":running": {"S": STATUS_RUNNING},
                    ":v": {"S": verdict},
                    ":s": {"S": summary},
                    ":t": {"S": _now()},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def note_error(self, pass_id: str, message: str) -> None:
        """Record why the job stopped; the pass stays resumable."""
        self.client.update_item(
            TableName=self.table,
            Key=self._pass_key(pass_id),
            UpdateExpression="SET #e = :e, #t = :t",
            ExpressionAttributeNames={"#e": "last_error", "#t": "updated_at"},
            ExpressionAttributeValues={":e": {"S": message[:1000]}, ":t": {"S": _now()}},
        )

    # ------------------------------------------------------------------ slices

    def load_slice(self, pass_id: str, number: int) -> StoredSlice:
        """One slice with its recorded results."""
        item = self.client.get_item(
            TableName=self.table, Key=self._slice_key(pass_id, number), ConsistentRead=True
        ).get("Item")
        if item is None:
            raise ValidatorError(f"validation pass {pass_id}: slice {number} not found")
        return self._slice(_plain(item), number)

    def slices(self, pass_id: str) -> list[StoredSlice]:
        """Every slice of a pass, in order."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": AUDIT_PARTITION_KEY},
            "ExpressionAttributeValues": {":pk": {"S": f"{PASS_PK}#{pass_id}"}},
            "ConsistentRead": True,
        }
        out: list[StoredSlice] = []
        while True:
            page = self.client.query(**kwargs)
            for raw in page.get("Items", []):
                item = _plain(raw)
                out.append(self._slice(item, int(str(item[AUDIT_SORT_KEY]).split("#")[1])))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _slice(self, item: Mapping[str, Any], number: int) -> StoredSlice:
        spec = SliceSpec(number, str(item["table"]), int(item["first"]), int(item["count"]))
        bounds = [range_from_json(r) for r in json.loads(str(item["ranges"]))]
        results = {
            int(index): RangeResult.from_json(spec.table, int(index), self.cap, json.loads(text))
            for index, text in dict(item.get("results", {})).items()
        }
        return StoredSlice(
            spec, int(item["rows_per_range"]), dict(zip(spec.indexes, bounds, strict=True)), results
        )

    def commit(self, pass_id: str, number: int, results: Sequence[RangeResult]) -> int:
        """Record a batch of one slice exactly once; return how many ranges were new."""
        fresh = list(results)
        for _ in range(3):
            if not fresh:
                return 0
            try:
                self._transact(pass_id, number, fresh)
                return len(fresh)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
            recorded = self.load_slice(pass_id, number).results
            fresh = [r for r in fresh if r.index not in recorded]
        raise ValidatorError(f"validation pass {pass_id}: slice {number}: commit kept conflicting")

    def _transact(self, pass_id: str, number: int, results: Sequence[RangeResult]) -> None:
        trim_keys(results, self.cap, SLICE_KEY_BYTES)
        names = {"#res": "results", **{f"#r{i}": str(r.index) for i, r in enumerate(results)}}
        values = {f":r{i}": {"S": json.dumps(r.to_json())} for i, r in enumerate(results)}
        added = PassTotals(0).plus(results)
        counters = {name: getattr(added, name) for name in _COUNTERS}
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._slice_key(pass_id, number),
                        "UpdateExpression": "SET "
                        + ", ".join(f"#res.#r{i} = :r{i}" for i in range(len(results))),
                        "ConditionExpression": " AND ".join(
                            f"attribute_not_exists(#res.#r{i})" for i in range(len(results))
                        ),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._pass_key(pass_id),
                        # every name a placeholder: DynamoDB reserves words like MISSING
                        "UpdateExpression": "ADD "
                        + ", ".join(f"#c{i} :c{i}" for i in range(len(_COUNTERS)))
                        + " SET #t = :t",
                        "ExpressionAttributeNames": {
                            **{f"#c{i}": name for i, name in enumerate(_COUNTERS)},
                            "#t": "updated_at",
                        },
                        "ExpressionAttributeValues": {
                            **{f":c{i}": {"N": str(counters[n])} for i, n in enumerate(_COUNTERS)},
                            ":t": {"S": _now()},
                        },
                    }
                },
            ]
        )

    # ------------------------------------------------------------------ keys

    def _pass_key(self, pass_id: str) -> dict[str, Any]:
        return {AUDIT_PARTITION_KEY: {"S": PASS_PK}, AUDIT_SORT_KEY: {"S": pass_id}}

    def _slice_key(self, pass_id: str, number: int) -> dict[str, Any]:
        return {
            AUDIT_PARTITION_KEY: {"S": f"{PASS_PK}#{pass_id}"},
            AUDIT_SORT_KEY: {"S": f"SLICE#{number:06d}"},
        }
