"""The controller's thin boto3 shell: read and change AWS, nothing decided here.

One class per service concern. Every client uses botocore's `standard` retry mode
(exponential backoff with jitter on throttling and transient errors). Route 53 gets its
own layer on top: a token bucket keeps the controller under Route 53's 5 requests per
second, and `Throttling` / `PriorRequestNotComplete` are retried with full-jitter
backoff. boto3 honours `AWS_ENDPOINT_URL`, so the same code runs against moto.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from paymig.errors import PaymigError
from paymig.naming import (
    AUDIT_PARTITION_KEY,
    AUDIT_SORT_KEY,
    AWS_SET_ID,
    CDC_LATENCY_METRIC,
    CDC_LATENCY_NAMESPACE,
    DEPLOYMENT_ALIASES,
    HTTPS_LISTENER_PORT,
    LEGACY_SET_ID,
    TRAFFIC_METRIC_NAME,
    TRAFFIC_METRIC_NAMESPACE,
    alarm_names,
    alarm_topic_name,
    alb_name,
    audit_table_name,
    cdc_latency_dimensions,
    dms_task_identifier,
    target_group_name,
)
from paymig.runtime.controller.core import (
    VALIDATION_STATUSES,
    ChangeNotInSyncError,
    LockHeldError,
    RollbackSettings,
    Weights,
    backoff_delay,
    summarize_table_statistics,
)

#: Route 53 allows five API requests per second per account.
ROUTE53_REQUESTS_PER_SECOND = 5.0
#: Route 53 error codes worth retrying.
ROUTE53_RETRYABLE = frozenset({"Throttling", "ThrottlingException", "PriorRequestNotComplete"})

#: Partition key values of the audit table's item kinds.
EVENT_PK = "EVENT"
VALIDATION_PK = "VALIDATION"
LOCK_PK = "LOCK"
LOCK_SK = "controller"


class AwsCallError(PaymigError):
    """An AWS call failed; the message names the call and AWS's reason."""

    exit_code = 1


def describe_error(exc: Exception) -> str:
    """One line for a botocore error: the code and message, or the exception text."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def client_config(max_attempts: int = 5) -> Config:
    """Build the botocore config: standard retries (backoff with jitter) and bounded timeouts."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=20,
    )


def utc_timestamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds: sorts as it orders in time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- rate limit


class TokenBucket:
    """A token bucket: at most `rate` calls per second on average, bursts of `capacity`."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Start full."""
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate, self.capacity = rate, capacity
        self._clock, self._sleep = clock, sleep
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            self._stamp = self._clock()
            self._tokens = 0.0
            return wait


#: One bucket per process: every Route 53 caller shares the account's limit.
ROUTE53_BUCKET = TokenBucket(ROUTE53_REQUESTS_PER_SECOND, ROUTE53_REQUESTS_PER_SECOND)


# --------------------------------------------------------------------------- Route 53


def _normalise(name: str) -> str:
    """DNS name without the trailing dot, lower case."""
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class WeightedRecords:
    """The two weighted record sets as Route 53 returned them."""

    legacy: Mapping[str, Any]
    aws: Mapping[str, Any]

    @property
    def weights(self) -> Weights:
        """The live weights."""
        return Weights(legacy=int(self.legacy["Weight"]), aws=int(self.aws["Weight"]))


