"""Alarm notifications delivered as CloudWatch and SNS deliver them.

When an alarm changes state, CloudWatch publishes the documented JSON message to each
topic of the state's actions (:mod:`paymig.semantics.cloudwatch_notification`). The
rehearsal publishes it to the emulator's topic (which gives the message its id), then
does what SNS does for each subscription the emulator holds: match the subscription's
filter policy with SNS's semantics (:mod:`paymig.semantics.sns_filter`; alarm
notifications carry no message attributes), check that the function's resource policy
lets SNS invoke it from that topic ("Using AWS Lambda with Amazon SNS"), and invoke the
function asynchronously with the event SNS builds
(:mod:`paymig.semantics.sns_lambda_event`). Messages the invoked function publishes
itself go through the same route, so a function that would trigger itself shows.

SNS signs each message with its private key; the rehearsal has none, so ``Signature``
and ``SigningCertUrl`` are empty (no handler here verifies them). E-mail and HTTPS
subscriptions are recorded, never contacted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paymig.rehearsal.alarms import AlarmDefinition, Transition
from paymig.rehearsal.lambda_runtime import Invocation
from paymig.semantics.cloudwatch_alarm import AlarmState
from paymig.semantics.cloudwatch_notification import (
    AlarmIdentity,
    StateChange,
    TriggeringChild,
    composite_alarm_notification,
    expression_query,
    metric_alarm_notification,
    metric_query_trigger,
    metric_stat_query,
)
from paymig.semantics.sns_filter import SnsAttribute, matches
from paymig.semantics.sns_lambda_event import lambda_event

#: Region display names CloudWatch writes in notifications.
REGION_NAMES = {"us-east-2": "US East (Ohio)", "us-east-1": "US East (N. Virginia)"}
#: A function's own messages are followed this many hops, no further.
MAX_HOPS = 3


@dataclass(frozen=True)
class CompositeDefinition:
    """The composite alarm as the synthesized stack defines it (references resolved)."""

    name: str
    arn: str
    description: str | None
    rule: str
    actions_enabled: bool
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    insufficient_data_actions: tuple[str, ...] = ()

    def actions_for(self, state: AlarmState) -> tuple[str, ...]:
        """The topics notified on entering `state`."""
        if not self.actions_enabled:
            return ()
        return {
            AlarmState.ALARM: self.alarm_actions,
            AlarmState.OK: self.ok_actions,
            AlarmState.INSUFFICIENT_DATA: self.insufficient_data_actions,
        }[state]


def subject(alarm: str, state: AlarmState, region: str) -> str:
    """The notification's subject, e.g. ``ALARM: "name" in US East (Ohio)`` (100 chars)."""
    return f'{state.value}: "{alarm}" in {REGION_NAMES.get(region, region)}'[:100]


def metric_message(
    definition: AlarmDefinition, transition: Transition, account: str, region: str
) -> dict[str, Any]:
    """The message a metric alarm's state change publishes."""
    identity = _identity(definition.name, definition.description, account, region, definition)
    change = StateChange(transition.new, transition.old, transition.reason, transition.wall)
    metrics = [
        metric_stat_query(
            q.id,
            namespace=q.namespace,
            metric_name=q.name,
            dimensions=dict(q.dimensions),
            period=q.period,
            stat=q.stat,
            returned=q.returned,
        )
        for q in definition.queries
    ]
    if definition.expression is not None:
        query_id, text, label = definition.expression
        metrics.append(expression_query(query_id, text, label, returned=True))
    return metric_alarm_notification(
        identity,
        change,
        metric_query_trigger(definition.alarm, metrics),
        configuration_updated_at=definition.configuration_updated,
    )


def composite_message(
    definition: CompositeDefinition,
    transition: Transition,
    children: Sequence[Transition],
    account: str,
    region: str,
) -> dict[str, Any]:
    """The message a composite alarm's state change publishes."""
    identity = _identity(definition.name, definition.description, account, region, definition)
    change = StateChange(transition.new, transition.old, transition.reason, transition.wall)
    triggering = [
        TriggeringChild(f"arn:aws:cloudwatch:{region}:{account}:alarm:{c.alarm}", c.new, c.wall)
        for c in children
    ]
    return composite_alarm_notification(
        identity, change, alarm_rule=definition.rule, triggering_children=triggering
    )


def _identity(
    name: str,
    description: str | None,
    account: str,
    region: str,
    actions: AlarmDefinition | CompositeDefinition,
) -> AlarmIdentity:
    return AlarmIdentity(
        name=name,
        description=description,
        account_id=account,
        region=region,
        region_name=REGION_NAMES.get(region, region),
        ok_actions=actions.ok_actions,
        alarm_actions=actions.alarm_actions,
        insufficient_data_actions=actions.insufficient_data_actions,
    )


def sns_may_invoke(policy: Mapping[str, Any] | None, topic_arn: str) -> bool:
    """Whether a function's resource policy lets SNS invoke it for messages of `topic_arn`."""
    for item in (policy or {}).get("Statement", []):
        principal = item.get("Principal") or {}
        service = principal.get("Service") if isinstance(principal, Mapping) else principal
        actions = item.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if item.get("Effect") != "Allow" or service != "sns.amazonaws.com":
            continue
        if not {"lambda:InvokeFunction", "lambda:*"} & set(actions):
            continue
        source = (item.get("Condition") or {}).get("ArnLike", {}).get("AWS:SourceArn")
        if source in (None, topic_arn):
            return True
    return False


