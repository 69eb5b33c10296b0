"""What Route 53 will actually answer for the API name: weights and health together.

The weights alone do not say it. "How Amazon Route 53 chooses records when health
checking is configured" (:mod:`paymig.semantics.route53_weighted`): when every record
with a weight above 0 is unhealthy, Route 53 answers with the weight-0 records. So at
legacy 100 / aws 0 with legacy unhealthy, all traffic goes to AWS.

What the controller does about it: a rollback still sets legacy 100 / aws 0 (it is where
traffic must go as soon as legacy answers again, and Route 53 then needs no further
change), reports the answer as it is, and counts as incomplete so that people are paged:
legacy being down is theirs to fix, not the controller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from paymig.naming import AWS_SET_ID, LEGACY_SET_ID
from paymig.runtime.controller.core import Weights
from paymig.semantics.route53_weighted import WeightedRecord, answer_distribution


@dataclass(frozen=True)
class Answer:
    """The share of answers each record gets, and the health it was computed from.

    A health of None could not be read and is counted as healthy (what Route 53 does
    with a record that has no health check), which `assumed` names.
    """

    weights: Weights
    legacy_healthy: bool | None
    aws_healthy: bool | None
    legacy_share: Fraction
    aws_share: Fraction
    detail: str

    @property
    def assumed(self) -> tuple[str, ...]:
        """The records whose health could not be read."""
        return tuple(
            name
            for name, healthy in (
                (LEGACY_SET_ID, self.legacy_healthy),
                (AWS_SET_ID, self.aws_healthy),
            )
            if healthy is None
        )

    @property
    def legacy_down_sends_to_aws(self) -> bool:
        """Legacy is weighted but unhealthy, and Route 53 answers with AWS instead."""
        return self.weights.legacy > 0 and self.legacy_healthy is False and self.aws_share > 0

    def describe(self) -> str:
        """One line, e.g. `Route 53 answers legacy 100% / aws 0%`."""
        line = (
            f"Route 53 answers {LEGACY_SET_ID} {float(self.legacy_share) * 100:.0f}% / "
            f"{AWS_SET_ID} {float(self.aws_share) * 100:.0f}%"
        )
        if self.legacy_down_sends_to_aws:
            line += (
                f": every {LEGACY_SET_ID} address is unhealthy, so Route 53 answers with "
                f"the weight-{self.weights.aws} {AWS_SET_ID} record"
            )
        if self.assumed:
            line += f" (health of {', '.join(self.assumed)} unreadable: assumed healthy)"
        return line

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "legacy_share": float(self.legacy_share),
            "aws_share": float(self.aws_share),
            "legacy_healthy": self.legacy_healthy,
            "aws_healthy": self.aws_healthy,
            "detail": self.detail,
            "summary": self.describe(),
        }


def effective_answer(
    weights: Weights,
    *,
    legacy_healthy: bool | None,
    aws_healthy: bool | None,
    aws_evaluates_target: bool,
    detail: str = "",
) -> Answer:
    """Route 53's answer distribution for these weights and health checks.

    The alias target's own health (Evaluate Target Health) is taken to be that of the
    `aws` record's health check, which probes the same load balancer.
    """
    aws_known = True if aws_healthy is None else aws_healthy
    shares = answer_distribution(
        [
            WeightedRecord(
                LEGACY_SET_ID,
                weights.legacy,
                health_check_healthy=True if legacy_healthy is None else legacy_healthy,
            ),
            WeightedRecord(
                AWS_SET_ID,
                weights.aws,
                health_check_healthy=aws_known,
                evaluate_target_health=aws_evaluates_target,
                target_healthy=aws_known if aws_evaluates_target else None,
            ),
        ]
    )
    return Answer(
        weights=weights,
        legacy_healthy=legacy_healthy,
        aws_healthy=aws_healthy,
        legacy_share=shares[LEGACY_SET_ID],
        aws_share=shares[AWS_SET_ID],
        detail=detail,
    )
