"""What the runbook's templates print: facts, configuration values and computed figures.

:func:`runbook_context` gathers them from the places that own them: the synthesized
stack (:mod:`.facts`), the configuration, :mod:`paymig.naming`, the controller's gates
and rollback budget, and the cost model. Templates only lay them out; every ``paymig``
command line they print comes from :attr:`RunbookContext.paymig`, which has the caller's
checker vet it first.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from paymig import naming
from paymig.config import PaymigConfig
from paymig.cost.extended_support import Notice, UpgradeCost, blue_green_cost
from paymig.cost.months import Month
from paymig.cost.prices import load_price_table
from paymig.cost.report import (
    estimate_environment,
    extended_support_notices,
    failures,
    lambda_by_volume,
    table_environment,
)
from paymig.runbook.commands import CommandChecker, paymig_line
from paymig.runbook.consistency import consistency_warnings
from paymig.runbook.diagram import Diagram, architecture
from paymig.runbook.facts import RunbookError, StackFacts, WeightedRecord, stack_facts
from paymig.runtime.controller.budget import RollbackBudget, budget_from_config
from paymig.runtime.controller.core import (
    ROLLBACK_LIMIT_SECONDS,
    ROLLBACK_TARGET_SECONDS,
    ControllerSettings,
)
from paymig.runtime.controller.gates import GateFacts, evaluate_gates

if TYPE_CHECKING:
    from paymig.cost.estimate import Estimate
    from paymig.cost.timeline import MonthRow, MonthTable

#: Units of each alarm's threshold (the alarm names and order live in `paymig.naming`).
ALARM_UNITS: Mapping[str, str] = {
    "5xx-rate": "% of requests",
    "p99-latency": "s",
    "cdc-latency": "s",
    "dms-task-failure": "failure events",
    "aurora-cpu": "% CPU",
    "replica-lag": "ms",
}

#: How every `paymig validate` line names the two databases (the DSNs stay in the shell).
_DSNS = ("--source-dsn", "$PAYMIG_SOURCE_DSN", "--target-dsn", "$PAYMIG_TARGET_DSN")

#: A fixed instant for evaluating gate *names* (never printed): keeps output stable.
_GATE_PROBE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RuntimeNames:  # pylint: disable=too-many-instance-attributes
    """The names the controller and the rollback function use (`paymig.naming`)."""

    legacy_set: str
    aws_set: str
    alarms: tuple[str, ...]
    composite_alarm: str
    cdc_alarm: str
    alarm_topic: str
    rollback_function: str
    audit_table: str
    dms_event_topic: str

    @classmethod
    def of(cls, stack: str) -> RuntimeNames:
        """The names for one stack."""
        return cls(
            legacy_set=naming.LEGACY_SET_ID,
            aws_set=naming.AWS_SET_ID,
            alarms=naming.alarm_names(stack),
            composite_alarm=naming.composite_alarm_name(stack),
            cdc_alarm=naming.alarm_name(stack, "cdc-latency"),
            alarm_topic=naming.alarm_topic_name(stack),
            rollback_function=naming.rollback_function_name(stack),
            audit_table=naming.audit_table_name(stack),
            dms_event_topic=naming.dms_event_topic_name(stack),
        )


@dataclass(frozen=True)
class Phase:
    """A traffic phase and how long it holds (None: no dwell time configured)."""

    percent: int
    dwell: int | None


@dataclass(frozen=True)
class Shift:
    """One `paymig shift` of the traffic plan."""

    current: int
    target: int
    #: Minutes to hold the target phase (None: no dwell time configured).
    dwell: int | None


@dataclass(frozen=True)
class AlarmRow:
    """One metric alarm as the validation section tabulates it."""

    name: str
    threshold: float
    unit: str
    datapoints: int
    periods: int
    period_seconds: int
    missing_data: str


@dataclass(frozen=True)
class ServiceCost:
    """A service's monthly cost and its share of the migration-period total."""

    service: str
    monthly_usd: float
    #: Percent of the total (None when the total is zero).
    share: float | None


