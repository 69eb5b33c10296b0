"""The event Amazon SNS invokes a subscribed Lambda function with.

Shape from AWS Lambda Developer Guide, "Using AWS Lambda with Amazon SNS"
(https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html), "Example Amazon SNS message
event", and AWS's aws-lambda-go test data (events/testdata/sns-event.json,
cloudwatch-alarm-sns-payload-*.json), which carries ``"MessageAttributes": {}`` for the
notifications CloudWatch alarms publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paymig.errors import PaymigError
from paymig.semantics.sns_filter import ATTRIBUTE_TYPES, SnsAttribute

#: "Amazon SNS message attributes": String.Array and Number "isn't supported for AWS
#: Lambda subscriptions ... it's passed as the String data type in the JSON payload that
#: Amazon SNS delivers to Lambda."
LAMBDA_STRING_TYPES = frozenset({"String.Array", "Number"})


class InvalidSnsEventError(PaymigError):
    """An argument that cannot describe an SNS delivery (the message names it)."""


def lambda_event(
    *,
    topic_arn: str,
    subscription_arn: str,
    message_id: str,
    message: str,
    timestamp: datetime,
    subject: str | None,
    attributes: Mapping[str, SnsAttribute],
    signature: str,
    signing_cert_url: str,
) -> dict[str, Any]:
    """The Lambda event for one SNS delivery, key for key as AWS documents it.

    ``subject`` None gives ``"Subject": null`` (a message published without a subject;
    the documented example has one). The signature and its certificate URL are the
    caller's: only SNS's private key can produce a real signature.
    """
    region = _subscription_region(topic_arn, subscription_arn)
    if timestamp.tzinfo is None:
        raise InvalidSnsEventError("timestamp: must carry a time zone")
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": sns_timestamp(timestamp),
                    "SignatureVersion": "1",
                    "Signature": signature,
                    "SigningCertUrl": signing_cert_url,
                    # The guide's example shows this URL HTML-escaped (&amp;); the
                    # delivered JSON carries a plain ampersand.
                    "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/"
                    f"?Action=Unsubscribe&SubscriptionArn={subscription_arn}",
                    "MessageAttributes": lambda_message_attributes(attributes),
                },
            }
        ]
    }


def lambda_message_attributes(attributes: Mapping[str, SnsAttribute]) -> dict[str, Any]:
    """Message attributes as a Lambda subscriber sees them (Number, String.Array -> String)."""
    delivered: dict[str, Any] = {}
    for name, attribute in attributes.items():
        if attribute.type not in ATTRIBUTE_TYPES:
            raise InvalidSnsEventError(
                f"attributes[{name!r}]: unsupported data type {attribute.type!r}"
            )
        kind = "String" if attribute.type in LAMBDA_STRING_TYPES else attribute.type
        delivered[name] = {"Type": kind, "Value": attribute.value}
    return delivered


def sns_timestamp(moment: datetime) -> str:
    """SNS's timestamp format: UTC, milliseconds, ``Z`` (``2019-01-02T12:45:07.000Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _subscription_region(topic_arn: str, subscription_arn: str) -> str:
    """The region both ARNs name; a subscription ARN is its topic's ARN plus an id."""
    fields = topic_arn.split(":")
    if len(fields) != 6 or fields[:3] != ["arn", "aws", "sns"] or not fields[3]:
        raise InvalidSnsEventError(f"topic_arn: {topic_arn!r} is not an SNS topic ARN")
    if not subscription_arn.startswith(topic_arn + ":") or subscription_arn == topic_arn + ":":
        raise InvalidSnsEventError(
            f"subscription_arn: {subscription_arn!r} is not a subscription of {topic_arn!r}"
        )
    return fields[3]
