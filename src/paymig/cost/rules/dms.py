"""AWS DMS: the replication instance and the transfer of the initial load and CDC."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource, int_attr, resource_hours, str_attr


def price_dms_replication_instance(ctx: Context, res: Resource) -> list[LineItem]:
    """DMS instance and storage (x2 Multi-AZ), initial-load and CDC transfer."""
    instance_class = str_attr(res, "replication_instance_class")
    multi_az = res.attrs.get("multi_az") is True
    copies = 2 if multi_az else 1
    storage = int_attr(res, "allocated_storage", 50)
    u = ctx.usage
    az_note = "x2 for Multi-AZ (primary and standby)" if multi_az else "single-AZ"
    cdc = u.cdc_gb_per_month * ctx.scale
    return [
        priced(
            "DMS",
            f"{res.label} ({instance_class})",
            copies * resource_hours(res),
            ctx.prices.instance_hour("dms", instance_class),
            f"730 h x {instance_class} hourly price, {az_note}",
            migration_only=True,
        ),
        priced(
            "DMS",
            f"{res.label} storage",
            copies * storage * res.count,
            ctx.price("dms_storage_gb_month"),
            f"{storage} GB allocated x price per GB-month, {az_note}",
            migration_only=True,
        ),
        priced(
            "Data transfer",
            "DMS full load in over the VPN",
            u.dms_full_load_gb,
            ctx.price("internet_in_gb"),
            f"{u.dms_full_load_gb:g} GB initial load from on-prem into AWS (inbound is free); "
            "counted in full in the month it runs",
            migration_only=True,
        ),
        priced(
            "Data transfer",
            "DMS full load to Aurora (inter-AZ)",
            2 * u.dms_full_load_gb * u.dms_cross_az_share,
            ctx.price("inter_az_gb"),
            f"{u.dms_full_load_gb:g} GB x cross-AZ share {u.dms_cross_az_share:g}, billed out "
            "and in (x2); counted in full in the month it runs",
            unit="GB (both directions)",
            migration_only=True,
        ),
        priced(
            "Data transfer",
            "DMS CDC to Aurora (inter-AZ)",
            2 * cdc * u.dms_cross_az_share,
            ctx.price("inter_az_gb"),
            f"{u.cdc_gb_per_month:g} GB/month CDC x scale {ctx.scale:g} x cross-AZ share "
            f"{u.dms_cross_az_share:g}, billed out and in (x2)",
            unit="GB (both directions)",
            migration_only=True,
        ),
        priced(
            "CloudWatch",
            f"{res.label} task logs ingestion",
            u.dms_log_gb_per_month * res.count,
            ctx.price("cw_logs_ingest_gb"),
            f"{u.dms_log_gb_per_month:g} GB/month of task logs in the group DMS creates "
            "(dms-tasks-<instance>), x price per GB ingested",
            migration_only=True,
        ),
    ]
