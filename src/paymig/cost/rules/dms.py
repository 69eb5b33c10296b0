"""AWS DMS: the replication instance, and the data each replication task moves.

A task has no charge of its own; what it moves does. A full load is a one-off in the load
month: its transfer into AWS (free), to Aurora across AZs, the Aurora write I/O of the
rows it loads and, with validation on, the Aurora read I/O of validating them. Changes
(CDC) flow every month DMS runs: across AZs into Aurora, or out over the VPN when the
target is on-premises (reverse replication). An endpoint is in AWS when its engine is
Aurora or it references an RDS resource; any other endpoint is the on-premises database.
"""

from __future__ import annotations

import json

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, Timing, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, int_attr, references_in, resource_hours, str_attr
from paymig.cost.units import GB, MILLION

_FULL_LOAD = ("full-load", "full-load-and-cdc")
_CDC = ("cdc", "full-load-and-cdc")


def _included_storage(ctx: Context, instance_class: str) -> float:
    """Storage the class includes: burstable (t2/t3) classes less than the others."""
    family = instance_class.split(".")[1] if "." in instance_class else ""
    burstable = family.startswith(("t2", "t3"))
    key = "dms_included_storage_gb_burstable" if burstable else "dms_included_storage_gb"
    return ctx.quantity(key)


def _task_log_group(ctx: Context, res: Resource) -> bool:
    """Whether the stack creates the `dms-tasks-<instance id>` log group (priced there)."""
    name = f"dms-tasks-{res.attrs.get('replication_instance_id')}"
    return any(g.attrs.get("name") == name for g in ctx.stack.of_type("aws_cloudwatch_log_group"))


def tasks_on(ctx: Context, instance: Resource) -> list[Resource]:
    """The replication tasks that run on an instance."""
    return [
        t
        for t in ctx.stack.of_type("aws_dms_replication_task")
        if instance in ctx.stack.referenced(t, "aws_dms_replication_instance")
    ]


def price_dms_replication_instance(ctx: Context, res: Resource) -> list[LineItem]:
    """DMS instance and storage beyond the included allowance (x2 Multi-AZ), task logs."""
    instance_class = str_attr(res, "replication_instance_class")
    multi_az = res.attrs.get("multi_az") is True
    copies = 2 if multi_az else 1
    storage = int_attr(res, "allocated_storage", 50)
    included = _included_storage(ctx, instance_class)
    billed = max(0.0, storage - included)
    az_note = "x2 for Multi-AZ (primary and standby)" if multi_az else "single-AZ"
    items = [
        priced(
            "DMS",
            f"{res.label} ({instance_class})",
            copies * resource_hours(res),
            ctx.prices.instance_hour("dms", instance_class),
            f"730 h x {instance_class} hourly price, {az_note}",
            timing=Timing.migration,
        ),
        priced(
            "DMS",
            f"{res.label} storage",
            copies * billed * res.count,
            ctx.price("dms_storage_gb_month"),
            f"max(0, {storage} GB allocated - {included:g} GB included with {instance_class}) "
            f"x price per GB-month, {az_note}",
            timing=Timing.migration,
        ),
    ]
    if not _task_log_group(ctx, res):
        tasks = max(1, len(tasks_on(ctx, res)))
        items.append(
            priced(
                "CloudWatch",
                f"{res.label} task logs ingestion",
                ctx.usage.dms_log_gb_per_month * tasks * res.count,
                ctx.price("cw_logs_ingest_gb"),
                f"{ctx.usage.dms_log_gb_per_month:g} GB/month x {tasks} task(s) into the group "
                "DMS creates (dms-tasks-<instance>; not in the stack), x price per GB ingested",
                timing=Timing.migration,
            )
        )
    return items


def _in_aws(endpoint: Resource) -> bool:
    """Whether a DMS endpoint is an AWS database (Aurora or an RDS reference)."""
    if str(endpoint.attrs.get("engine_name", "")).startswith("aurora"):
        return True
    return bool({k for k, _ in endpoint.references()} & {"aws_rds_cluster", "aws_db_instance"})


def _endpoint(ctx: Context, task: Resource, attribute: str) -> Resource:
    """The source or target endpoint a task references."""
    for kind, lid in references_in(task.attrs.get(attribute)):
        found = ctx.stack.get(kind, lid) if kind == "aws_dms_endpoint" else None
        if found is not None:
            return found
    raise PricingError(f"{task.address}: {attribute} names no aws_dms_endpoint in the stack")


