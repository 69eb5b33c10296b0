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
