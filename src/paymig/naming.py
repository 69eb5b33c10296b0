"""Names of AWS resources that both halves must agree on.

The infra half creates resources with these names; the runtime half (controller,
rollback Lambda, rehearsal) finds them by the same names. Keep them here, derived from
the environment's stack name, so the two can never drift apart.
"""

from __future__ import annotations

#: Set identifiers of the two weighted records of the public API name.
LEGACY_SET_ID = "legacy"
AWS_SET_ID = "aws"


def resource_prefix(stack_name: str) -> str:
    """Prefix of every named resource of an environment (e.g. `paymig-prod`)."""
    return stack_name


# --------------------------------------------------------------------------- replication (DMS)


def dms_replication_instance_id(stack_name: str) -> str:
    """Return the identifier of the DMS replication instance."""
    return f"{resource_prefix(stack_name)}-dms"


def dms_replication_task_id(stack_name: str) -> str:
    """Return the identifier of the full-load-and-CDC replication task (the runbook starts it)."""
    return f"{resource_prefix(stack_name)}-full-load-and-cdc"


def dms_source_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the on-prem PostgreSQL."""
    return f"{resource_prefix(stack_name)}-onprem-source"


def dms_target_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the Aurora cluster."""
    return f"{resource_prefix(stack_name)}-aurora-target"


def dms_source_secret_name(stack_name: str) -> str:
    """Secrets Manager name of the on-prem source credentials DMS reads."""
    return f"{resource_prefix(stack_name)}/dms/source"


def dms_event_topic_name(stack_name: str) -> str:
    """SNS topic that receives the DMS event subscriptions."""
    return f"{resource_prefix(stack_name)}-dms-events"
