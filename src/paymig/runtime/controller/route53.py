"""Route 53: the weighted records of the API name, their changes, and their health.

A token bucket keeps the controller under Route 53's five API requests per second per
account ("Quotas on Route 53 API requests"); every call is one bounded attempt, retried
on throttling and connection errors until the caller's deadline (:mod:`.calls`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from paymig.naming import AWS_SET_ID, LEGACY_SET_ID
from paymig.runtime.controller.calls import AWS_ERRORS, AwsCallError, Retrier, describe_error
from paymig.runtime.controller.core import ChangeNotInSyncError, Weights

#: Route 53 allows five API requests per second per account.
ROUTE53_REQUESTS_PER_SECOND = 5.0
#: Both weighted records are A records ("Values specific for weighted records": one type
#: per weighted set; the `aws` record is an alias A record).
RECORD_TYPE = "A"
#: "How Route 53 determines whether a health check is healthy": healthy when more than
#: 18% of the health checkers report it healthy.
HEALTHY_CHECKER_SHARE = 0.18
#: Reads (records, changes' status, health) without a caller's deadline retry this long.
READ_WINDOW_SECONDS = 30.0


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


@dataclass(frozen=True)
class CheckHealth:
    """One record's health as Route 53 sees it; `healthy` None: not readable."""

    healthy: bool | None
    detail: str


