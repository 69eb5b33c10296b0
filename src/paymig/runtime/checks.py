"""The result of one readiness check, shared by the preflight and the login checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its name, pass or fail, and why."""

    name: str
    ok: bool
    detail: str
