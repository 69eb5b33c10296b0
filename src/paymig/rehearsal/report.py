"""The rehearsal's results: ``report.json`` for machines and ``report.md`` for people.

Every figure here was measured during the run, except the modelled paths, which are the
controller's rollback budget computed from a configuration (and say so).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepResult:
    """One step of the migration as it happened."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class RehearsalReport:  # one flat record of the run, so the JSON stays easy to read
    """Everything the rehearsal measured."""

    started_at: str
    rows: int
    rate: float
    clients: int = 0
    scenario: str = ""
    outcome: str = "incomplete"
    failure: str | None = None
    total_seconds: float = 0.0
    # deploy
    synth_cached: bool | None = None
    synth_seconds: float | None = None
    apply_seconds: float | None = None
    apply_rounds: int | None = None
    resources_total: int | None = None
    resources_created: int | None = None
    not_rehearsed: dict[str, str] = field(default_factory=dict)
    created_by_rehearsal: list[str] = field(default_factory=list)
    dashboard_coverage: dict[str, list[str]] = field(default_factory=dict)
    # data
    dataset: dict[str, int] = field(default_factory=dict)
    dataset_seconds: float | None = None
    preflight_passed: bool | None = None
    preflight_checks: list[dict[str, Any]] = field(default_factory=list)
    initial_copy_seconds: float | None = None
    # the two sides
    sides: dict[str, str] = field(default_factory=dict)
    translation: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    setup_check: str | None = None  # the setup function's run against the target
    # migration
    steps: list[StepResult] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    final_validation: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    fault_path: dict[str, Any] = field(default_factory=dict)
    modelled_prod: list[dict[str, Any]] = field(default_factory=list)
    modelled_rehearsal: list[dict[str, Any]] = field(default_factory=list)
    alarms_evaluated: dict[str, str] = field(default_factory=dict)
    alarms_not_evaluated: dict[str, str] = field(default_factory=dict)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    rollback: dict[str, Any] = field(default_factory=dict)
    final_weights: dict[str, int] = field(default_factory=dict)
    catch_up_seconds: float | None = None
    max_lag_seconds: float | None = None
    # payments
    requests: int | None = None
    payments_acknowledged: int | None = None
    payments_found: int | None = None
    payments_lost: int | None = None
    payments_failed_to_clients: int | None = None
    payments_recorded_unacknowledged: int | None = None
    payments_reconciliation: str = ""
    #: The whole migration's switches and payments (write_figures), the held alarm.
    writes: dict[str, Any] = field(default_factory=dict)
    held_alarm: dict[str, Any] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    # processes
    processes: list[dict[str, Any]] = field(default_factory=list)
    processes_still_running: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    def write(self, folder: Path, timeline_png: Path | None) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into `folder`."""
        json_path = folder / "report.json"
        json_path.write_text(json.dumps(self.as_dict(), indent=2, default=str), encoding="utf-8")
        md_path = folder / "report.md"
        md_path.write_text(render_markdown(self, timeline_png), encoding="utf-8")
        return json_path, md_path


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _s(value: float | None) -> str:
    """Seconds for a table cell."""
    return "not measured" if value is None else f"{value:.1f} s"


def _step(report: RehearsalReport, name: str) -> float | None:
    """A measured step of the fault's path."""
    for step in report.fault_path.get("steps", []):
        if step["name"] == name or step["name"].startswith(name):
            value: float | None = step["seconds"]
            return value
    return None


