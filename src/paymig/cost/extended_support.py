"""RDS Extended Support: what each month costs once a major version leaves standard support.

Also the notice `paymig check` and the runbook give ahead of it.

Enrolment follows the cluster's `engine_lifecycle_support`: read from the synthesized
cluster when it sets one, else from `database.engine_lifecycle_support`. Enrolled
instances are charged per vCPU-hour from the day after the end of standard support
("Amazon RDS Extended Support charges", Aurora User Guide): the year 1-2 rate for two
years, then the year 3 rate. With `...-disabled` nothing is charged, and AWS upgrades the
major version itself after the end of standard support.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paymig.cost.context import ConfigFacts, Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.months import Month
from paymig.cost.prices import EngineSupport, PriceTable
from paymig.cost.stack_view import Resource, StackView, str_attr
from paymig.cost.units import HOURS_PER_MONTH

DISABLED = "open-source-rds-extended-support-disabled"
#: The words every Extended Support line item's resource carries.
LABEL = "RDS Extended Support"


@dataclass(frozen=True)
class Engine:
    """The engine a cluster runs and its Extended Support enrolment."""

    cluster: str
    engine: str
    version: str
    lifecycle: str

    @property
    def major(self) -> str:
        """The major version (`14` of `14.17`)."""
        return self.version.split(".", 1)[0]

    @property
    def enrolled(self) -> bool:
        """Whether the cluster stays on its version under paid Extended Support."""
        return self.lifecycle != DISABLED


def _literal(value: Any) -> str | None:
    """A literal string attribute, or None."""
    return value if isinstance(value, str) and "${" not in value else None


def cluster_engine(cluster: Resource, facts: ConfigFacts) -> Engine | None:
    """A cluster's engine, pinned version and enrolment (None: no pinned version)."""
    version = _literal(cluster.attrs.get("engine_version"))
    engine = _literal(cluster.attrs.get("engine"))
    if version is None or engine is None:
        return None
    lifecycle = _literal(cluster.attrs.get("engine_lifecycle_support"))
    return Engine(cluster.label, engine, version, lifecycle or facts.engine_lifecycle_support)


def instance_engine(stack: StackView, instance: Resource, facts: ConfigFacts) -> Engine | None:
    """The engine of an instance: its cluster's, with the instance's own pinned version."""
    for cluster in stack.referenced(instance, "aws_rds_cluster"):
        engine = cluster_engine(cluster, facts)
        own = _literal(instance.attrs.get("engine_version"))
        if engine is not None and own is not None:
            return Engine(engine.cluster, engine.engine, own, engine.lifecycle)
        if engine is not None:
            return engine
    version = _literal(instance.attrs.get("engine_version"))
    engine_name = _literal(instance.attrs.get("engine"))
    if version is None or engine_name is None:
        return None
    return Engine(instance.label, engine_name, version, facts.engine_lifecycle_support)


def hours_in(calendar: EngineSupport, month: Month) -> tuple[float, float]:
    """Hours of a 730-hour month under the year 1-2 rate and under the year 3 rate."""
    early = month.share_from(calendar.extended_support_starts, calendar.year3_starts)
    late = month.share_from(calendar.year3_starts, calendar.extended_support_ends)
    return early * HOURS_PER_MONTH, late * HOURS_PER_MONTH


def price_instance(ctx: Context, res: Resource, instance_class: str) -> list[LineItem]:
    """An enrolled instance's Extended Support in the month, per vCPU-hour."""
    engine = instance_engine(ctx.stack, res, ctx.facts)
    if engine is None or not engine.enrolled:
        return []
    calendar = ctx.prices.support_calendar(engine.engine, engine.major)
    vcpus = ctx.prices.vcpus_of(instance_class)
    items = []
    labels = ("year 1-2", "year 3")
    keys = ("rds_extended_support_vcpu_hour_y1_y2", "rds_extended_support_vcpu_hour_y3")
    for hours, label, key in zip(hours_in(calendar, ctx.month), labels, keys, strict=True):
        if hours <= 0:
            continue
        items.append(
            priced(
                "Aurora",
                f"{res.label} {LABEL} ({label})",
                res.count * vcpus * hours,
                ctx.price(key),
                f"{engine.engine} {engine.major} past its end of standard support "
                f"{calendar.standard_support_ends}: {res.count} instance(s) x {vcpus} vCPU "
                f"({instance_class}) x {hours:,.1f} h in {ctx.month}, x price per vCPU-hour",
            )
        )
    return items


