"""SNS topics and SQS queues."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.lifetime import timing_of
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource
from paymig.cost.units import MILLION


def price_sns_topic(ctx: Context, res: Resource) -> list[LineItem]:
    """Publishes to a topic."""
    publishes = ctx.usage.sns_publishes_per_month * res.count
    return [
        priced(
            "SNS",
            res.label,
            publishes / MILLION,
            ctx.price("sns_publish_million"),
            f"{publishes:,} publishes/month x price per million",
            timing=timing_of(ctx, res),  # DMS's event topic goes with it
        )
    ]


def price_sqs_queue(ctx: Context, res: Resource) -> list[LineItem]:
    """Requests to a queue."""
    requests = ctx.usage.sqs_requests_per_month * res.count
    return [
        priced(
            "SQS",
            res.label,
            requests / MILLION,
            ctx.price("sqs_request_million"),
            f"{requests:,} requests/month (polling included) x price per million",
            timing=timing_of(ctx, res),  # the validation function's DLQ goes with it
        )
    ]
