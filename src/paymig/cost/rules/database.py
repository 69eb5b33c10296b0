"""Aurora PostgreSQL: the cluster (storage, I/O, backups, log export) and its instances.

An instance pays RDS Extended Support once its major version leaves standard support
(:mod:`paymig.cost.extended_support`).
"""

from __future__ import annotations

from paymig.cost import extended_support
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, int_attr, resource_hours, str_attr
from paymig.cost.units import MILLION, SECONDS_PER_MONTH, bytes_to_gb


def price_rds_cluster(ctx: Context, res: Resource) -> list[LineItem]:
    """Aurora cluster storage, I/O, backups beyond the free allowance, managed secret."""
    engine = res.attrs.get("engine")
    if engine != "aurora-postgresql":
        raise PricingError(f"{res.address}: engine {engine!r} has no pricing rule")
    storage_type = res.attrs.get("storage_type", "")
    if storage_type not in ("", "aurora"):
        raise PricingError(
            f"{res.address}: storage_type {storage_type!r} (I/O-Optimized) has no pricing rule"
        )
    u = ctx.usage
    growth = u.aurora_storage_growth_gb_per_month * ctx.scale
    storage = u.aurora_storage_gb + growth * u.storage_horizon_months
    ios = ctx.transactions_per_month * u.aurora_io_per_transaction
    retention = int_attr(res, "backup_retention_period", 1)
    backup = u.aurora_backup_daily_change_gb * ctx.scale * retention
    items = [
        priced(
            "Aurora",
            f"{res.label} storage",
            storage,
            ctx.price("aurora_storage_gb_month"),
            f"{u.aurora_storage_gb:g} GB + {growth:g} GB/month growth x "
            f"{u.storage_horizon_months} months, x price per GB-month",
        ),
        priced(
            "Aurora",
            f"{res.label} I/O",
            ios / MILLION,
            ctx.price("aurora_io_million"),
            f"{ctx.transactions_per_month:,.0f} tx/month x {u.aurora_io_per_transaction:g} "
            "I/O per tx, x price per million",
        ),
        priced(
            "Aurora",
            f"{res.label} backups",
            backup,
            ctx.price("aurora_backup_gb_month"),
            f"{u.aurora_backup_daily_change_gb:g} GB/day changed x scale {ctx.scale:g} x "
            f"{retention} days retention (the first 100% of cluster storage is free)",
        ),
    ]
    exports = res.attrs.get("enabled_cloudwatch_logs_exports") or []
    own_group = any(
        str(g.attrs.get("name", "")).startswith("/aws/rds/")
        for g in ctx.stack.of_type("aws_cloudwatch_log_group")
    )
    if "postgresql" in exports and not own_group:
        gb = u.aurora_log_gb_per_month * ctx.scale
        items.append(
            priced(
                "CloudWatch",
                f"{res.label} postgresql log export ingestion",
                gb,
                ctx.price("cw_logs_ingest_gb"),
                f"{u.aurora_log_gb_per_month:g} GB/month x scale {ctx.scale:g} into the group "
                "RDS creates (no log group in the stack), x price per GB ingested",
            )
        )
    if res.attrs.get("manage_master_user_password") is True:
        items.append(
            priced(
                "Secrets Manager",
                f"{res.label} RDS-managed master secret",
                1.0,
                ctx.price("secret_month"),
                "1 secret RDS creates for the master user",
            )
        )
    return items


def price_rds_cluster_instance(ctx: Context, res: Resource) -> list[LineItem]:
    """Aurora instance hours by class, Extended Support, enhanced-monitoring logs, PI."""
    instance_class = str_attr(res, "instance_class")
    items = [
        priced(
            "Aurora",
            f"{res.label} ({instance_class})",
            resource_hours(res),
            ctx.prices.instance_hour("aurora_postgresql", instance_class),
            f"{res.count} instance(s) x 730 h x {instance_class} hourly price",
        )
    ]
    items += extended_support.price_instance(ctx, res, instance_class)
    interval = int_attr(res, "monitoring_interval", 0)
    if interval > 0:
        samples = res.count * SECONDS_PER_MONTH / interval
        gb = bytes_to_gb(samples * ctx.usage.enhanced_monitoring_bytes_per_sample)
        items.append(
            priced(
                "CloudWatch",
                f"{res.label} enhanced monitoring logs",
                gb,
                ctx.price("cw_logs_ingest_gb"),
                f"one sample every {interval} s x "
                f"{ctx.usage.enhanced_monitoring_bytes_per_sample} bytes, ingested into "
                "RDSOSMetrics, x price per GB",
            )
        )
    if res.attrs.get("performance_insights_enabled") is True:
        retention = int_attr(res, "performance_insights_retention_period", 7)
        if retention > 7:
            raise PricingError(
                f"{res.address}: Performance Insights retention {retention} days exceeds the "
                "free 7 days and has no pricing rule"
            )
    return items