def is_extended_support(item: LineItem) -> bool:
    """Whether a line item is an Extended Support charge."""
    return item.service == "Aurora" and LABEL in item.resource


@dataclass(frozen=True)
class Notice:
    """A cluster whose engine leaves standard support, and what that costs a month."""

    engine: Engine
    calendar: EngineSupport
    vcpus: int
    year12_usd: float
    year3_usd: float

    @property
    def starts(self) -> datetime.date:
        """First day of Extended Support charges."""
        return self.calendar.extended_support_starts

    def summary(self) -> str:
        """What happens on which date, and what it costs a month."""
        e = self.engine
        head = (
            f"{e.cluster} ({e.engine} {e.major}) leaves standard support on "
            f"{self.calendar.standard_support_ends}"
        )
        if not e.enrolled:
            return (
                f"{head}; engine_lifecycle_support is {DISABLED}, so AWS upgrades the major "
                "version by itself after that date"
            )
        return (
            f"{head}: RDS Extended Support adds ${self.year12_usd:,.2f}/month from "
            f"{self.starts} ({self.vcpus} vCPU) and ${self.year3_usd:,.2f}/month from "
            f"{self.calendar.year3_starts} until the major version is upgraded"
        )

    def message(self) -> str:
        """One line for `paymig check`: the summary and where the way out is."""
        return (
            f"{self.summary()}; upgrade it first with a blue/green deployment (runbook, "
            "post-migration clean-up, step 7)"
        )


def notices(
    document: Mapping[str, Any], facts: ConfigFacts, prices: PriceTable, until: Month
) -> list[Notice]:
    """Clusters whose engine leaves standard support before the end of month `until`."""
    stack = StackView(document)
    found = []
    for cluster in stack.of_type("aws_rds_cluster"):
        engine = cluster_engine(cluster, facts)
        if engine is None:
            continue
        calendar = prices.support_calendar(engine.engine, engine.major)
        if calendar.extended_support_starts >= until.end:
            continue
        vcpus = 0
        for instance in stack.of_type("aws_rds_cluster_instance"):
            if cluster in stack.referenced(instance, "aws_rds_cluster"):
                vcpus += instance.count * prices.vcpus_of(str_attr(instance, "instance_class"))
        rates = (
            prices.get("rds_extended_support_vcpu_hour_y1_y2").usd,
            prices.get("rds_extended_support_vcpu_hour_y3").usd,
        )
        found.append(Notice(engine, calendar, vcpus, *(vcpus * HOURS_PER_MONTH * r for r in rates)))
    return found


@dataclass(frozen=True)
class UpgradeCost:
    """What the green environment of a blue/green major-version upgrade costs."""

    hours: float
    instances: int
    #: USD per hour of every green instance together.
    hourly_usd: float

    @property
    def usd(self) -> float:
        """The green environment's instance-hours for the upgrade window."""
        return self.hours * self.hourly_usd


def blue_green_cost(document: Mapping[str, Any], prices: PriceTable, hours: float) -> UpgradeCost:
    """A green copy of every Aurora instance for `hours` (its storage is a clone).

    Aurora creates the green environment "by cloning the underlying Aurora storage volume"
    and the clone "only stores incremental changes" (Aurora User Guide, "Using Amazon
    Aurora Blue/Green Deployments"), so the instances are what it adds.
    """
    stack = StackView(document)
    instances = 0
    hourly = 0.0
    for instance in stack.of_type("aws_rds_cluster_instance"):
        price = prices.instance_hour("aurora_postgresql", str_attr(instance, "instance_class"))
        instances += instance.count
        hourly += instance.count * price.usd
    return UpgradeCost(hours, instances, hourly)
