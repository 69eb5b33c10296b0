"""Where the migration's writes stand, for `paymig status`: stage and any operation."""

from __future__ import annotations

from typing import Any

from paymig.naming import audit_table_name
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.calls import AWS_ERRORS, describe_error
from paymig.runtime.cutover.operations import STEPS
from paymig.runtime.cutover.progress import ProgressStore


def stage_view(aws: ControllerAws, phase: int | None) -> dict[str, Any]:
    """The stage (with the live phase), who set it, and how far an operation has come.

    An operation stopped half-way (a crash, a failed step) shows its last step done and
    the steps left: `paymig <operation>` resumes it. Read errors are shown, not raised.
    """
    try:
        record = aws.stage.read()
        progress = ProgressStore(aws.stage.client, audit_table_name(aws.stack_name)).read()
    except AWS_ERRORS as exc:
        return {"stage": None, "error": describe_error(exc)}
    view: dict[str, Any] = {
        "stage": record.stage(phase),
        "writes_on": record.writes_on,
        "operation": record.operation,
        "since": record.since,
        "actor": record.actor,
        "reason": record.reason,
        "progress": None,
    }
    if progress is not None:
        names = [name for name, _ in STEPS[progress.operation]]
        done = [s["step"] for s in progress.steps]
        view["progress"] = {
            "operation": progress.operation,
            "started_at": progress.started_at,
            "actor": progress.actor,
            "last_step": progress.last_step,
            "steps_done": done,
            "steps_left": [n for n in names if n not in done],
            "window_seconds": progress.data.get("window_seconds"),
        }
    return view


def describe(view: dict[str, Any]) -> list[str]:
    """`status` text lines for the stage view."""
    if view.get("error"):
        return [f"stage unreadable: {view['error']}"]
    where = f", writes on {view['writes_on']}" if view.get("writes_on") else ""
    lines = [f"stage: {view['stage']}{where} (since {view.get('since') or 'the start'})"]
    progress = view.get("progress")
    if progress:
        left = ", ".join(progress["steps_left"]) or "the audit record"
        lines.append(
            f"{progress['operation']} under way since {progress['started_at']} by "
            f"{progress['actor']}: last step done {progress['last_step'] or 'none'}; left: "
            f"{left} (`paymig {progress['operation']}` resumes it)"
        )
    return lines
