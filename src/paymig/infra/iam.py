"""IAM policy documents as plain data.

Policies are rendered with :func:`json.dumps` rather than ``Fn.jsonencode`` so that the
synthesized JSON holds them as JSON text that tests (and reviewers) can parse and scan.
Terraform tokens inside values survive as ``${...}`` interpolations.
"""

from __future__ import annotations

import json
from typing import Any

Statement = dict[str, Any]


def statement(
    sid: str,
    actions: list[str],
    resources: list[str] | str | None,
    *,
    effect: str = "Allow",
    principal: dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    """Build one policy statement; `resources` is None only in trust policies."""
    out: Statement = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out["Action"] = actions
    if resources is not None:
        out["Resource"] = resources
    if condition is not None:
        out["Condition"] = condition
    return out


def policy_document(*statements: Statement) -> str:
    """Render statements as an IAM policy document (JSON text)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=False)


def assume_role_policy(service: str, *, condition: dict[str, Any] | None = None) -> str:
    """A trust policy that lets one AWS service assume the role."""
    return policy_document(
        statement(
            "TrustService",
            ["sts:AssumeRole"],
            None,
            principal={"Service": service},
            condition=condition,
        )
    )
