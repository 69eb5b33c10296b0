"""The HTTPS listener's forward weights over the blue/green target groups.

The controller owns these weights as it owns Route 53's: Terraform sets them on the
first apply and then ignores them, so an apply never reverts a rollback's listener half.
Every call is one bounded attempt, retried on throttling and connection errors until the
caller's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from paymig.naming import DEPLOYMENT_ALIASES, HTTPS_LISTENER_PORT, alb_name, target_group_name
from paymig.rollback_timing import (
    LISTENER_STEP_SECONDS,
)
from paymig.runtime.controller.calls import AwsCallError, Retrier


class ListenerWeights:
    """Read and set the HTTPS listener's forward weights over the blue/green groups."""

    def __init__(
        self,
        client: Any,
        stack_name: str,
        *,
        retrier: Retrier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap an ELBv2 client (one attempt per call) for the environment's load balancer."""
        self.client = client
        self.stack_name = stack_name
        self.retrier = retrier or Retrier(clock=clock)
        self._clock = clock
        self._listener_arn: str | None = None
        self._groups: dict[str, str] | None = None

    def _call(self, operation: str, deadline: float | None, **kwargs: Any) -> Any:
        """One call, retried until the deadline (default: the listener step's bound)."""
        method = getattr(self.client, operation)
        until = self._clock() + LISTENER_STEP_SECONDS if deadline is None else deadline
        return self.retrier.call(lambda: method(**kwargs), deadline=until)

    def listener_arn(self, deadline: float | None = None) -> str:
        """ARN of the load balancer's port-443 listener."""
        if self._listener_arn is None:
            name = alb_name(self.stack_name)
            lbs = self._call("describe_load_balancers", deadline, Names=[name])["LoadBalancers"]
            listeners = self._call(
                "describe_listeners", deadline, LoadBalancerArn=lbs[0]["LoadBalancerArn"]
            )
            https = [li for li in listeners["Listeners"] if li.get("Port") == HTTPS_LISTENER_PORT]
            if not https:
                raise AwsCallError(f"load balancer {name} has no listener on port 443")
            self._listener_arn = str(https[0]["ListenerArn"])
        return self._listener_arn

    def target_groups(self, deadline: float | None = None) -> dict[str, str]:
        """Target group ARN of each alias."""
        if self._groups is None:
            names = {target_group_name(self.stack_name, a): a for a in DEPLOYMENT_ALIASES}
            found = self._call("describe_target_groups", deadline, Names=list(names))
            self._groups = {
                names[g["TargetGroupName"]]: g["TargetGroupArn"] for g in found["TargetGroups"]
            }
        return self._groups

    def read(self, deadline: float | None = None) -> dict[str, int]:
        """Weight of each alias in the listener's default forward action (0 if absent)."""
        arn = self.listener_arn(deadline)
        listener = self._call("describe_listeners", deadline, ListenerArns=[arn])["Listeners"][0]
        by_arn = {v: k for k, v in self.target_groups(deadline).items()}
        weights = dict.fromkeys(DEPLOYMENT_ALIASES, 0)
        for action in listener.get("DefaultActions", []):
            if action.get("Type") != "forward":
                continue
            groups = action.get("ForwardConfig", {}).get("TargetGroups")
            if groups is None and action.get("TargetGroupArn"):
                groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
            for group in groups or []:
                alias = by_arn.get(group["TargetGroupArn"])
                if alias is not None:
                    weights[alias] = int(group.get("Weight", 1))
        return weights

    def set(self, weights: Mapping[str, int], deadline: float | None = None) -> None:
        """Forward to the blue/green groups with `weights`."""
        groups = self.target_groups(deadline)
        self._call(
            "modify_listener",
            deadline,
            ListenerArn=self.listener_arn(deadline),
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": groups[alias], "Weight": weights[alias]}
                            for alias in DEPLOYMENT_ALIASES
                        ]
                    },
                }
            ],
        )
