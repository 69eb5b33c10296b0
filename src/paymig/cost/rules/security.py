"""KMS keys, their rotations and requests; Secrets Manager secrets and API calls."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.lifetime import timing_of
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource, int_attr

#: Days between automatic rotations of a key when `rotation_period_in_days` is unset.
DEFAULT_ROTATION_DAYS = 365


def _rotations(ctx: Context, res: Resource) -> tuple[int, int]:
    """Rotations of a key done by the end of the month (keys are created at the start)."""
    period = int_attr(res, "rotation_period_in_days", DEFAULT_ROTATION_DAYS)
    age = (ctx.month.end - ctx.plan.start.first_day).days
    return max(0, (age - 1) // period), period


def price_kms_key(ctx: Context, res: Resource) -> list[LineItem]:
    """One customer managed key, plus $1/month for each of its first two rotations."""
    timing = timing_of(ctx, res)  # a key only DMS uses goes with it
    items = [
        priced(
            "KMS",
            res.label,
            float(res.count),
            ctx.price("kms_key_month"),
            "1 key-month",
            timing=timing,
        )
    ]
    if res.attrs.get("enable_key_rotation") is not True:
        return items
    done, period = _rotations(ctx, res)
    charged = min(done, int(ctx.quantity("kms_charged_rotations")))
    if charged:
        items.append(
            priced(
                "KMS",
                f"{res.label} rotations",
                float(charged * res.count),
                ctx.price("kms_key_rotation_month"),
                f"{done} rotation(s) every {period} days since {ctx.plan.start} by {ctx.month}; "
                "the first two each add a key-month (later ones are free)",
                timing=timing,
            )
        )
    return items


def usage_kms_requests(ctx: Context) -> list[LineItem]:
    """KMS API requests across all keys."""
    if not ctx.stack.of_type("aws_kms_key"):
        return []
    requests = ctx.usage.kms_requests_per_month * ctx.scale
    return [
        priced(
            "KMS",
            "API requests",
            requests / 10_000,
            ctx.price("kms_requests_10k"),
            f"{ctx.usage.kms_requests_per_month:,} requests/month x scale {ctx.scale:g}, x "
            "price per 10,000",
        )
    ]


def price_secretsmanager_secret(ctx: Context, res: Resource) -> list[LineItem]:
    """One secret."""
    return [
        priced(
            "Secrets Manager",
            res.label,
            float(res.count),
            ctx.price("secret_month"),
            "1 secret-month",
        )
    ]


def usage_secrets_api(ctx: Context) -> list[LineItem]:
    """Secrets Manager API calls, when the stack holds a secret."""
    managed = any(
        r.attrs.get("manage_master_user_password") is True
        for r in ctx.stack.of_type("aws_rds_cluster")
    )
    if not ctx.stack.of_type("aws_secretsmanager_secret") and not managed:
        return []
    calls = ctx.usage.secrets_api_calls_per_month
    return [
        priced(
            "Secrets Manager",
            "API calls",
            calls / 10_000,
            ctx.price("secrets_api_10k"),
            f"{calls:,} calls/month x price per 10,000",
        )
    ]