@dataclass
class Delivery:
    """One message at one subscription: matched or not, and what the function did."""

    topic: str
    subscription: str
    protocol: str
    endpoint: str
    message_id: str
    matched: bool
    detail: str
    published_at: float
    invocation: Invocation | None = None
    hop: int = 0  # 0: published by CloudWatch; n: by the function invoked n - 1 hops away
    source: str = "CloudWatch"


@dataclass
class Deliverer:
    """Publishes notifications and delivers them to the topics' subscriptions."""

    sns: Any
    lambda_client: Any
    invoke: Callable[[str, dict[str, Any]], Invocation]
    clock: Callable[[], float]
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(
        self,
        topic: str,
        subject_text: str | None,
        message: str,
        attributes: Mapping[str, SnsAttribute] | None = None,
        *,
        source: str = "CloudWatch",
    ) -> list[Delivery]:
        """Publish to the emulator's topic (for the message id); deliver it."""
        published_at = self.clock()
        answer = self.sns.publish(
            TopicArn=topic, Message=message, **({"Subject": subject_text} if subject_text else {})
        )
        return self.route(
            topic,
            subject_text,
            message,
            dict(attributes or {}),
            message_id=str(answer["MessageId"]),
            published_at=published_at,
            source=source,
        )

    def route(
        self,
        topic: str,
        subject_text: str | None,
        message: str,
        attributes: Mapping[str, SnsAttribute],
        *,
        message_id: str,
        published_at: float,
        hop: int = 0,
        source: str = "CloudWatch",
    ) -> list[Delivery]:
        """Deliver one published message to each subscription of `topic`."""
        made: list[Delivery] = []
        listed = self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        for sub in listed:
            arn = str(sub["SubscriptionArn"])
            found = self.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
            policy = json.loads(found["FilterPolicy"]) if found.get("FilterPolicy") else {}
            scope = found.get("FilterPolicyScope", "MessageAttributes")
            matched = matches(policy, scope, message=message, attributes=attributes)
            delivery = Delivery(
                topic,
                arn,
                str(sub["Protocol"]),
                str(sub["Endpoint"]),
                message_id,
                matched,
                f"filter {scope} {json.dumps(policy)}: "
                + ("matches" if matched else "does not match"),
                published_at,
                hop=hop,
                source=source,
            )
            made.append(delivery)
            if matched and delivery.protocol == "lambda":
                self._invoke_async(delivery, subject_text, message, attributes)
        with self._lock:
            self.deliveries += made
        return made

    def _invoke_async(
        self,
        delivery: Delivery,
        subject_text: str | None,
        message: str,
        attributes: Mapping[str, SnsAttribute],
    ) -> None:
        """Lambda's asynchronous invocation: SNS does not wait for the function."""
        try:
            policy_text = self.lambda_client.get_policy(FunctionName=delivery.endpoint)["Policy"]
            allowed = sns_may_invoke(json.loads(policy_text), delivery.topic)
        except Exception:  # no resource policy at all
            allowed = False
        if not allowed:
            delivery.detail += "; the function's resource policy does not let SNS invoke it"
            return
        event = lambda_event(
            topic_arn=delivery.topic,
            subscription_arn=delivery.subscription,
            message_id=delivery.message_id,
            message=message,
            timestamp=datetime.now(UTC),
            subject=subject_text,
            attributes=attributes,
            signature="",
            signing_cert_url="",
        )

        def run() -> None:
            try:
                delivery.invocation = self.invoke(delivery.endpoint, event)
            except Exception as error:  # recorded; the rehearsal reports it
                with self._lock:
                    self.errors.append(f"{delivery.endpoint}: {type(error).__name__}: {error}")
                return
            if delivery.hop < MAX_HOPS:
                self._follow(delivery.invocation, delivery.hop + 1)

        thread = threading.Thread(target=run, name="paymig-sns-delivery", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _follow(self, invocation: Invocation, hop: int) -> None:
        """Deliver what the function published itself."""
        for call in invocation.calls:
            if call["operation"] != "Publish" or not call["allowed"]:
                continue
            params = call["params"]
            attrs = {
                name: SnsAttribute(str(v.get("DataType")), str(v.get("StringValue", "")))
                for name, v in (params.get("MessageAttributes") or {}).items()
            }
            topic = str(params.get("TopicArn") or params.get("TargetArn"))
            # The function's publish reached the emulator already: only SNS's routing
            # is played here (the id names the function's message; SNS's id is unknown).
            self.route(
                topic,
                params.get("Subject"),
                str(params["Message"]),
                attrs,
                message_id=f"{invocation.function}-publish-{hop}",
                published_at=self.clock(),
                hop=hop,
                source=invocation.function,
            )

    def snapshot(self) -> list[Delivery]:
        """The deliveries made so far."""
        with self._lock:
            return list(self.deliveries)

    def wait(self, timeout: float) -> None:
        """Wait for the invocations started so far."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
