"""Which record of a weighted record set Route 53 answers with, and calculated health.

Sources: Amazon Route 53 Developer Guide (https://docs.aws.amazon.com/Route53/latest/
DeveloperGuide/): "Weighted routing" (routing-policy-weighted.html): a record gets
weight / sum of weights of the traffic; "Values specific for weighted records"
(resource-record-sets-values-weighted.html): weights 0..255, all weights 0 route with
equal probability; "How Amazon Route 53 chooses records when health checking is
configured" (health-checks-how-route-53-chooses-records.html): records without a health
check are always healthy, zero-weight records are considered only when every record
with a weight above 0 is unhealthy, and when no record is healthy all are considered
healthy; alias records with Evaluate Target Health take the target's health, and "if you
associate a health check with an alias record and also select Yes for Evaluate Target
Health, both must evaluate to true". Calculated health checks: "Values that you specify
when you create or update health checks" (health-checks-creating-values.html) and the
Route 53 API's HealthCheckConfig (HealthThreshold 0..256, at most 256 children,
Inverted, Disabled).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from paymig.errors import PaymigError

#: "Enter an integer between 0 and 255."
MAX_WEIGHT = 255
#: ResourceRecordSet.Weight: "a maximum of 100 weighted resource record sets that have
#: the same values for the Name and Type elements".
MAX_WEIGHTED_RECORDS = 100
#: HealthCheckConfig: ChildHealthChecks has at most 256 entries; HealthThreshold 0..256.
MAX_CHILD_HEALTH_CHECKS = 256


class InvalidRecordSetError(PaymigError):
    """A weighted record set or health check Route 53 would reject."""


@dataclass(frozen=True)
class WeightedRecord:
    """One weighted record of a group with the same name and type.

    ``health_check_healthy`` is the status of the associated health check, or None when
    the record has none. ``target_healthy`` is the alias target's health, needed when
    ``evaluate_target_health`` is set.
    """

    set_identifier: str
    weight: int
    health_check_healthy: bool | None = None
    evaluate_target_health: bool = False
    target_healthy: bool | None = None

    @property
    def healthy(self) -> bool:
        """Healthy as Route 53 considers the record on its own."""
        checked = self.health_check_healthy is not False  # no health check: healthy
        if self.evaluate_target_health:
            return checked and bool(self.target_healthy)
        return checked


def answer_distribution(records: Sequence[WeightedRecord]) -> dict[str, Fraction]:
    """The probability with which Route 53 answers a query with each record.

    Every record appears; a record Route 53 does not answer with has probability 0.
    """
    _validate(records)
    candidates = _candidates(records)
    total = sum(record.weight for record in candidates)
    shares: dict[str, Fraction] = dict.fromkeys(
        (record.set_identifier for record in records), Fraction(0)
    )
    for record in candidates:
        # All-zero candidates: "traffic is routed to all resources with equal probability".
        share = Fraction(record.weight, total) if total else Fraction(1, len(candidates))
        shares[record.set_identifier] = share
    return shares


def choose(records: Sequence[WeightedRecord], rng: random.Random) -> str:
    """The set identifier of the record one DNS answer uses, drawn with ``rng``."""
    distribution = answer_distribution(records)
    identifiers = [name for name, share in distribution.items() if share > 0]
    return rng.choices(identifiers, weights=[distribution[name] for name in identifiers])[0]


def _candidates(records: Sequence[WeightedRecord]) -> list[WeightedRecord]:
    """The records Route 53 picks among, by weight.

    First the healthy records with a weight above 0; if there are none, the healthy
    zero-weight records; if no record is healthy, all records are considered healthy and
    the weights decide again (a zero weight then gets no share unless all weights are 0).
    """
    nonzero = [record for record in records if record.weight > 0]
    healthy_nonzero = [record for record in nonzero if record.healthy]
    if healthy_nonzero:
        return healthy_nonzero
    healthy_zero = [record for record in records if record.weight == 0 and record.healthy]
    if healthy_zero:
        return healthy_zero
    return list(records)


def _validate(records: Sequence[WeightedRecord]) -> None:
    """The documented limits of a weighted group."""
    if not records:
        raise InvalidRecordSetError("records: a weighted group needs at least one record")
    if len(records) > MAX_WEIGHTED_RECORDS:
        raise InvalidRecordSetError(
            f"records: {len(records)} weighted records, at most {MAX_WEIGHTED_RECORDS}"
        )
    seen: set[str] = set()
    for record in records:
        where = f"record {record.set_identifier!r}"
        if record.set_identifier in seen:
            raise InvalidRecordSetError(f"{where}: the set identifier is used twice")
        seen.add(record.set_identifier)
        if not 0 <= record.weight <= MAX_WEIGHT:
            raise InvalidRecordSetError(f"{where}: weight {record.weight} is not in 0..255")
        if record.evaluate_target_health and record.target_healthy is None:
            raise InvalidRecordSetError(
                f"{where}: evaluate_target_health needs the alias target's health"
            )


# ---------------------------------------------------------------------------- health checks


@dataclass(frozen=True)
class HealthCheckStatus:
    """A health check's own status and the two settings that change how it reports.

    ``measured`` None means a new health check without enough data yet, which Route 53
    considers healthy (unhealthy when inverted). A disabled health check is considered
    healthy; inverting it makes it unhealthy ("Disabled", "Invert health check status").
    """

    measured: bool | None
    inverted: bool = False
    disabled: bool = False

    @property
    def healthy(self) -> bool:
        """The status Route 53 reports for this health check."""
        status = True if self.disabled or self.measured is None else self.measured
        return not status if self.inverted else status


def calculated_health(
    children: Sequence[HealthCheckStatus],
    health_threshold: int,
    *,
    inverted: bool = False,
    disabled: bool = False,
) -> bool:
    """A calculated (parent) health check: healthy when at least threshold children are.

    "If you specify a number greater than the number of health checks ... Route 53
    always considers this health check to be unhealthy"; "if you specify 0, Route 53
    always considers this health check to be healthy".
    """
    if len(children) > MAX_CHILD_HEALTH_CHECKS:
        raise InvalidRecordSetError(
            f"children: {len(children)} child health checks, at most {MAX_CHILD_HEALTH_CHECKS}"
        )
    if not 0 <= health_threshold <= MAX_CHILD_HEALTH_CHECKS:
        raise InvalidRecordSetError(f"HealthThreshold: {health_threshold} is not in 0..256")
    healthy_children = sum(child.healthy for child in children)
    return HealthCheckStatus(healthy_children >= health_threshold, inverted, disabled).healthy
