"""What a relational rule reports: a relation between two resources that does not hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One broken relation, naming both resources by construct path.

    ``severity`` is ``error`` for a relation AWS enforces (the apply or the feature
    would fail) and ``warning`` for one that holds only with a sample value in place.
    """

    rule: str
    first: str
    second: str
    message: str
    severity: str = "error"

    def line(self) -> str:
        """One line for people: rule, both resources, and why."""
        return f"[{self.rule}] {self.first} -> {self.second}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready data."""
        return {
            "rule": self.rule,
            "first": self.first,
            "second": self.second,
            "message": self.message,
            "severity": self.severity,
        }
