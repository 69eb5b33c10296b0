"""Where the runtime's resource names and the synthesized stack disagree.

The controller, the rollback function and the gates find resources by the names in
:mod:`paymig.naming`; the runbook lists each mismatch with the stack it documents, so an
operator learns before the window that a gate or a rollback step cannot work.
"""

from __future__ import annotations

from paymig import naming
from paymig.config import PaymigConfig
from paymig.runbook.facts import StackFacts


def _code(text: str) -> str:
    """Inline code."""
    return f"`{text}`"


def consistency_warnings(cfg: PaymigConfig, facts: StackFacts) -> list[str]:
    """Where the runtime's names (`paymig.naming`) and the synthesized stack disagree.

    The controller finds resources by these names; each mismatch is a gate or rollback
    step that cannot work until the stack and the names agree, so the runbook shows it.
    """
    stack = cfg.stack_name
    warnings = []
    if facts.stack_name != stack:
        warnings.append(
            f"the synthesized stack is {_code(facts.stack_name)} but the configuration "
            f"selects {_code(stack)}"
        )
    expected_task = naming.dms_task_identifier(stack)
    if expected_task != facts.dms_task_id:
        warnings.append(
            f"the controller's CDC-latency gate reads task {_code(expected_task)} "
            f"(`paymig.naming.dms_task_identifier`) but the stack creates "
            f"{_code(facts.dms_task_id)}: the `cdc-latency` gate will find no datapoint and fail"
        )
    if naming.dms_instance_identifier(stack) != facts.dms_instance_id:
        warnings.append(
            f"the controller reads DMS instance {_code(naming.dms_instance_identifier(stack))} "
            f"but the stack creates {_code(facts.dms_instance_id)}"
        )
    if naming.alb_name(stack) != facts.alb_name:
        warnings.append(
            f"the controller looks for load balancer {_code(naming.alb_name(stack))} but the "
            f"stack creates {_code(facts.alb_name)}"
        )
    expected_alarms = set(naming.alarm_names(stack))
    present = set(facts.metric_alarms) | set(facts.composite_alarms)
    missing_alarms = sorted(expected_alarms - present)
    if missing_alarms:
        warnings.append(
            "alarms the gates and the automatic rollback rely on are not in the synthesized "
            "stack: " + ", ".join(_code(a) for a in missing_alarms) + " (every `alarm:` gate "
            "fails and no automatic rollback fires until they exist)"
        )
    expected = (
        ("rollback function", naming.rollback_function_name(stack), facts.function_names),
        ("alarm topic", naming.alarm_topic_name(stack), facts.sns_topics),
        ("audit table", naming.audit_table_name(stack), facts.dynamodb_tables),
        ("DMS event topic", naming.dms_event_topic_name(stack), facts.sns_topics),
    )
    for what, name, present_names in expected:
        if name not in present_names:
            warnings.append(
                f"the {what} {_code(name)} that the controller uses is not in the synthesized stack"
            )
    return warnings
