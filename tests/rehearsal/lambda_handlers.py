"""Handlers the runtime tests run as Lambda functions (in their own process)."""

from __future__ import annotations

import os
from typing import Any

import boto3


def publish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Publish to each topic of the event; report who the function ran as, and its env."""
    sns = boto3.client("sns")
    published = []
    for topic in event["topics"]:
        try:
            sns.publish(TopicArn=topic, Message="from the test function")
            published.append("ok")
        except sns.exceptions.ClientError as error:
            published.append(error.response["Error"]["Code"])
    return {
        "published": published,
        "identity": boto3.client("sts").get_caller_identity()["Arn"],
        "variables": {k: v for k, v in os.environ.items() if k.startswith(("TEST_", "DB_"))},
        "access_key_prefix": os.environ["AWS_ACCESS_KEY_ID"][:4],
        "invoked": context.invoked_function_arn,
    }


def fail(event: dict[str, Any], context: Any) -> None:
    """Raise, as a failing handler does."""
    raise RuntimeError("the handler failed")