def summary_rows(report: RehearsalReport) -> list[tuple[str, str]]:
    """The headline figures, shared by the terminal summary and the Markdown."""
    deploy = None
    if report.synth_seconds is not None and report.apply_seconds is not None:
        deploy = report.synth_seconds + report.apply_seconds
    synth = "reused" if report.synth_cached else _s(report.synth_seconds)
    shares = "; ".join(
        f"{p['phase']}: weight {p['aws_weight']}, measured "
        + ("-" if p["aws_share"] is None else f"{p['aws_share']:g}")
        + f" ({p['requests']} req)"
        for p in report.phases
    )
    rollback = report.rollback
    return [
        ("outcome", report.outcome + (f": {report.failure}" if report.failure else "")),
        ("deploy (synth + terraform apply)", f"{_s(deploy)} (synth {synth}, apply "
         f"{_s(report.apply_seconds)} in {report.apply_rounds or 0} round(s))"),
        ("resources created in the emulator",
         f"{report.resources_created} of {report.resources_total} by Terraform "
         f"({len(report.not_rehearsed)} not; {len(report.created_by_rehearsal)} of those "
         "created from their definitions)"),
        ("share of requests on AWS (%), settled", shares or "not measured"),
        ("fault", report.scenario),
        ("fault -> first bad answer", _s(_step(report, "fault -> first"))),
        ("-> alarm ALARM", _s(_step(report, "first"))
         + (f" ({report.fault_path.get('fired')})" if report.fault_path.get("fired") else "")),
        ("-> composite ALARM", _s(_step(report, "alarm -> composite"))),
        ("-> handler start", _s(_step(report, "composite -> handler"))),
        ("-> weights restored", _s(_step(report, "handler start ->"))),
        ("-> last request served by AWS", _s(_step(report, "weights restored ->"))),
        ("fault -> weights restored", _s(_step(report, "fault -> weights"))),
        ("rollback handler", f"{rollback.get('result', 'not run')} as "
         f"{rollback.get('principal', '?')}; {rollback.get('calls', 0)} AWS calls authorized, "
         f"{len(rollback.get('denied', []))} denied" if rollback else "not run"),
        ("validation (load running)", report.validation.get("summary", "not run")),
        ("final validation", report.final_validation.get("summary", "not run")),
        ("final weights (Route 53)", ", ".join(f"{k} {v}" for k, v in
                                               sorted(report.final_weights.items())) or "?"),
        ("payments acknowledged / found / lost",
         f"{report.payments_acknowledged} / {report.payments_found} / {report.payments_lost}"),
        ("payments failed to clients (all / during the fault)",
         f"{report.payments_failed_to_clients} / {report.fault_path.get('failed_to_clients')}"),
    ]  # fmt: skip


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _path_section(report: RehearsalReport) -> list[str]:
    lines = ["", "## The fault's path", "",
             f"Scenario `{report.scenario}`. Measured in this run beside the controller's "
             "budget model (`budget_from_config`) for this configuration and for prod "
             "(detection: the alarm that fired, period x datapoints to alarm).", ""]  # fmt: skip
    rows = [[s["name"], _s(s["seconds"]), s["detail"]] for s in report.fault_path.get("steps", [])]
    lines += _table(["measured step", "seconds", "what"], rows)
    model = {s["name"]: s for s in report.modelled_prod}
    rehearsal = {s["name"]: s for s in report.modelled_rehearsal}
    rows = [[name, rehearsal.get(name, {}).get("seconds", "?"), step["seconds"], step["detail"]]
            for name, step in model.items()]  # fmt: skip
    lines += ["", *_table(["modelled step", "rehearsal config (s)", "prod (s)", "detail"], rows)]
    return lines


def _alarm_section(report: RehearsalReport) -> list[str]:
    lines = ["", "## Alarms", "", "Evaluated from the metrics in the emulator's CloudWatch:", ""]
    lines += [f"- `{name}`: {what}" for name, what in report.alarms_evaluated.items()]
    if report.alarms_not_evaluated:
        lines += ["", "Not evaluated (their state stays as the emulator holds it):", ""]
        lines += [f"- `{name}`: {why}" for name, why in report.alarms_not_evaluated.items()]
    rows = [[f"{t['at']:.1f}", t["alarm"], f"{t['old']} -> {t['new']}", t["reason"]]
            for t in report.transitions]  # fmt: skip
    lines += ["", *_table(["t (s)", "alarm", "change", "reason"], rows)]
    rows = [
        [f"{d['at']:.1f}", d["source"], d["topic"].rsplit(":", 1)[-1], d["protocol"],
         d["endpoint"].rsplit(":", 1)[-1], "yes" if d["matched"] else "no", d["detail"],
         d.get("outcome", "")]
        for d in report.deliveries
    ]  # fmt: skip
    if rows:
        lines += ["", "Notifications delivered (SNS filter semantics):", ""]
        headers = ["t (s)", "published by", "topic", "protocol", "endpoint", "matched", "filter",
                   "function's result"]  # fmt: skip
        lines += _table(headers, rows)
    return lines


def _source_payments(report: RehearsalReport) -> str:
    """The payments the final validation counted in the source."""
    for table in report.final_validation.get("tables", []):
        if table["table"].endswith(".payments"):
            return str(table["source_rows"])
    return "not counted"