class Route53Weights:
    """Read and change the weights of the API name's `legacy` and `aws` records."""

    def __init__(
        self,
        client: Any,
        hosted_zone_id: str,
        record_name: str,
        *,
        bucket: TokenBucket = ROUTE53_BUCKET,
        max_attempts: int = 6,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        poll_interval: float = 2.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap a Route 53 client (created with retries off: this class retries)."""
        self.client = client
        self.zone_id = hosted_zone_id.removeprefix("/hostedzone/")
        self.record_name = _normalise(record_name)
        self.bucket = bucket
        self.max_attempts = max_attempts
        self.base_delay, self.max_delay = base_delay, max_delay
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep, self._clock = sleep, clock
        self.retries = 0

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """Call under the rate limit; retry throttling with full-jitter backoff."""
        for attempt in range(self.max_attempts):
            self.bucket.acquire()
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ROUTE53_RETRYABLE or attempt == self.max_attempts - 1:
                    raise
                self.retries += 1
                self._sleep(
                    backoff_delay(attempt, base=self.base_delay, cap=self.max_delay, rng=self.rng)
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_sets(self) -> Iterator[Mapping[str, Any]]:
        """The record sets named like the API record (paginated)."""
        kwargs: dict[str, Any] = {
            "HostedZoneId": self.zone_id,
            "StartRecordName": self.record_name,
        }
        while True:
            page = self._call("list_resource_record_sets", **kwargs)
            for record in page["ResourceRecordSets"]:
                if _normalise(record["Name"]) != self.record_name:
                    return
                yield record
            next_name = page.get("NextRecordName")
            if not page.get("IsTruncated") or _normalise(next_name or "") != self.record_name:
                return
            kwargs["StartRecordName"] = next_name
            kwargs["StartRecordType"] = page["NextRecordType"]
            if "NextRecordIdentifier" in page:
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def read(self) -> WeightedRecords:
        """The `legacy` and `aws` weighted records; a clear error if either is missing."""
        found = {
            r["SetIdentifier"]: r
            for r in self._record_sets()
            if r.get("SetIdentifier") in (LEGACY_SET_ID, AWS_SET_ID) and "Weight" in r
        }
        missing = [s for s in (LEGACY_SET_ID, AWS_SET_ID) if s not in found]
        if missing:
            raise AwsCallError(
                f"hosted zone {self.zone_id}: no weighted record {self.record_name} with set "
                f"identifier {' or '.join(missing)}"
            )
        return WeightedRecords(legacy=found[LEGACY_SET_ID], aws=found[AWS_SET_ID])

    def change(self, records: WeightedRecords, weights: Weights, comment: str) -> str:
        """UPSERT both records with new weights, every other field kept; return the change id."""
        changes = []
        for record, weight in ((records.legacy, weights.legacy), (records.aws, weights.aws)):
            changes.append({"Action": "UPSERT", "ResourceRecordSet": {**record, "Weight": weight}})
        response = self._call(
            "change_resource_record_sets",
            HostedZoneId=self.zone_id,
            ChangeBatch={"Comment": comment[:256], "Changes": changes},
        )
        change_id: str = response["ChangeInfo"]["Id"]
        return change_id

    def wait_insync(self, change_id: str, timeout: float) -> float:
        """Poll until the change is INSYNC; return the seconds waited.

        Raises :class:`ChangeNotInSyncError` naming the change and its last status when
        `timeout` passes first.
        """
        start = self._clock()
        while True:
            info = self._call("get_change", Id=change_id)["ChangeInfo"]
            status = info["Status"]
            waited = self._clock() - start
            if status == "INSYNC":
                return waited
            if waited >= timeout:
                raise ChangeNotInSyncError(
                    f"Route 53 change {change_id} still {status} after {timeout:g} s "
                    "(submitted; it may still propagate)"
                )
            self._sleep(min(self.poll_interval, max(0.0, timeout - waited)))


# --------------------------------------------------------------------------- ALB


class ListenerWeights:
    """Read and set the HTTPS listener's forward weights over the blue/green groups."""

    def __init__(self, client: Any, stack_name: str) -> None:
        """Wrap an ELBv2 client for the environment's load balancer."""
        self.client = client
        self.stack_name = stack_name
        self._listener_arn: str | None = None
        self._groups: dict[str, str] | None = None

    def listener_arn(self) -> str:
        """ARN of the load balancer's port-443 listener."""
        if self._listener_arn is None:
            name = alb_name(self.stack_name)
            try:
                lbs = self.client.describe_load_balancers(Names=[name])["LoadBalancers"]
            except ClientError as exc:
                raise AwsCallError(f"load balancer {name}: {describe_error(exc)}") from None
            listeners = self.client.describe_listeners(LoadBalancerArn=lbs[0]["LoadBalancerArn"])
            https = [li for li in listeners["Listeners"] if li.get("Port") == HTTPS_LISTENER_PORT]
            if not https:
                raise AwsCallError(f"load balancer {name} has no listener on port 443")
            self._listener_arn = str(https[0]["ListenerArn"])
        return self._listener_arn

    def target_groups(self) -> dict[str, str]:
        """Target group ARN of each alias."""
        if self._groups is None:
            names = {target_group_name(self.stack_name, a): a for a in DEPLOYMENT_ALIASES}
            try:
                found = self.client.describe_target_groups(Names=list(names))["TargetGroups"]
            except ClientError as exc:
                raise AwsCallError(
                    f"target groups {', '.join(names)}: {describe_error(exc)}"
                ) from None
            self._groups = {names[g["TargetGroupName"]]: g["TargetGroupArn"] for g in found}
        return self._groups

    def read(self) -> dict[str, int]:
        """Weight of each alias in the listener's default forward action (0 if absent)."""
        arn = self.listener_arn()
        listener = self.client.describe_listeners(ListenerArns=[arn])["Listeners"][0]
        by_arn = {v: k for k, v in self.target_groups().items()}
        weights = dict.fromkeys(DEPLOYMENT_ALIASES, 0)
        for action in listener.get("DefaultActions", []):
            if action.get("Type") != "forward":
                continue
            groups = action.get("ForwardConfig", {}).get("TargetGroups")
            if groups is None and action.get("TargetGroupArn"):
                groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
            for group in groups or []:
                alias = by_arn.get(group["TargetGroupArn"])
                if alias is not None:
                    weights[alias] = int(group.get("Weight", 1))
        return weights

    def set(self, weights: Mapping[str, int]) -> None:
        """Forward to the blue/green groups with `weights`."""
        groups = self.target_groups()
        self.client.modify_listener(
            ListenerArn=self.listener_arn(),
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": groups[alias], "Weight": weights[alias]}
                            for alias in DEPLOYMENT_ALIASES
                        ]
                    },
                }
            ],
        )