def _validation_on(task: Resource) -> bool:
    """Whether the task validates rows (`ValidationSettings.EnableValidation`)."""
    raw = task.attrs.get("replication_task_settings")
    if not isinstance(raw, str):
        return False
    try:
        settings = json.loads(raw)
    except json.JSONDecodeError:
        raise PricingError(f"{task.address}: replication_task_settings is not JSON") from None
    validation = settings.get("ValidationSettings") or {}
    return validation.get("EnableValidation") is True


def _full_load(ctx: Context, task: Resource, label: str) -> list[LineItem]:
    """The one-off initial load into Aurora: transfer, write I/O, validation reads."""
    u = ctx.usage
    load_bytes = u.dms_full_load_gb * GB
    write_ios = (
        load_bytes * u.aurora_load_write_amplification / ctx.quantity("aurora_write_io_bytes")
    )
    items = [
        priced(
            "Data transfer",
            f"{label} full load in over the VPN",
            u.dms_full_load_gb,
            ctx.price("internet_in_gb"),
            f"{u.dms_full_load_gb:g} GB initial load from on-prem into AWS (inbound is free)",
            timing=Timing.one_off,
        ),
        priced(
            "Data transfer",
            f"{label} full load to Aurora (inter-AZ)",
            2 * u.dms_full_load_gb * u.dms_cross_az_share,
            ctx.price("inter_az_gb"),
            f"{u.dms_full_load_gb:g} GB x cross-AZ share {u.dms_cross_az_share:g}, billed out "
            "and in (x2)",
            unit="GB (both directions)",
            timing=Timing.one_off,
        ),
        priced(
            "Aurora",
            f"{label} full load write I/O",
            write_ios / MILLION,
            ctx.price("aurora_io_million"),
            f"{u.dms_full_load_gb:g} GB x {u.aurora_load_write_amplification:g} log bytes per "
            f"byte / {ctx.quantity('aurora_write_io_bytes'):g} B per write I/O, x price per "
            "million",
            timing=Timing.one_off,
        ),
    ]
    if _validation_on(task):
        reads = load_bytes / ctx.quantity("aurora_page_bytes")
        items.append(
            priced(
                "Aurora",
                f"{label} row validation read I/O",
                reads / MILLION,
                ctx.price("aurora_io_million"),
                f"validation re-reads the {u.dms_full_load_gb:g} GB loaded: / "
                f"{ctx.quantity('aurora_page_bytes'):g} B pages read from storage, x price per "
                "million",
                timing=Timing.one_off,
            )
        )
    return items


def _changes(ctx: Context, label: str, source_in_aws: bool, target_in_aws: bool) -> LineItem:
    """A month of changes: into Aurora across AZs, or out of AWS over the VPN."""
    u = ctx.usage
    cdc = u.cdc_gb_per_month * ctx.scale
    if target_in_aws:
        return priced(
            "Data transfer",
            f"{label} CDC to Aurora (inter-AZ)",
            2 * cdc * u.dms_cross_az_share,
            ctx.price("inter_az_gb"),
            f"{u.cdc_gb_per_month:g} GB/month CDC x scale {ctx.scale:g} x cross-AZ share "
            f"{u.dms_cross_az_share:g}, billed out and in (x2)",
            unit="GB (both directions)",
            timing=Timing.migration,
        )
    origin = "from Aurora " if source_in_aws else ""
    return priced(
        "Data transfer",
        f"{label} CDC {origin}to on-prem (VPN data out)",
        cdc,
        ctx.price("vpn_data_out_gb"),
        f"{u.cdc_gb_per_month:g} GB/month CDC x scale {ctx.scale:g} replicated out of AWS over "
        "the VPN, x price per GB out",
        timing=Timing.migration,
    )


def price_dms_replication_task(ctx: Context, res: Resource) -> list[LineItem]:
    """What a task moves: its one-off full load and its monthly changes."""
    kind = str(res.attrs.get("migration_type", ""))
    if kind not in ("full-load", "cdc", "full-load-and-cdc"):
        raise PricingError(f"{res.address}: migration_type {kind!r} has no pricing rule")
    source = _in_aws(_endpoint(ctx, res, "source_endpoint_arn"))
    target = _in_aws(_endpoint(ctx, res, "target_endpoint_arn"))
    label = str(res.attrs.get("replication_task_id", res.label))
    items: list[LineItem] = []
    if kind in _FULL_LOAD:
        if source or not target:
            raise PricingError(
                f"{res.address}: a full load from {'AWS' if source else 'on-prem'} to "
                f"{'AWS' if target else 'on-prem'} has no pricing rule (only on-prem to Aurora)"
            )
        items += _full_load(ctx, res, label)
    if kind in _CDC:
        items.append(_changes(ctx, label, source, target))
    return items