def render_markdown(report: RehearsalReport, timeline_png: Path | None) -> str:
    """The report as Markdown."""
    lines = [
        "# paymig rehearsal report", "",
        f"Started {report.started_at}; {report.rows} seed payments; {report.clients} virtual "
        f"clients sending {report.rate:g} payments/s; total {report.total_seconds:.1f} s.", "",
        "Every figure below was measured during this run, except the modelled steps, which "
        "are the controller's budget model computed from a configuration.", "",
        "## Summary", "",
    ]  # fmt: skip
    lines += _table(["figure", "value"], [list(row) for row in summary_rows(report)])
    lines += ["", "## The two sides", ""] + [f"- **{k}**: {v}" for k, v in report.sides.items()]
    lines += [f"- {line}" for line in report.translation + report.logins]
    if report.setup_check:
        lines.append(f"- the setup function (Aurora logins, grants, schema): {report.setup_check}")
    lines += ["", "## Traffic per phase", ""]
    lines += ["Settled: sent with a DNS answer drawn from zone records read after the "
              "change; before that, clients may hold the previous answer for its TTL, or "
              "read it from a lagging view of the zone (the transition).", ""]  # fmt: skip
    lines += _table(["phase", "aws weight", "requests settled", "measured aws %",
                     "requests in the transition"],
                    [[p["phase"], p["aws_weight"], p["requests"], p["aws_share"],
                      p["transition_requests"]] for p in report.phases])  # fmt: skip
    lines += _path_section(report)
    lines += _alarm_section(report)
    for title, result in (("Validation (load running)", report.validation),
                          ("Final validation", report.final_validation)):  # fmt: skip
        if result:
            lines += ["", f"## {title}", ""] + [f"- {x}" for x in result.get("explanation", [])]
    lines += ["", "## Payments", "",
              f"- {report.requests} requests sent; {report.payments_acknowledged} acknowledged "
              f"(2xx with a payment id), {report.payments_found} of them in the target, "
              f"{report.payments_lost} lost.",
              f"- {report.payments_failed_to_clients} answered with an error or not at all "
              f"(never acknowledged); the source recorded "
              f"{report.payments_recorded_unacknowledged} of them anyway (the answer was lost "
              "after the commit).",
              f"- {report.payments_reconciliation}; the final validation counted "
              f"{_source_payments(report)} in the source."]  # fmt: skip
    lines += _writes_section(report)
    lines += ["", "## Steps", ""]
    lines += _table(["step", "result", "seconds", "detail"],
                    [[s.name, "ok" if s.ok else "FAILED", f"{s.seconds:.1f}", s.detail]
                     for s in report.steps])  # fmt: skip
    lines += ["", "## Not rehearsed", ""]
    if report.not_rehearsed:
        lines += ["The apply could not create these resources (nor what depends on them):", ""]
        lines += _table(["resource", "error"],
                        [[f"`{a}`", e] for a, e in report.not_rehearsed.items()])  # fmt: skip
    else:
        lines.append("Nothing: every resource of the stack was created in the emulator.")
    if report.created_by_rehearsal:
        lines += ["", "Created by the rehearsal from their synthesized definitions:", ""]
        lines += [f"- {item}" for item in report.created_by_rehearsal]
    if report.dashboard_coverage:
        cover = report.dashboard_coverage
        lines += [
            "",
            f"Dashboard metrics with data in the emulator: "
            f"{len(cover.get('with data', []))} of "
            f"{len(cover.get('with data', [])) + len(cover.get('without data', []))}",
            "",
        ]
        lines += [f"- with data: {m}" for m in cover.get("with data", [])]
        lines += [f"- no data (no stand-in publishes it): {m}"
                  for m in cover.get("without data", [])]  # fmt: skip
    lines += ["", "## Stand-ins", ""] + [f"- {note}" for note in report.notes]
    if report.preflight_checks:
        lines += ["", "## Preflight", ""]
        lines += _table(
            ["check", "ok", "detail"],
            [[c["name"], c["ok"], c["detail"]] for c in report.preflight_checks],
        )
    lines += ["", "## Processes", ""]
    lines += [f"- {proc['name']}: pid {proc['pid']}" for proc in report.processes]
    still = report.processes_still_running
    lines.append("- all stopped at the end" if not still else f"- STILL RUNNING: {still}")
    if timeline_png is not None:
        lines += ["", "## Timeline", "", f"![timeline]({timeline_png.name})", ""]
    return "\n".join(lines) + "\n"


def _writes_section(report: RehearsalReport) -> list[str]:
    """Each cutover and fallback's measured window, the payments, the sequences."""
    w = report.writes
    if not w:
        return []
    lines = ["", "## Writes moved (cutover, fallback)", "",
             f"Stages: {' -> '.join(report.stages)}. Windows measured from "
             f"{w['measured_from']}: last before the switch to first after.", "",
             "| operation | at (s) | window (s) | operation's own (s) | sequences old -> new |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for x in w["windows"]:
        seqs = ", ".join(f"{s['name']} {s['old_writer']} -> {s['new_writer']}"
                         for s in x["sequences"])  # fmt: skip
        lines.append(f"| {x['operation']} | {x['at']} | {x['window_seconds']} | "
                     f"{x['operation_window_seconds']} | {seqs} |")  # fmt: skip
    lines += ["", f"- {w['acknowledged']} payments acknowledged, {w['exactly_once']} found exactly "
              f"once on the final writer, {w['lost']} lost, {w['duplicated_on_final_writer']} "
              f"duplicated there, {w['duplicated_across_databases']} across both databases.",
              f"- receipt numbers (the sequence the writes use): {w['receipts']}; "
              f"{w['receipt_collisions']} handed out by both databases."]  # fmt: skip
    if report.held_alarm:
        h = report.held_alarm
        lines.append(f"- fault after cutover: the rollback Lambda {h['result']} "
                     f"({h['audit_action']}), weights {h['weights_before']} -> "
                     f"{h['weights_after']}; {h['detail']}")  # fmt: skip
    return lines