# --------------------------------------------------------------------------- CloudWatch


class Metrics:
    """Alarm states, the CDC latency, and the traffic-split metric."""

    def __init__(
        self, client: Any, stack_name: str, environment: str, dms: Any | None = None
    ) -> None:
        """Wrap a CloudWatch client (and a DMS client, for the task id) for one environment."""
        self.client = client
        self.stack_name = stack_name
        self.environment = environment
        self.dms = dms

    def dms_task_resource_id(self) -> str | None:
        """Resource id of the environment's DMS task (the last field of its ARN), if any."""
        if self.dms is None:
            return None
        response = self.dms.describe_replication_tasks(
            Filters=[
                {"Name": "replication-task-id", "Values": [dms_task_identifier(self.stack_name)]}
            ],
            WithoutSettings=True,
        )
        tasks = response.get("ReplicationTasks", [])
        if not tasks:
            return None
        return str(tasks[0]["ReplicationTaskArn"]).rsplit(":", 1)[-1]

    def alarm_states(self) -> dict[str, str]:
        """State of each of the environment's alarms that exists (metric and composite)."""
        response = self.client.describe_alarms(
            AlarmNames=list(alarm_names(self.stack_name)),
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
        states = {}
        for kind in ("MetricAlarms", "CompositeAlarms"):
            for alarm in response.get(kind, []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
        return states

    def publish_table_statistics(self) -> dict[str, float] | None:
        """Publish the task's per-table progress as `Paymig/Migration` metrics.

        Returns the published figures, or None when the task does not exist yet.
        """
        task_id = self.dms_task_resource_id()
        if task_id is None or self.dms is None:
            return None
        arn = self.dms.describe_replication_tasks(
            Filters=[
                {"Name": "replication-task-id", "Values": [dms_task_identifier(self.stack_name)]}
            ],
            WithoutSettings=True,
        )["ReplicationTasks"][0]["ReplicationTaskArn"]
        tables: list[dict[str, Any]] = []
        marker = None
        while True:
            kwargs: dict[str, Any] = {"ReplicationTaskArn": arn, "MaxRecords": 500}
            if marker:
                kwargs["Marker"] = marker
            page = self.dms.describe_table_statistics(**kwargs)
            tables.extend(page.get("TableStatistics", []))
            marker = page.get("Marker")
            if not marker:
                break
        figures = summarize_table_statistics(tables)
        self.client.put_metric_data(
            Namespace=TRAFFIC_METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": self.environment}],
                    "Value": value,
                    "Unit": "Percent" if name.endswith("Percent") else "Count",
                }
                for name, value in figures.items()
            ],
        )
        return figures

    def cdc_latency(self, now: datetime, lookback_seconds: int) -> tuple[float, datetime] | None:
        """Latest per-minute maximum of CDCLatencyTarget in the window, or None.

        None also when the task does not exist: a gate that cannot be read fails.
        """
        task_id = self.dms_task_resource_id()
        if task_id is None:
            return None
        response = self.client.get_metric_statistics(
            Namespace=CDC_LATENCY_NAMESPACE,
            MetricName=CDC_LATENCY_METRIC,
            Dimensions=[
                {"Name": k, "Value": v}
                for k, v in cdc_latency_dimensions(self.stack_name, task_id).items()
            ],
            StartTime=now - timedelta(seconds=lookback_seconds),
            EndTime=now + timedelta(seconds=60),
            Period=60,
            Statistics=["Maximum"],
        )
        points = response.get("Datapoints", [])
        if not points:
            return None
        latest = max(points, key=lambda p: p["Timestamp"])
        return float(latest["Maximum"]), latest["Timestamp"]

    def publish_weights(self, weights: Weights) -> None:
        """Publish the live split as `Paymig/Migration` `TrafficWeight` per set identifier."""
        self.client.put_metric_data(
            Namespace=TRAFFIC_METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": TRAFFIC_METRIC_NAME,
                    "Dimensions": [
                        {"Name": "Environment", "Value": self.environment},
                        {"Name": "SetIdentifier", "Value": set_id},
                    ],
                    "Value": float(weight),
                    "Unit": "Percent",
                }
                for set_id, weight in ((LEGACY_SET_ID, weights.legacy), (AWS_SET_ID, weights.aws))
            ],
        )