class Route53Weights:
    """Read and change the weights of the API name's `legacy` and `aws` records."""

    def __init__(
        self,
        client: Any,
        hosted_zone_id: str,
        record_name: str,
        *,
        bucket: TokenBucket = ROUTE53_BUCKET,
        retrier: Retrier | None = None,
        poll_interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap a Route 53 client made with one attempt per call (this class retries)."""
        self.client = client
        self.zone_id = hosted_zone_id.removeprefix("/hostedzone/")
        self.record_name = _normalise(record_name)
        self.bucket = bucket
        self.retrier = retrier or Retrier(sleep=sleep, clock=clock)
        self.poll_interval = poll_interval
        self._sleep, self._clock = sleep, clock

    @property
    def retries(self) -> int:
        """Retries made so far (throttling, connection errors)."""
        return self.retrier.retries

    def _deadline(self, deadline: float | None) -> float:
        """The caller's deadline, or the read window from now."""
        return self._clock() + READ_WINDOW_SECONDS if deadline is None else deadline

    def _call(self, operation: str, deadline: float, **kwargs: Any) -> Any:
        """Call under the rate limit, retried until `deadline` (monotonic)."""
        method = getattr(self.client, operation)
        return self.retrier.call(
            lambda: method(**kwargs), deadline=deadline, before=self.bucket.acquire
        )

    def _record_sets(self, deadline: float) -> Iterator[Mapping[str, Any]]:
        """The record sets named like the API record (paginated)."""
        kwargs: dict[str, Any] = {
            "HostedZoneId": self.zone_id,
            "StartRecordName": self.record_name,
            "StartRecordType": RECORD_TYPE,
        }
        while True:
            page = self._call("list_resource_record_sets", deadline, **kwargs)
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

    def read(self, deadline: float | None = None) -> WeightedRecords:
        """The `legacy` and `aws` weighted A records; a clear error if either is missing."""
        found = {
            r["SetIdentifier"]: r
            for r in self._record_sets(self._deadline(deadline))
            if r.get("Type") == RECORD_TYPE
            and r.get("SetIdentifier") in (LEGACY_SET_ID, AWS_SET_ID)
            and "Weight" in r
        }
        missing = [s for s in (LEGACY_SET_ID, AWS_SET_ID) if s not in found]
        if missing:
            raise AwsCallError(
                f"hosted zone {self.zone_id}: no weighted {RECORD_TYPE} record "
                f"{self.record_name} with set identifier {' or '.join(missing)}"
            )
        return WeightedRecords(legacy=found[LEGACY_SET_ID], aws=found[AWS_SET_ID])

    def change(
        self,
        records: WeightedRecords,
        weights: Weights,
        comment: str,
        deadline: float | None = None,
    ) -> str:
        """UPSERT both records with new weights, every other field kept; return the change id.

        Without a deadline: one attempt (a shift retries only after checking again).
        """
        changes = [
            {"Action": "UPSERT", "ResourceRecordSet": {**record, "Weight": weight}}
            for record, weight in ((records.legacy, weights.legacy), (records.aws, weights.aws))
        ]
        response = self._call(
            "change_resource_record_sets",
            self._clock() if deadline is None else deadline,
            HostedZoneId=self.zone_id,
            ChangeBatch={"Comment": comment[:256], "Changes": changes},
        )
        change_id: str = response["ChangeInfo"]["Id"]
        return change_id

    def wait_insync(self, change_id: str, timeout: float) -> float:
        """Poll until the change is INSYNC; return the seconds waited.

        Raises :class:`ChangeNotInSyncError` naming the change and its last status (or
        the error that kept it unknown) when `timeout` passes first.
        """
        start = self._clock()
        deadline = start + max(0.0, timeout)
        last = "unknown"
        while True:
            try:
                status = self._call("get_change", deadline, Id=change_id)["ChangeInfo"]["Status"]
            except AWS_ERRORS as exc:
                status, last = None, describe_error(exc)
            waited = self._clock() - start
            if status == "INSYNC":
                return waited
            last = status or last
            if self._clock() + self.poll_interval > deadline:
                raise ChangeNotInSyncError(
                    f"Route 53 change {change_id} still {last} after {waited:.0f} s "
                    f"(limit {timeout:g} s; submitted, it may still propagate)"
                )
            self._sleep(self.poll_interval)

    # ---- health

    def _status(self, check_id: str, deadline: float) -> bool:
        """Healthy when more than 18% of the checkers report success."""
        observations = self._call("get_health_check_status", deadline, HealthCheckId=check_id)[
            "HealthCheckObservations"
        ]
        if not observations:
            return True  # "a new health check ... is considered healthy" until measured
        ok = sum(
            str(o.get("StatusReport", {}).get("Status", "")).startswith("Success")
            for o in observations
        )
        return ok / len(observations) > HEALTHY_CHECKER_SHARE

    def check_health(self, check_id: str | None, deadline: float | None = None) -> CheckHealth:
        """The health of one record's health check (a calculated one from its children)."""
        # Imported here: the validation function packages this module without semantics.
        from paymig.semantics.route53_weighted import HealthCheckStatus, calculated_health

        deadline = self._deadline(deadline)
        if not check_id:
            return CheckHealth(True, "no health check (Route 53 treats it as healthy)")
        try:
            config = self._call("get_health_check", deadline, HealthCheckId=check_id)[
                "HealthCheck"
            ]["HealthCheckConfig"]
            flags = {
                "inverted": bool(config.get("Inverted")),
                "disabled": bool(config.get("Disabled")),
            }
            if config.get("Type") != "CALCULATED":
                healthy = HealthCheckStatus(self._status(check_id, deadline), **flags).healthy
                return CheckHealth(healthy, f"{check_id} {'healthy' if healthy else 'unhealthy'}")
            children = []
            for child in config.get("ChildHealthChecks", []):
                child_config = self._call("get_health_check", deadline, HealthCheckId=child)[
                    "HealthCheck"
                ]["HealthCheckConfig"]
                children.append(
                    HealthCheckStatus(
                        self._status(child, deadline),
                        inverted=bool(child_config.get("Inverted")),
                        disabled=bool(child_config.get("Disabled")),
                    )
                )
        except AWS_ERRORS as exc:
            return CheckHealth(None, f"{check_id}: {describe_error(exc)}")
        threshold = int(config.get("HealthThreshold", 0))
        healthy = calculated_health(children, threshold, **flags)
        up = sum(child.healthy for child in children)
        return CheckHealth(
            healthy,
            f"{check_id} {'healthy' if healthy else 'unhealthy'}: {up} of {len(children)} "
            f"addresses healthy, {threshold} needed",
        )
