"""The run's figures gathered into the report, and the timeline image drawn.

Everything here is computed from what was recorded during the run: the clients'
requests, the alarm evaluator's transitions, the deliveries, the rollback handler's
own start and end, the databases' rows. The only modelled figures are the controller's
budget for the same path (:func:`paymig.runtime.controller.budget.budget_from_config`),
for this configuration and for prod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paymig import naming
from paymig.config import PaymigConfig, load_config, resolve_config_path
from paymig.rehearsal import emulated
from paymig.rehearsal.clients import RequestRecord
from paymig.rehearsal.data import payments_present
from paymig.rehearsal.live import LiveMigration
from paymig.rehearsal.migration import Migration, phase_windows
from paymig.rehearsal.path import measure_fault_path, modelled_path, phase_shares
from paymig.rehearsal.report import RehearsalReport
from paymig.rehearsal.timeline import Timeline, plot
from paymig.rehearsal.validation import unacknowledged_recorded


def _metric(stack: str, alarm: str | None) -> str | None:
    """The config key (``5xx-rate``) of one of the stack's alarm names."""
    if alarm is None:
        return None
    prefix = f"{stack}-"
    return alarm.removeprefix(prefix) if alarm.startswith(prefix) else None


def modelled(config: PaymigConfig, metric: str | None) -> list[dict[str, Any]]:
    """The budget model's path for `config`, detection by the alarm `metric` (config key)."""
    return modelled_path(config, metric)


def _bad_answer(config: PaymigConfig, scenario: str) -> tuple[str, Any]:
    if scenario.startswith("slow-db"):
        limit = config.observability.alarms["p99-latency"].threshold
        return f"answer slower than {limit:g} s", lambda r: r.done - r.sent > limit
    return "5xx", lambda r: r.status >= 500


def _payments(report: RehearsalReport, migration: Migration, records: list[RequestRecord]) -> None:
    ids = [r.payment_id for r in records if r.acknowledged and r.payment_id]
    report.requests = len(records)
    report.payments_acknowledged = len(ids)
    report.payments_found = payments_present(migration.replication.target_dsn, ids)
    report.payments_lost = len(ids) - report.payments_found
    report.payments_failed_to_clients = sum(1 for r in records if not r.acknowledged)
    report.payments_recorded_unacknowledged = unacknowledged_recorded(
        migration.replication.source_dsn, ids
    )
    seeded = report.dataset.get("payments")
    recorded = report.payments_recorded_unacknowledged
    report.payments_reconciliation = (
        f"payments in the source at the end = {seeded} seeded + {len(ids)} acknowledged + "
        f"{recorded} recorded without an acknowledgement (the answer was lost after the "
        "commit) = " + str((seeded or 0) + len(ids) + recorded)
    )
    if report.payments_lost and report.failure is None:
        report.failure = f"{report.payments_lost} acknowledged payments missing in the target"


def _alarms(report: RehearsalReport, live: LiveMigration, timeline: Timeline) -> None:
    for name, definition in live.evaluator.definitions.items():
        a = definition.alarm
        report.alarms_evaluated[name] = (
            f"period {a.period_seconds} s, {a.m} of {a.evaluation_periods}, "
            f"{a.comparison_operator} {a.threshold:g}, missing data {a.treat_missing_data}"
        )
    report.alarms_not_evaluated = dict(live.not_evaluated)
    report.transitions = [
        {
            "at": round(timeline.at(t.at), 3),
            "alarm": t.alarm,
            "old": t.old.value,
            "new": t.new.value,
            "reason": t.reason,
            "composite": t.composite,
        }
        for t in live.evaluator.history.transitions
    ]
    report.deliveries = [
        {
            "topic": d.topic,
            "subscription": d.subscription,
            "protocol": d.protocol,
            "endpoint": d.endpoint,
            "matched": d.matched,
            "detail": d.detail,
            "hop": d.hop,
            "source": d.source,
            "at": round(timeline.at(d.published_at), 3),
            "outcome": ""
            if d.invocation is None
            else (
                str(d.invocation.error)
                if d.invocation.error
                else str((d.invocation.result or {}).get("result"))
            ),
        }
        for d in live.deliverer.deliveries
    ]


def _rollback(report: RehearsalReport, migration: Migration, timeline: Timeline) -> None:
    delivery = migration.rollback
    if delivery is None or delivery.invocation is None:
        return
    inv = delivery.invocation
    result = dict(inv.result or {})
    report.rollback = {
        "function": inv.function,
        "principal": inv.principal,
        "result": result.get("result") or (inv.error or {}).get("type"),
        "detail": result.get("detail") or (inv.error or {}).get("message"),
        "weights_before": result.get("weights_before"),
        "weights_after": result.get("weights_after"),
        "calls": len(inv.calls),
        "denied": inv.denied,
        "actions": sorted({d["action"] for c in inv.calls for d in c["decisions"]}),
        "started": None if inv.started is None else round(timeline.at(inv.started), 3),
        "finished": None if inv.finished is None else round(timeline.at(inv.finished), 3),
    }


def fill_outcome(
    report: RehearsalReport,
    migration: Migration,
    completed: emulated.CompletedStack,
    session: Any,
    timeline: Timeline,
) -> None:
    """Every figure of the report that comes from the run's records."""
    live, config = migration.live, migration.config
    records = live.pool.snapshot()
    _payments(report, migration, records)
    report.phases = [p.as_dict() for p in phase_shares(phase_windows(migration.phases), records)]
    if migration.fault_at is not None:
        invocation = migration.rollback.invocation if migration.rollback else None
        path = measure_fault_path(
            migration.fault_at,
            repaired_at=migration.repaired_at,
            records=records,
            transitions=live.evaluator.history.transitions,
            handler_started=invocation.started if invocation else None,
            weights_restored=invocation.finished if invocation else None,
            bad=_bad_answer(config, report.scenario),
            reshifted_at=next(
                (p.start for p in migration.phases
                 if p.aws_weight > 0 and p.start > migration.fault_at), None),
        )  # fmt: skip
        report.fault_path = path.as_dict()
        metric = _metric(config.stack_name, path.fired)
        report.modelled_rehearsal = modelled(config, metric)
        report.modelled_prod = modelled(load_config(resolve_config_path("prod", None)), metric)
    _alarms(report, live, timeline)
    _rollback(report, migration, timeline)
    report.final_weights = emulated.read_weights(
        session.client("route53"), config.dns.hosted_zone_id, config.dns.api_record_name
    )
    if completed.dashboard_body is not None:
        report.dashboard_coverage = emulated.dashboard_coverage(
            session.client("cloudwatch"), completed.dashboard_body
        )


def draw_timeline(timeline: Timeline, live: LiveMigration | None, path: Path) -> Path | None:
    """The timeline image, when the live part ran."""
    if live is None or not timeline.samples:
        return None
    stack = live.parts.config.stack_name
    five = naming.alarm_name(stack, "5xx-rate")
    points = [
        (timeline.at(t), value)
        for t, name, _, value in live.evaluator.history.evaluations
        if name == five
    ]
    definition = live.evaluator.definitions.get(five)
    threshold = definition.alarm.threshold if definition else None
    names = [
        *sorted(live.evaluator.definitions),
        *([live.parts.composite.name] if live.parts.composite else []),
    ]
    return plot(
        timeline,
        live.pool.snapshot(),
        error_points=points,
        threshold=threshold,
        alarm_names=names,
        path=path,
    )