# --------------------------------------------------------------------------- DynamoDB

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
    """The audit table: events, validation results and the controller lock.

    Key schema: `pk` (S, partition) and `sk` (S, sort). Items:

    * events: `pk="EVENT"`, `sk="<UTC ISO time>#<uuid>"`; attributes `at`, `actor`,
      `action`, `source`, `from_phase`, `to_phase`, `reason`, `result`, `detail`,
      `forced`, `weights_before`, `weights_after`, `change_id`;
    * validations: `pk="VALIDATION"`, `sk="<UTC ISO time>#<uuid>"`; the validator's
      result dict (`status`, `checked_at`, `summary`, anything else);
    * the lock: `pk="LOCK"`, `sk="controller"`; `token`, `holder`, `action`,
      `acquired_at`, `expires_at` (epoch seconds).
    """

    def __init__(self, client: Any, table_name: str) -> None:
        """Wrap a DynamoDB client and the table's name."""
        self.client = client
        self.table = table_name

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
        moment = now or datetime.now(UTC)
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


# --------------------------------------------------------------------------- SNS, STS


class Notifier:
    """Publishes the controller's notifications to the alarm topic."""

    #: Message attribute that marks the controller's own messages, so the rollback
    #: Lambda's subscription can filter them out (and the handler ignores them anyway).
    SOURCE_ATTRIBUTE = "paymig_source"

    def __init__(self, client: Any, topic_arn: str) -> None:
        """Wrap an SNS client and the topic ARN."""
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, subject: str, message: Mapping[str, Any], source: str) -> str:
        """Publish a JSON message; return the message id."""
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, default=str, indent=1),
            MessageAttributes={
                self.SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source}
            },
        )
        message_id: str = response["MessageId"]
        return message_id


@dataclass(frozen=True)
class CallerIdentity:
    """Who is calling AWS."""

    arn: str
    account: str

    @property
    def partition(self) -> str:
        """The ARN partition (`aws`, `aws-cn`, ...)."""
        return self.arn.split(":")[1]


# --------------------------------------------------------------------------- wiring


@dataclass
class ControllerAws:
    """Every AWS face the controller uses, for one environment."""

    route53: Route53Weights
    listener: ListenerWeights
    metrics: Metrics
    audit: AuditTrail
    sts: Any
    sns: Any
    region: str
    stack_name: str

    @classmethod
    def connect(
        cls, settings: RollbackSettings, session: boto3.Session | None = None
    ) -> ControllerAws:
        """Create the clients from a boto3 session (the default one if not given)."""
        session = session or boto3.Session()
        config = client_config()
        route53 = session.client("route53", config=client_config(max_attempts=1))
        stack = settings.stack_name
        region = session.region_name or "us-east-1"
        return cls(
            route53=Route53Weights(route53, settings.hosted_zone_id, settings.record_name),
            listener=ListenerWeights(session.client("elbv2", config=config), stack),
            metrics=Metrics(
                session.client("cloudwatch", config=config),
                stack,
                settings.environment,
                dms=session.client("dms", config=config),
            ),
            audit=AuditTrail(session.client("dynamodb", config=config), audit_table_name(stack)),
            sts=session.client("sts", config=config),
            sns=session.client("sns", config=config),
            region=region,
            stack_name=stack,
        )

    def identity(self) -> CallerIdentity:
        """The caller's identity (recorded as `actor`)."""
        response = self.sts.get_caller_identity()
        return CallerIdentity(arn=response["Arn"], account=response["Account"])

    def notifier(self, identity: CallerIdentity) -> Notifier:
        """The alarm topic's notifier; its ARN is derived from the caller's account."""
        arn = (
            f"arn:{identity.partition}:sns:{self.region}:{identity.account}:"
            f"{alarm_topic_name(self.stack_name)}"
        )
        return Notifier(self.sns, arn)


#: What a failed AWS call raises.
AWS_ERRORS = (BotoCoreError, ClientError)
#: The same, plus this shell's own clear-message error.
SHELL_ERRORS = (BotoCoreError, ClientError, AwsCallError)


def guarded(what: str, call: Callable[[], Any]) -> Any:
    """Run an AWS call; turn a botocore failure into one clear line naming `what`."""
    try:
        return call()
    except AWS_ERRORS as exc:
        raise AwsCallError(f"{what}: {describe_error(exc)}") from None