@dataclass(frozen=True)
class CostSummary:  # pylint: disable=too-many-instance-attributes
    """The cost model's figures for the stack."""

    #: The load month (the migration's first), at its prices.
    estimate: Estimate
    #: Twelve months from the migration start.
    table: MonthTable
    #: Monthly Lambda cost by multiple of the configured volume.
    lambda_by_volume: Mapping[float, float]
    fits_budget: bool
    #: Services of the load month's bill.
    services: tuple[ServiceCost, ...]
    #: Clusters entering RDS Extended Support within the table.
    extended_support: tuple[Notice, ...]
    #: The first month of the table that pays Extended Support.
    first_extended_month: MonthRow | None
    #: A steady-state month in Extended Support's third year (None: no Extended Support).
    year3: Estimate | None
    #: The green environment of the major-version upgrade that ends the charge.
    upgrade: UpgradeCost


@dataclass(frozen=True)
class ManualRollback:
    """What the AWS CLI fallback of the rollback needs."""

    #: The record name with the trailing dot Route 53 lists it with.
    fqdn: str
    #: The legacy record's `ResourceRecords`, as the JSON of a change batch.
    legacy_records_json: str
    stable_alias: str
    stable_target_group: str
    #: `(alias, target group)` for every deployment alias.
    target_groups: tuple[tuple[str, str], ...]
    #: `(alias, weight)` of the listener's forward action, the stable alias first.
    listener_weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RunbookContext:  # pylint: disable=too-many-instance-attributes
    """Every value the templates use, by the name they use it under."""

    cfg: PaymigConfig
    facts: StackFacts
    names: RuntimeNames
    legacy: WeightedRecord
    aws: WeightedRecord
    stack_dir: str
    default_output: str
    warnings: tuple[str, ...]
    diagram: Diagram
    dms_source_endpoint: str
    dms_target_endpoint: str
    dwell_holds: tuple[tuple[int, int], ...]
    phases: tuple[Phase, ...]
    shifts: tuple[Shift, ...]
    gates: tuple[str, ...]
    alarm_rows: tuple[AlarmRow, ...]
    budget: RollbackBudget
    rollback_limit_seconds: int
    rollback_target_seconds: int
    manual_rollback: ManualRollback
    cost: CostSummary
    #: Whether the cluster's master password is an RDS-managed secret (blocks blue/green).
    managed_master_password: bool
    #: The `paymig validate` line of every consistency check (the DSNs stay in the shell).
    validate_command: str
    #: `paymig(name, *args)`: the checked command line, with the environment selector.
    paymig: Callable[..., str]

    def as_mapping(self) -> dict[str, Any]:
        """The fields by name, for the template (shallow: the values stay objects)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _gate_names(cfg: PaymigConfig, phase: int) -> tuple[str, ...]:
    """The gate names `paymig shift` evaluates (and `paymig status` prints), in order."""
    settings = ControllerSettings.from_config(cfg)
    gates = evaluate_gates(settings, GateFacts(now=_GATE_PROBE_TIME), phase)
    return tuple(g.name for g in gates)


def _alarm_rows(cfg: PaymigConfig) -> tuple[AlarmRow, ...]:
    """The configured metric alarms, in `paymig.naming` order."""
    order = {metric: i for i, metric in enumerate(naming.ALARM_METRICS)}
    alarms = sorted(cfg.observability.alarms.items(), key=lambda kv: order[kv[0]])
    return tuple(
        AlarmRow(
            name=naming.alarm_name(cfg.stack_name, metric),
            threshold=alarm.threshold,
            unit=ALARM_UNITS.get(metric, ""),
            datapoints=alarm.datapoints_to_alarm,
            periods=alarm.evaluation_periods,
            period_seconds=alarm.period_seconds,
            missing_data=str(alarm.treat_missing_data),
        )
        for metric, alarm in alarms
    )


def _traffic_plan(cfg: PaymigConfig) -> tuple[tuple[Phase, ...], tuple[Shift, ...]]:
    """The phases with their dwell times, and the shifts between consecutive phases."""
    dwell = cfg.controller.dwell_minutes
    phases = cfg.migration.phases
    return (
        tuple(Phase(p, dwell.get(p) or None) for p in phases),
        tuple(Shift(a, b, dwell.get(b) or None) for a, b in itertools.pairwise(phases)),
    )


def _manual_rollback(cfg: PaymigConfig, facts: StackFacts) -> ManualRollback:
    """The target groups and records the AWS CLI rollback names, checked against the stack."""
    stack = cfg.stack_name
    stable = cfg.controller.stable_alias
    groups = {alias: naming.target_group_name(stack, alias) for alias in naming.DEPLOYMENT_ALIASES}
    for name in groups.values():
        if name not in facts.target_groups:
            raise RunbookError(
                f"runbook: target group {name} (paymig.naming) is not in the synthesized stack"
            )
    legacy = facts.record(naming.LEGACY_SET_ID)
    order = [stable, *(a for a in naming.DEPLOYMENT_ALIASES if a != stable)]
    return ManualRollback(
        fqdn=facts.record_name.rstrip(".") + ".",
        legacy_records_json=json.dumps(
            [{"Value": value} for value in legacy.values], separators=(",", ":")
        ),
        stable_alias=stable,
        stable_target_group=groups[stable],
        target_groups=tuple(groups.items()),
        listener_weights=tuple((alias, 100 if alias == stable else 0) for alias in order),
    )


def _cost(cfg: PaymigConfig, document: Mapping[str, Any]) -> CostSummary:
    """The load month, the month table, Extended Support, and the upgrade that ends it."""
    est = estimate_environment(cfg, document)
    table = table_environment(cfg, document)
    billed = est.billed_items()
    total = est.bill_usd
    services = []
    for service, items in est.by_service(billed).items():
        usd = sum(i.monthly_usd for i in items)
        services.append(ServiceCost(service, usd, 100 * usd / total if total else None))
    notices = tuple(extended_support_notices(cfg, document))
    year3 = None
    if notices and notices[0].engine.enrolled:
        year3_month = Month.of(notices[0].calendar.year3_starts)
        year3 = estimate_environment(cfg, document, month=year3_month)
    return CostSummary(
        estimate=est,
        table=table,
        lambda_by_volume=lambda_by_volume(cfg, document),
        fits_budget=not failures(est, table, cfg.budget_usd),
        services=tuple(services),
        extended_support=notices,
        first_extended_month=next((r for r in table.rows if r.extended_support_usd > 0), None),
        year3=year3,
        upgrade=blue_green_cost(document, load_price_table(), cfg.usage.blue_green_upgrade_hours),
    )


def _endpoint(ids: tuple[str, ...], role: str, fallback: int) -> str:
    """The DMS endpoint whose id names its role (`source`/`target`), else by position."""
    return next((e for e in ids if role in e), ids[fallback])


def runbook_context(
    cfg: PaymigConfig,
    document: Mapping[str, Any],
    selector: tuple[str, ...],
    checker: CommandChecker,
    default_output: str,
) -> RunbookContext:
    """Everything the templates print, for one environment and its synthesized stack."""
    facts = stack_facts(document)

    def paymig(name: str, *args: str) -> str:
        """`paymig <name> <args...> <selector>`, once the checker has accepted it."""
        return paymig_line(checker, name, *args, *selector)

    phases, shifts = _traffic_plan(cfg)
    grace = f"{cfg.validation.grace_seconds:g}"
    return RunbookContext(
        cfg=cfg,
        facts=facts,
        names=RuntimeNames.of(cfg.stack_name),
        legacy=facts.record(naming.LEGACY_SET_ID),
        aws=facts.record(naming.AWS_SET_ID),
        stack_dir=f"cdktf.out/stacks/{facts.stack_name}",
        default_output=default_output,
        warnings=tuple(consistency_warnings(cfg, facts)),
        diagram=architecture(facts),
        dms_source_endpoint=_endpoint(facts.dms_endpoint_ids, "source", 0),
        dms_target_endpoint=_endpoint(facts.dms_endpoint_ids, "target", -1),
        dwell_holds=tuple((p, m) for p, m in sorted(cfg.controller.dwell_minutes.items()) if m),
        phases=phases,
        shifts=shifts,
        gates=_gate_names(cfg, cfg.migration.phases[0]),
        alarm_rows=_alarm_rows(cfg),
        budget=budget_from_config(cfg),
        rollback_limit_seconds=ROLLBACK_LIMIT_SECONDS,
        rollback_target_seconds=ROLLBACK_TARGET_SECONDS,
        manual_rollback=_manual_rollback(cfg, facts),
        cost=_cost(cfg, document),
        managed_master_password=any(
            c.get("manage_master_user_password") is True
            for c in document.get("resource", {}).get("aws_rds_cluster", {}).values()
        ),
        validate_command=paymig(
            "validate", *_DSNS, "--grace", grace, "--format", "json", "--record"
        ),
        paymig=paymig,
    )
