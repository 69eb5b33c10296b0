"""Stored data: ECR images, S3 buckets and DynamoDB tables."""

from __future__ import annotations

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource, int_attr, references_in
from paymig.cost.units import HOURS_PER_MONTH, MILLION, bytes_to_gb


def price_ecr_repository(ctx: Context, res: Resource) -> list[LineItem]:
    """Image storage."""
    return [
        priced(
            "ECR",
            res.label,
            ctx.usage.ecr_storage_gb * res.count,
            ctx.price("ecr_storage_gb_month"),
            f"{ctx.usage.ecr_storage_gb:g} GB of images x price per GB-month",
        )
    ]


def price_s3_bucket(ctx: Context, res: Resource) -> list[LineItem]:
    """Storage: ALB access logs kept for the retention, or a small default."""
    u = ctx.usage
    is_alb_logs = any(
        ("aws_s3_bucket", res.logical_id) in {(k, i) for k, i in references_in(block)}
        for lb in ctx.stack.of_type("aws_lb")
        for block in lb.blocks("access_logs")
    )
    if is_alb_logs:
        logged = ctx.requests_per_month + traffic.route53_requests_to_alb(ctx)
        monthly = bytes_to_gb(logged * u.alb_log_bytes_per_request)
        return [
            priced(
                "S3",
                f"{res.label} (ALB access logs)",
                monthly * u.s3_log_retention_months,
                ctx.price("s3_standard_gb_month"),
                f"{logged:,.0f} requests (API and Route 53 health checks) x "
                f"{u.alb_log_bytes_per_request} B = {monthly:.2f} GB/month, kept "
                f"{u.s3_log_retention_months} months, x price per GB-month",
            )
        ]
    return [
        priced(
            "S3",
            res.label,
            u.s3_other_bucket_gb * res.count,
            ctx.price("s3_standard_gb_month"),
            f"{u.s3_other_bucket_gb:g} GB stored x price per GB-month",
        )
    ]


def price_dynamodb_table(ctx: Context, res: Resource) -> list[LineItem]:
    """On-demand requests or provisioned capacity, storage and PITR."""
    u = ctx.usage
    mode = res.attrs.get("billing_mode", "PROVISIONED")
    if mode == "PAY_PER_REQUEST":
        items = [
            priced(
                "DynamoDB",
                f"{res.label} writes",
                u.dynamodb_writes_per_month / MILLION,
                ctx.price("dynamodb_write_million"),
                f"{u.dynamodb_writes_per_month:,} write units/month x price per million",
            ),
            priced(
                "DynamoDB",
                f"{res.label} reads",
                u.dynamodb_reads_per_month / MILLION,
                ctx.price("dynamodb_read_million"),
                f"{u.dynamodb_reads_per_month:,} read units/month x price per million",
            ),
        ]
    else:
        wcu = int_attr(res, "write_capacity", 0)
        rcu = int_attr(res, "read_capacity", 0)
        items = [
            priced(
                "DynamoDB",
                f"{res.label} write capacity",
                wcu * HOURS_PER_MONTH,
                ctx.price("dynamodb_wcu_hour"),
                f"{wcu} WCU x 730 h x price per WCU-hour",
            ),
            priced(
                "DynamoDB",
                f"{res.label} read capacity",
                rcu * HOURS_PER_MONTH,
                ctx.price("dynamodb_rcu_hour"),
                f"{rcu} RCU x 730 h x price per RCU-hour",
            ),
        ]
    items.append(
        priced(
            "DynamoDB",
            f"{res.label} storage",
            u.dynamodb_storage_gb,
            ctx.price("dynamodb_storage_gb_month"),
            f"{u.dynamodb_storage_gb:g} GB x price per GB-month",
        )
    )
    pitr = res.blocks("point_in_time_recovery")
    if pitr and pitr[0].get("enabled") is True:
        items.append(
            priced(
                "DynamoDB",
                f"{res.label} point-in-time recovery",
                u.dynamodb_storage_gb,
                ctx.price("dynamodb_pitr_gb_month"),
                f"{u.dynamodb_storage_gb:g} GB x continuous backup price per GB-month",
            )
        )
    return items
