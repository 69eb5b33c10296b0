"""The rehearsal's results: ``report.json`` for machines and ``report.md`` for people.

Every figure here was measured during the run, except the rollback budget, which is
the controller's worst-case model computed from the configuration (and says so).
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
class RehearsalReport:
    """Everything the rehearsal measured."""

    started_at: str
    rows: int
    rate: float
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
    # data
    dataset: dict[str, int] = field(default_factory=dict)
    dataset_seconds: float | None = None
    preflight_passed: bool | None = None
    preflight_checks: list[dict[str, Any]] = field(default_factory=list)
    initial_copy_seconds: float | None = None
    # migration
    steps: list[StepResult] = field(default_factory=list)
    validation_seconds: float | None = None
    validation_consistent: bool | None = None
    fault_detect_seconds: float | None = None
    rollback_handler_seconds: float | None = None
    fault_to_restored_seconds: float | None = None
    rollback_result: dict[str, Any] = field(default_factory=dict)
    rollback_budget: dict[str, Any] = field(default_factory=dict)
    final_weights: dict[str, int] = field(default_factory=dict)
    catch_up_seconds: float | None = None
    final_validation_seconds: float | None = None
    final_validation_consistent: bool | None = None
    final_validation_tables: list[dict[str, Any]] = field(default_factory=list)
    # payments
    payments_written: int | None = None
    payments_found: int | None = None
    payments_lost: int | None = None
    load_errors: int | None = None
    max_lag_seconds: float | None = None
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


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _s(value: float | None) -> str:
    """Seconds for a table cell."""
    return "not measured" if value is None else f"{value:.1f} s"


def _verdict(value: bool | None) -> str:
    """A validation verdict."""
    return {True: "consistent", False: "NOT consistent", None: "not run"}[value]


def summary_rows(report: RehearsalReport) -> list[tuple[str, str]]:
    """The headline figures, shared by the terminal summary and the Markdown."""
    budget = report.rollback_budget
    deploy = None
    if report.synth_seconds is not None and report.apply_seconds is not None:
        deploy = report.synth_seconds + report.apply_seconds
    synth = "reused" if report.synth_cached else _s(report.synth_seconds)
    return [
        ("outcome", report.outcome + (f": {report.failure}" if report.failure else "")),
        ("deploy (synth + terraform apply)", f"{_s(deploy)} (synth {synth}, apply "
         f"{_s(report.apply_seconds)} in {report.apply_rounds or 0} round(s))"),
        ("resources created in the emulator",
         f"{report.resources_created} of {report.resources_total} "
         f"({len(report.not_rehearsed)} not rehearsed)"),
        ("time to detect the fault", _s(report.fault_detect_seconds)),
        ("fault -> weights restored", _s(report.fault_to_restored_seconds)),
        ("rollback handler run (controller's own time)", _s(report.rollback_handler_seconds)),
        ("modelled real-world rollback budget (from config)",
         f"{budget.get('total_seconds', '?')} s worst case, "
         f"{budget.get('fastest_signal_seconds', '?')} s via the fastest alarm "
         f"(limit {budget.get('limit_seconds', '?')} s)" if budget else "not computed"),
        ("validation", f"{_s(report.validation_seconds)}, "
         f"{_verdict(report.validation_consistent)}"),
        ("final validation", f"{_s(report.final_validation_seconds)}, "
         f"{_verdict(report.final_validation_consistent)}"),
        ("final weights (Route 53)", ", ".join(f"{k} {v}" for k, v in
                                               sorted(report.final_weights.items())) or "?"),
        ("payments written / found / lost",
         f"{report.payments_written} / {report.payments_found} / {report.payments_lost}"),
    ]  # fmt: skip


def render_markdown(report: RehearsalReport, timeline_png: Path | None) -> str:
    """The report as Markdown."""
    lines = [
        "# paymig rehearsal report",
        "",
        f"Started {report.started_at}; {report.rows} seed payments; load {report.rate:g} "
        f"payments/s; total {report.total_seconds:.1f} s.",
        "",
        "Every figure below was measured during this run, except the rollback budget, which "
        "is the controller's worst-case model computed from the configuration.",
        "",
        "## Summary",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value} |" for name, value in summary_rows(report)]
    lines += ["", "## Steps", "", "| step | result | seconds | detail |", "|---|---|---|---|"]
    for step in report.steps:
        lines.append(
            f"| {step.name} | {'ok' if step.ok else 'FAILED'} | {step.seconds:.1f} | "
            f"{_cell(step.detail)} |"
        )
    lines += ["", "## Not rehearsed", ""]
    if report.not_rehearsed:
        lines += [
            "The emulator could not create these resources; they (and what depends on them) "
            "were left out of the apply, and nothing here claims they work:",
            "",
            "| resource | error |",
            "|---|---|",
        ]
        for address, error in report.not_rehearsed.items():
            lines.append(f"| `{address}` | {_cell(error)} |")
    else:
        lines.append("Nothing: every resource of the stack was created in the emulator.")
    lines += ["", "## Stand-ins", ""]
    lines += [f"- {note}" for note in report.notes]
    if report.created_by_rehearsal:
        lines += [
            "- Created in the emulator by the rehearsal with boto3, because the apply did not "
            "create them (see Not rehearsed) and the controller's gates and rollback read them:",
        ]
        lines += [f"  - {item}" for item in report.created_by_rehearsal]
    if report.preflight_checks:
        lines += ["", "## Preflight", "", "| check | ok | detail |", "|---|---|---|"]
        for check in report.preflight_checks:
            lines.append(f"| {check['name']} | {check['ok']} | {check['detail']} |")
    if report.rollback_budget:
        lines += ["", "## Rollback budget (modelled from config)", ""]
        lines += ["| step | seconds | detail |", "|---|---|---|"]
        for step in report.rollback_budget.get("steps", []):
            lines.append(f"| {step['name']} | {step['seconds']} | {step['detail']} |")
    lines += ["", "## Processes", ""]
    for proc in report.processes:
        lines.append(f"- {proc['name']}: pid {proc['pid']}")
    still = report.processes_still_running
    lines.append("- all stopped at the end" if not still else f"- STILL RUNNING: {still}")
    if timeline_png is not None:
        lines += ["", "## Timeline", "", f"![timeline]({timeline_png.name})", ""]
    return "\n".join(lines) + "\n"
