"""Read what the "armed" gate judges: composite -> alarm topic -> rollback function.

The composite alarm's actions and rule (CloudWatch), the alarm topic's subscriptions
and their filter policies (SNS: a Lambda subscription is confirmed at once, so one still
`PendingConfirmation` is broken), and the rollback function's state and reserved
concurrency (Lambda). The verdict is :func:`paymig.runtime.controller.gates.evaluate_gates`'s.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from paymig.naming import composite_alarm_name, rollback_function_name
from paymig.runtime.controller.gates import ArmedFacts
from paymig.runtime.controller.metrics import Metrics


class RollbackReadiness:
    """Reads the automatic rollback's chain for one environment."""

    def __init__(self, metrics: Metrics, sns: Any, functions: Any, stack_name: str) -> None:
        """Wrap the CloudWatch reader and SNS and Lambda clients."""
        self.metrics = metrics
        self.sns = sns
        self.functions = functions
        self.stack_name = stack_name

    def _subscriptions(self, topic_arn: str) -> list[dict[str, Any]]:
        """The topic's subscriptions, each with its filter policy if it has one."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TopicArn": topic_arn}
        while True:
            page = self.sns.list_subscriptions_by_topic(**kwargs)
            found.extend(page.get("Subscriptions", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        for sub in found:
            arn = sub.get("SubscriptionArn", "")
            if sub.get("Protocol") != "lambda" or not arn.startswith("arn:"):
                continue
            attributes = self.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
            for key in ("FilterPolicy", "FilterPolicyScope"):
                if key in attributes:
                    sub[key] = attributes[key]
        return found

    def _function(self) -> dict[str, Any] | None:
        """GetFunction's answer for the rollback function, or None if it does not exist."""
        try:
            response: dict[str, Any] = self.functions.get_function(
                FunctionName=rollback_function_name(self.stack_name)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return response

    def read(self, alarm_topic_arn: str) -> ArmedFacts:
        """Everything the armed gate needs."""
        composite = self.metrics.alarms().get(composite_alarm_name(self.stack_name))
        return ArmedFacts(
            composite=composite,
            alarm_topic_arn=alarm_topic_arn,
            subscriptions=self._subscriptions(alarm_topic_arn),
            function=self._function(),
        )
