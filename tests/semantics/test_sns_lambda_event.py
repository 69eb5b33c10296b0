"""The SNS -> Lambda event, against "Using AWS Lambda with Amazon SNS" (Example Amazon SNS
message event) and "Amazon SNS message attributes" (Number and String.Array arrive at
Lambda as String).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paymig.semantics.sns_filter import SnsAttribute
from paymig.semantics.sns_lambda_event import InvalidSnsEventError, lambda_event, sns_timestamp

TOPIC = "arn:aws:sns:us-east-2:123456789012:sns-lambda"
SUBSCRIPTION = f"{TOPIC}:21be56ed-a058-49f5-8c98-aedd2564c486"
AT = datetime(2019, 1, 2, 12, 45, 7, tzinfo=UTC)

#: The keys of the documented example event, per level.
RECORD_KEYS = {"EventVersion", "EventSubscriptionArn", "EventSource", "Sns"}
SNS_KEYS = {
    "SignatureVersion",
    "Timestamp",
    "Signature",
    "SigningCertUrl",
    "MessageId",
    "Message",
    "MessageAttributes",
    "Type",
    "UnsubscribeUrl",
    "TopicArn",
    "Subject",
}


def event(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "topic_arn": TOPIC,
        "subscription_arn": SUBSCRIPTION,
        "message_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "message": "Hello from SNS!",
        "timestamp": AT,
        "subject": "TestInvoke",
        "attributes": {
            "Test": SnsAttribute("String", "TestString"),
            "TestBinary": SnsAttribute("Binary", "TestBinary"),
        },
        "signature": "c2lnbmF0dXJl",
        "signing_cert_url": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem",
    }
    arguments.update(overrides)
    return lambda_event(**arguments)  # type: ignore[arg-type]


def test_documented_example_shape() -> None:
    built = event()
    (record,) = built["Records"]  # type: ignore[misc]
    assert set(record) == RECORD_KEYS
    assert set(record["Sns"]) == SNS_KEYS
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"] == SUBSCRIPTION
    assert record["Sns"] == {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TOPIC,
        "Subject": "TestInvoke",
        "Message": "Hello from SNS!",
        "Timestamp": "2019-01-02T12:45:07.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertUrl": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem",
        "UnsubscribeUrl": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={SUBSCRIPTION}",
        "MessageAttributes": {
            "Test": {"Type": "String", "Value": "TestString"},
            "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
        },
    }


def test_number_and_string_array_arrive_as_string() -> None:
    attributes = {
        "count": SnsAttribute("Number", "3"),
        "tags": SnsAttribute("String.Array", '["a", 1]'),
    }
    delivered = event(attributes=attributes)["Records"][0]["Sns"]["MessageAttributes"]  # type: ignore[index]
    assert delivered == {
        "count": {"Type": "String", "Value": "3"},
        "tags": {"Type": "String", "Value": '["a", 1]'},
    }


def test_no_subject_and_no_attributes() -> None:
    sns = event(subject=None, attributes={})["Records"][0]["Sns"]  # type: ignore[index]
    assert sns["Subject"] is None
    assert sns["MessageAttributes"] == {}


def test_timestamps_are_utc_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 3, 1, 14, 0, 0, 123_999, tzinfo=plus_two)
    assert sns_timestamp(moment) == "2024-03-01T12:00:00.123Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timestamp": datetime(2024, 1, 1)}, "timestamp: must carry a time zone"),
        ({"topic_arn": "arn:aws:sqs:us-east-2:1:q"}, "not an SNS topic ARN"),
        ({"subscription_arn": "arn:aws:sns:us-east-2:1:other:x"}, "not a subscription of"),
        ({"subscription_arn": TOPIC + ":"}, "not a subscription of"),
        ({"attributes": {"a": SnsAttribute("Float", "1")}}, "unsupported data type 'Float'"),
    ],
)
def test_invalid_arguments(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSnsEventError, match=message):
        event(**overrides)
