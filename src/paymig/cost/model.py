"""Price a synthesized stack: one pure rule per billable Terraform resource type.

The inputs are the synthesized Terraform document (``cdk.tf.json``), the usage assumptions
(:class:`paymig.config.UsageConfig`), the price table and a traffic scale. Each rule turns
one resource's configured attributes (instance class, storage, Multi-AZ, retention, memory,
rule blocks ...) and the usage into :class:`LineItem` s whose ``basis`` states the formula
in words. Every resource type in the stack must either have a rule (:data:`RULES`) or be
listed as free with a reason (:data:`FREE_TYPES`); anything else fails loudly, so a new
resource can never be silently left out of the estimate.

Months are 730 hours (the AWS pricing convention). Free tiers are not deducted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from paymig.config import UsageConfig
from paymig.cost.prices import Price, PriceTable, PricingError

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
GB = 1e9  # decimal gigabytes, as AWS bills data
MILLION = 1e6
#: What one ALB capacity unit (LCU) covers, per the ELB pricing page's LCU definition.
LCU_NEW_CONNECTIONS_PER_S = 25.0
LCU_GB_PER_HOUR = 1.0
LCU_GB_PER_HOUR_LAMBDA = 0.4

_REFERENCE = re.compile(r"\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)[.}\[]")


@dataclass(frozen=True)
class LineItem:
    """One priced quantity: `monthly_usd = quantity * unit_usd`."""

    service: str
    resource: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float
    basis: str
    migration_only: bool = False

    def as_json(self) -> dict[str, Any]:
        """The item as the JSON output carries it."""
        return {
            "service": self.service,
            "resource": self.resource,
            "quantity": round(self.quantity, 6),
            "unit": self.unit,
            "unit_usd": self.unit_usd,
            "monthly_usd": round(self.monthly_usd, 6),
            "basis": self.basis,
        }


def priced(
    service: str,
    resource: str,
    quantity: float,
    price: Price,
    basis: str,
    *,
    unit: str | None = None,
    migration_only: bool = False,
) -> LineItem:
    """A line item of `quantity` units at `price` (quantity is in the price's unit)."""
    return LineItem(
        service=service,
        resource=resource,
        quantity=quantity,
        unit=unit or price.unit,
        unit_usd=price.usd,
        monthly_usd=quantity * price.usd,
        basis=basis,
        migration_only=migration_only,
    )


@dataclass(frozen=True)
class Resource:
    """One resource of the synthesized stack."""

    type: str
    logical_id: str
    attrs: Mapping[str, Any]

    @property
    def address(self) -> str:
        """Terraform address, `type.logical_id`."""
        return f"{self.type}.{self.logical_id}"

    @property
    def label(self) -> str:
        """A readable name: its `name`/`identifier`/`Name` tag literal, else its path."""
        for key in (
            "name",
            "identifier",
            "cluster_identifier",
            "replication_instance_id",
            "function_name",
            "bucket",
            "dashboard_name",
            "alarm_name",
        ):
            value = self.attrs.get(key)
            if isinstance(value, str) and "${" not in value:
                return value
        tags = self.attrs.get("tags")
        if isinstance(tags, Mapping):
            tag_name = tags.get("Name")
            if isinstance(tag_name, str) and "${" not in tag_name:
                return tag_name
        meta = self.attrs.get("//", {}).get("metadata", {})
        path = meta.get("path")
        return str(path) if isinstance(path, str) else self.address

    @property
    def count(self) -> int:
        """Instances this resource declares (Terraform `count` or `for_each`, default 1)."""
        each = self.attrs.get("for_each")
        if each is not None:
            if isinstance(each, (dict, list)):
                return len(each)
            raise PricingError(
                f"{self.address}: for_each {each!r} is not a literal collection; cannot price it"
            )
        value = self.attrs.get("count", 1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PricingError(
                f"{self.address}: count {value!r} is not a literal integer; cannot price it"
            )
        return value

    def references(self) -> set[tuple[str, str]]:
        """`(type, logical_id)` of every resource its attributes reference."""
        text = json.dumps({k: v for k, v in self.attrs.items() if k != "//"})
        return set(_REFERENCE.findall(text))

    def blocks(self, name: str) -> list[Mapping[str, Any]]:
        """A nested block as a list (synthesized JSON writes one block as a dict)."""
        value = self.attrs.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return [v for v in value if isinstance(v, Mapping)]
        return [value] if isinstance(value, Mapping) else []


@dataclass(frozen=True)
class StackView:
    """The resources of a synthesized document, by type."""

    document: Mapping[str, Any]

    @cached_property
    def by_type(self) -> dict[str, list[Resource]]:
        """Resources grouped by Terraform type, sorted by logical id."""
        out: dict[str, list[Resource]] = {}
        for kind, items in sorted(self.document.get("resource", {}).items()):
            out[kind] = [Resource(kind, lid, attrs) for lid, attrs in sorted(items.items())]
        return out

    def of_type(self, kind: str) -> list[Resource]:
        """All resources of one type."""
        return self.by_type.get(kind, [])

    def get(self, kind: str, logical_id: str) -> Resource | None:
        """One resource by type and logical id."""
        return next((r for r in self.of_type(kind) if r.logical_id == logical_id), None)

    def referenced(self, resource: Resource, kind: str) -> list[Resource]:
        """Resources of `kind` that `resource` references, directly or through an alias."""
        found: dict[str, Resource] = {}
        for ref_kind, ref_id in resource.references():
            target = self.get(ref_kind, ref_id)
            if target is None:
                continue
            if ref_kind == kind:
                found[target.logical_id] = target
            elif ref_kind == "aws_lambda_alias" and kind == "aws_lambda_function":
                for inner in self.referenced(target, kind):
                    found[inner.logical_id] = inner
        return list(found.values())


@dataclass(frozen=True)
class Context:
    """Everything a rule may read: the stack, the usage, the prices and the scale."""

    stack: StackView
    usage: UsageConfig
    prices: PriceTable
    scale: float = 1.0
    api_record_name: str | None = None

    def price(self, key: str) -> Price:
        """A price from the table."""
        return self.prices.get(key)

    @property
    def transactions_per_month(self) -> float:
        """Payments per month at this scale."""
        return self.usage.transactions_per_day * self.scale * DAYS_PER_MONTH

    @property
    def requests_per_month(self) -> float:
        """API requests per month at this scale."""
        return self.transactions_per_month * self.usage.api_requests_per_transaction

    @cached_property
    def api_functions(self) -> set[str]:
        """Logical ids of the Lambda functions that serve the API (targets of the ALB)."""
        found: set[str] = set()
        for perm in self.stack.of_type("aws_lambda_permission"):
            if perm.attrs.get("principal") == "elasticloadbalancing.amazonaws.com":
                found |= {f.logical_id for f in self.stack.referenced(perm, "aws_lambda_function")}
        for attachment in self.stack.of_type("aws_lb_target_group_attachment"):
            found |= {
                f.logical_id for f in self.stack.referenced(attachment, "aws_lambda_function")
            }
        functions = self.stack.of_type("aws_lambda_function")
        if not found and self.stack.of_type("aws_lb") and functions:
            if len(functions) == 1:
                return {functions[0].logical_id}
            raise PricingError(
                "cannot tell which Lambda function serves the API: no aws_lambda_permission "
                "for elasticloadbalancing.amazonaws.com or target group attachment names one"
            )
        return found

    def invocations(self, function: Resource) -> float:
        """Invocations per month of one function."""
        if function.logical_id in self.api_functions:
            return self.requests_per_month
        return float(self.usage.other_lambda_invocations_per_month)


Rule = Callable[[Context, Resource], list[LineItem]]
StackRule = Callable[[Context], list[LineItem]]


def bytes_to_gb(nbytes: float) -> float:
    """Bytes to decimal GB."""
    return nbytes / GB


def resource_hours(resource: Resource) -> float:
    """Resource-hours per month (count x 730)."""
    return resource.count * HOURS_PER_MONTH


def int_attr(resource: Resource, key: str, default: int) -> int:
    """An integer attribute, its provider default when unset, or an error if not literal."""
    value = resource.attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PricingError(f"{resource.address}: {key} {value!r} is not a literal integer")
    return value


def str_attr(resource: Resource, key: str) -> str:
    """A required literal string attribute."""
    value = resource.attrs.get(key)
    if not isinstance(value, str) or "${" in value:
        raise PricingError(f"{resource.address}: {key} {value!r} is not a literal string")
    return value


# --------------------------------------------------------------------------- network


def price_nat_gateway(ctx: Context, res: Resource) -> list[LineItem]:
    """NAT gateway hours, plus its even share of the NAT data processing."""
    gateways = sum(r.count for r in ctx.stack.of_type("aws_nat_gateway"))
    share = ctx.usage.nat_processed_gb_per_month * ctx.scale * res.count / gateways
    return [
        priced(
            "VPC",
            res.label,
            resource_hours(res),
            ctx.price("nat_gateway_hour"),
            "730 h x NAT gateway-hour price",
        ),
        priced(
            "VPC",
            f"{res.label} data processing",
            share,
            ctx.price("nat_gateway_gb"),
            f"NAT traffic {ctx.usage.nat_processed_gb_per_month:g} GB/month x scale "
            f"{ctx.scale:g}, split evenly over {gateways} gateway(s), x price per GB",
        ),
    ]


def price_eip(ctx: Context, res: Resource) -> list[LineItem]:
    """The public IPv4 charge of an Elastic IP."""
    return [
        priced(
            "VPC",
            f"{res.label} public IPv4",
            resource_hours(res),
            ctx.price("public_ipv4_hour"),
            "730 h x public IPv4 address-hour price",
        )
    ]


def price_vpn_connection(ctx: Context, res: Resource) -> list[LineItem]:
    """Site-to-Site VPN connection hours (data in over the VPN is free)."""
    return [
        priced(
            "VPN",
            res.label,
            resource_hours(res),
            ctx.price("vpn_connection_hour"),
            "730 h x VPN connection-hour price",
        )
    ]


def price_vpc_endpoint(ctx: Context, res: Resource) -> list[LineItem]:
    """Gateway endpoints are free; interface endpoints cost per AZ-hour."""
    kind = res.attrs.get("vpc_endpoint_type", "Gateway")
    if kind == "Gateway":
        return []
    if kind != "Interface":
        raise PricingError(f"{res.address}: vpc_endpoint_type {kind!r} has no pricing rule")
    subnets = res.attrs.get("subnet_ids") or []
    azs = len(subnets) if isinstance(subnets, list) else 0
    if azs == 0:
        raise PricingError(f"{res.address}: interface endpoint without literal subnet_ids")
    return [
        priced(
            "VPC",
            res.label,
            azs * resource_hours(res),
            ctx.price("interface_endpoint_hour"),
            f"{azs} AZ(s) x 730 h x interface endpoint-hour price",
        )
    ]


def usage_inter_az(ctx: Context) -> list[LineItem]:
    """API-to-database traffic crossing AZs, billed in both directions."""
    if not ctx.stack.of_type("aws_rds_cluster") or not ctx.stack.of_type("aws_lambda_function"):
        return []
    u = ctx.usage
    per_tx = u.request_bytes + u.response_bytes + u.db_bytes_per_transaction
    gb = bytes_to_gb(ctx.transactions_per_month * per_tx) * u.cross_az_traffic_share
    return [
        priced(
            "Data transfer",
            "inter-AZ API to Aurora",
            2 * gb,
            ctx.price("inter_az_gb"),
            f"{ctx.transactions_per_month:,.0f} tx/month x ({u.request_bytes} + "
            f"{u.response_bytes} + {u.db_bytes_per_transaction}) bytes x cross-AZ share "
            f"{u.cross_az_traffic_share:g}, billed out and in (x2) at price per GB",
            unit="GB (both directions)",
        )
    ]


# --------------------------------------------------------------------------- Aurora


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
    """Aurora instance hours by class, enhanced-monitoring logs, PI (free tier only)."""
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


# --------------------------------------------------------------------------- DMS


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


# --------------------------------------------------------------------------- Lambda


def _provisioned_units(ctx: Context, function: Resource) -> int:
    """Provisioned concurrency of a function: config blocks or the autoscaling minimum."""
    configured = 0
    for pc in ctx.stack.of_type("aws_lambda_provisioned_concurrency_config"):
        if function in ctx.stack.referenced(pc, "aws_lambda_function"):
            configured += int_attr(pc, "provisioned_concurrent_executions", 0)
    autoscaled = 0
    for target in ctx.stack.of_type("aws_appautoscaling_target"):
        if target.attrs.get("scalable_dimension") != "lambda:function:ProvisionedConcurrency":
            continue
        if function in ctx.stack.referenced(target, "aws_lambda_function"):
            autoscaled += int_attr(target, "min_capacity", 0)
    return max(configured, autoscaled)


def price_lambda_function(ctx: Context, res: Resource) -> list[LineItem]:
    """Requests, provisioned concurrency, duration (on PC, then on demand), X-Ray traces."""
    memory_mb = int_attr(res, "memory_size", 128)
    memory_gb = memory_mb / 1024
    arch = "arm" if "arm64" in (res.attrs.get("architectures") or []) else "x86"
    invocations = ctx.invocations(res)
    duration_s = ctx.usage.lambda_duration_ms / 1000
    used = invocations * duration_s * memory_gb
    units = _provisioned_units(ctx, res)
    capacity = units * memory_gb * SECONDS_PER_MONTH
    on_pc = min(used, capacity)
    items = [
        priced(
            "Lambda",
            f"{res.label} requests",
            invocations / MILLION,
            ctx.price("lambda_request_million"),
            f"{invocations:,.0f} invocations/month x price per million",
        )
    ]
    if units:
        items += [
            priced(
                "Lambda",
                f"{res.label} provisioned concurrency",
                capacity,
                ctx.price(f"lambda_provisioned_gb_second_{arch}"),
                f"{units} environment(s) x {memory_mb} MB x 730 h x 3600 s, x price per "
                "GB-second provisioned",
            ),
            priced(
                "Lambda",
                f"{res.label} duration on provisioned concurrency",
                on_pc,
                ctx.price(f"lambda_provisioned_duration_gb_second_{arch}"),
                f"min(used, provisioned) GB-seconds; used = invocations x "
                f"{ctx.usage.lambda_duration_ms:g} ms x {memory_mb} MB",
            ),
        ]
    items.append(
        priced(
            "Lambda",
            f"{res.label} duration on demand",
            used - on_pc,
            ctx.price(f"lambda_gb_second_{arch}"),
            f"invocations x {ctx.usage.lambda_duration_ms:g} ms x {memory_mb} MB beyond "
            "provisioned concurrency, x price per GB-second",
        )
    )
    tracing = res.blocks("tracing_config")
    if tracing and tracing[0].get("mode") == "Active":
        traces = invocations * ctx.usage.xray_sampled_share
        items.append(
            priced(
                "X-Ray",
                f"{res.label} traces",
                traces / MILLION,
                ctx.price("xray_traces_million"),
                f"invocations x sampled share {ctx.usage.xray_sampled_share:g}, x price per "
                "million traces",
            )
        )
    return items


# --------------------------------------------------------------------------- ALB, WAF


def price_lb(ctx: Context, res: Resource) -> list[LineItem]:
    """ALB hours, LCUs from traffic, public IPv4 per AZ, internet data out."""
    kind = res.attrs.get("load_balancer_type", "application")
    if kind != "application":
        raise PricingError(f"{res.address}: load_balancer_type {kind!r} has no pricing rule")
    u = ctx.usage
    per_hour = ctx.requests_per_month / HOURS_PER_MONTH
    gb_per_hour = bytes_to_gb(per_hour * (u.request_bytes + u.response_bytes))
    lambda_targets = any(
        tg.attrs.get("target_type") == "lambda" for tg in ctx.stack.of_type("aws_lb_target_group")
    )
    gb_per_lcu = LCU_GB_PER_HOUR_LAMBDA if lambda_targets else LCU_GB_PER_HOUR
    new_conn_per_s = per_hour / 3600
    lcus = max(new_conn_per_s / LCU_NEW_CONNECTIONS_PER_S, gb_per_hour / gb_per_lcu)
    items = [
        priced(
            "ELB", res.label, resource_hours(res), ctx.price("alb_hour"), "730 h x ALB-hour price"
        ),
        priced(
            "ELB",
            f"{res.label} LCUs",
            lcus * resource_hours(res),
            ctx.price("alb_lcu_hour"),
            f"max(new connections/s / 25, GB/h / {gb_per_lcu:g}) over the month, one "
            "connection per request, x 730 h x LCU-hour price",
            unit="LCU-hour",
        ),
    ]
    if res.attrs.get("internal") is not True:
        subnets = res.attrs.get("subnets") or res.blocks("subnet_mapping")
        azs = len(subnets) if isinstance(subnets, list) else 0
        if azs == 0:
            raise PricingError(f"{res.address}: internet-facing ALB without literal subnets")
        items += [
            priced(
                "VPC",
                f"{res.label} public IPv4",
                azs * resource_hours(res),
                ctx.price("public_ipv4_hour"),
                f"{azs} AZ(s), one public IPv4 each, x 730 h x IPv4-hour price",
            ),
            priced(
                "Data transfer",
                f"{res.label} responses to the internet",
                bytes_to_gb(ctx.requests_per_month * u.response_bytes),
                ctx.price("internet_out_gb"),
                f"{ctx.requests_per_month:,.0f} requests/month x {u.response_bytes} bytes, x "
                "price per GB out",
            ),
        ]
    return items


def price_wafv2_web_acl(ctx: Context, res: Resource) -> list[LineItem]:
    """Web ACL, one charge per rule block, and the requests it inspects."""
    rules = len(res.blocks("rule"))
    return [
        priced("WAF", res.label, float(res.count), ctx.price("waf_web_acl_month"), "1 web ACL"),
        priced(
            "WAF",
            f"{res.label} rules",
            float(rules * res.count),
            ctx.price("waf_rule_month"),
            f"{rules} rule block(s) in the ACL x price per rule",
        ),
        priced(
            "WAF",
            f"{res.label} requests",
            ctx.requests_per_month / MILLION,
            ctx.price("waf_request_million"),
            f"{ctx.requests_per_month:,.0f} requests/month inspected, x price per million",
        ),
    ]


# --------------------------------------------------------------------------- Route 53


def _is_aws_endpoint(res: Resource) -> bool:
    """Whether a health check probes an AWS resource (by reference) or not (on-prem)."""
    kinds = {kind for kind, _ in res.references()}
    return bool(kinds & {"aws_lb", "aws_eip", "aws_cloudfront_distribution", "aws_instance"})


def price_route53_health_check(ctx: Context, res: Resource) -> list[LineItem]:
    """Health check, AWS or non-AWS endpoint, plus each optional feature."""
    check_type = str(res.attrs.get("type", ""))
    if check_type in ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL"):
        return [
            priced(
                "Route 53",
                res.label,
                float(res.count),
                ctx.price("route53_health_check_aws_month"),
                f"{check_type} health check, basic AWS price",
            )
        ]
    aws = _is_aws_endpoint(res)
    features = []
    if check_type.startswith("HTTPS"):
        features.append("HTTPS")
    if check_type.endswith("STR_MATCH"):
        features.append("string matching")
    if int_attr(res, "request_interval", 30) == 10:
        features.append("fast interval")
    if res.attrs.get("measure_latency") is True:
        features.append("latency measurement")
    where = "AWS" if aws else "non-AWS"
    suffix = "aws" if aws else "non_aws"
    items = [
        priced(
            "Route 53",
            f"{res.label} ({where} endpoint)",
            float(res.count),
            ctx.price(f"route53_health_check_{suffix}_month"),
            f"1 health check of a {where} endpoint",
        )
    ]
    if features:
        items.append(
            priced(
                "Route 53",
                f"{res.label} optional features",
                float(len(features) * res.count),
                ctx.price(f"route53_health_check_feature_{suffix}_month"),
                f"{', '.join(features)} on a {where} endpoint, x price per feature",
            )
        )
    return items


def price_route53_record(ctx: Context, res: Resource) -> list[LineItem]:
    """Queries: alias records to AWS resources are free, others pay per million."""
    if res.blocks("alias"):
        return [
            priced(
                "Route 53",
                f"{res.label} queries (alias)",
                0.0,
                ctx.price("route53_standard_query_million"),
                "alias queries to an AWS resource are not charged",
                unit="1M queries (not charged)",
            )
        ]
    name = res.attrs.get("name")
    if ctx.api_record_name is None or name != ctx.api_record_name:
        return []  # auxiliary records (certificate validation) get negligible queries
    siblings = [
        r
        for r in ctx.stack.of_type("aws_route53_record")
        if r.attrs.get("name") == name and not r.blocks("alias")
    ]
    queries = ctx.requests_per_month * ctx.usage.dns_queries_per_request / len(siblings)
    return [
        priced(
            "Route 53",
            f"{res.label} queries",
            queries / MILLION,
            ctx.price("route53_standard_query_million"),
            f"requests x {ctx.usage.dns_queries_per_request:g} queries/request, shared by "
            f"{len(siblings)} non-alias record(s) of {name}, x price per million",
        )
    ]


def price_route53_zone(ctx: Context, res: Resource) -> list[LineItem]:
    """A hosted zone the stack creates."""
    return [
        priced(
            "Route 53",
            res.label,
            float(res.count),
            ctx.price("route53_hosted_zone_month"),
            "1 hosted zone",
        )
    ]


def usage_hosted_zone(ctx: Context) -> list[LineItem]:
    """The operator's existing hosted zone, when the stack writes records into it."""
    if not ctx.stack.of_type("aws_route53_record") or ctx.stack.of_type("aws_route53_zone"):
        return []
    return [
        priced(
            "Route 53",
            "hosted zone (dns.hosted_zone_id)",
            1.0,
            ctx.price("route53_hosted_zone_month"),
            "1 existing hosted zone holding the stack's records",
        )
    ]


# --------------------------------------------------------------------------- security


def price_kms_key(ctx: Context, res: Resource) -> list[LineItem]:
    """One customer managed key."""
    return [priced("KMS", res.label, float(res.count), ctx.price("kms_key_month"), "1 key-month")]


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


def price_acm_certificate(ctx: Context, res: Resource) -> list[LineItem]:
    """Public certificates are free; private CA certificates have no rule."""
    if res.attrs.get("certificate_authority_arn"):
        raise PricingError(f"{res.address}: private CA certificates have no pricing rule")
    return [
        priced(
            "ACM",
            res.label,
            float(res.count),
            ctx.price("acm_public_certificate"),
            "public certificate, not charged",
        )
    ]


# --------------------------------------------------------------------------- CloudWatch


def _log_ingestion(ctx: Context, res: Resource) -> tuple[float, str, str]:
    """Monthly GB ingested into a log group, the price key and why."""
    u = ctx.usage
    name = str(res.attrs.get("name", res.label))
    flows = [
        f
        for f in ctx.stack.of_type("aws_flow_log")
        if ("aws_cloudwatch_log_group", res.logical_id) in f.references()
    ]
    if flows:
        gb = u.flow_log_gb_per_month * ctx.scale
        return (
            gb,
            "cw_logs_vended_gb",
            f"VPC flow logs {u.flow_log_gb_per_month:g} GB/month x scale {ctx.scale:g}",
        )
    if name.startswith("aws-waf-logs-"):
        gb = bytes_to_gb(ctx.requests_per_month * u.waf_log_bytes_per_request)
        return gb, "cw_logs_vended_gb", f"WAF logs: requests x {u.waf_log_bytes_per_request} B"
    if name.startswith("/aws/lambda/"):
        functions = ctx.stack.of_type("aws_lambda_function")
        owner = [f for f in functions if name == f"/aws/lambda/{f.label}"] or (
            ctx.stack.referenced(res, "aws_lambda_function")
        )
        if not owner and len(functions) == 1:
            owner = functions
        if owner:
            gb = bytes_to_gb(ctx.invocations(owner[0]) * u.log_bytes_per_request)
            return (
                gb,
                "cw_logs_ingest_gb",
                f"Lambda logs: invocations x {u.log_bytes_per_request} B",
            )
    if name.startswith("/aws/rds/"):
        gb = u.aurora_log_gb_per_month * ctx.scale
        return (
            gb,
            "cw_logs_ingest_gb",
            f"PostgreSQL logs {u.aurora_log_gb_per_month:g} GB/month x scale {ctx.scale:g}",
        )
    return u.other_log_gb_per_month, "cw_logs_ingest_gb", "other log group"


def price_cloudwatch_log_group(ctx: Context, res: Resource) -> list[LineItem]:
    """Ingestion from usage by what writes the group; storage from its retention."""
    if res.attrs.get("log_group_class", "STANDARD") != "STANDARD":
        raise PricingError(
            f"{res.address}: log_group_class {res.attrs['log_group_class']!r} has no pricing rule"
        )
    gb, key, why = _log_ingestion(ctx, res)
    retention = int_attr(res, "retention_in_days", 0)
    if retention == 0:
        months = float(ctx.usage.log_storage_horizon_months)
        kept = f"never expires: {months:g} months kept"
    else:
        months = retention / DAYS_PER_MONTH
        kept = f"{retention} days retention = {months:.2f} months kept"
    return [
        priced(
            "CloudWatch",
            f"{res.label} ingestion",
            gb,
            ctx.price(key),
            f"{why}, x price per GB ingested",
        ),
        priced(
            "CloudWatch",
            f"{res.label} storage",
            gb * months,
            ctx.price("cw_logs_storage_gb_month"),
            f"{gb:.2f} GB/month x {kept} (no compression credit), x price per GB-month",
        ),
    ]


def price_cloudwatch_dashboard(ctx: Context, res: Resource) -> list[LineItem]:
    """One dashboard."""
    return [
        priced(
            "CloudWatch",
            f"dashboard {res.label}",
            float(res.count),
            ctx.price("cw_dashboard_month"),
            "1 dashboard-month",
        )
    ]


def price_cloudwatch_metric_alarm(ctx: Context, res: Resource) -> list[LineItem]:
    """A metric alarm: per metric evaluated, high resolution when the period is < 60 s."""
    queries = res.blocks("metric_query")
    if queries:
        metrics = [q for q in queries if q.get("metric")]
        periods = [int(m.get("period", 60)) for q in metrics for m in _as_list(q["metric"])]
    else:
        metrics = [res.attrs]
        periods = [int(res.attrs.get("period", 60))]
    high = any(p < 60 for p in periods)
    key = "cw_alarm_high_resolution_metric_month" if high else "cw_alarm_standard_metric_month"
    kind = "high-resolution" if high else "standard"
    return [
        priced(
            "CloudWatch",
            f"alarm {res.label}",
            float(len(metrics) * res.count),
            ctx.price(key),
            f"{len(metrics)} metric(s) evaluated by a {kind} alarm",
            unit="alarm metric-month",
        )
    ]


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    """A block value as a list of mappings."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return [value] if isinstance(value, Mapping) else []


def price_cloudwatch_composite_alarm(ctx: Context, res: Resource) -> list[LineItem]:
    """One composite alarm."""
    return [
        priced(
            "CloudWatch",
            f"composite alarm {res.label}",
            float(res.count),
            ctx.price("cw_alarm_composite_month"),
            "1 composite alarm-month",
        )
    ]


def usage_custom_metrics(ctx: Context) -> list[LineItem]:
    """Custom metrics published by the API (EMF) and the controller."""
    if not ctx.stack.of_type("aws_lambda_function"):
        return []
    count = ctx.usage.custom_metric_count
    return [
        priced(
            "CloudWatch",
            "custom metrics",
            float(count),
            ctx.price("cw_custom_metric_month"),
            f"{count} custom metrics x price per metric-month",
        )
    ]


# --------------------------------------------------------------------------- storage, messaging


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
        monthly = bytes_to_gb(ctx.requests_per_month * u.alb_log_bytes_per_request)
        return [
            priced(
                "S3",
                f"{res.label} (ALB access logs)",
                monthly * u.s3_log_retention_months,
                ctx.price("s3_standard_gb_month"),
                f"requests x {u.alb_log_bytes_per_request} B = {monthly:.2f} GB/month, kept "
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


def references_in(value: Any) -> list[tuple[str, str]]:
    """`(type, logical_id)` references inside any JSON value."""
    return _REFERENCE.findall(json.dumps(value))


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


# --------------------------------------------------------------------------- registries

#: Billable resource types and their pricing rules.
RULES: dict[str, Rule] = {
    "aws_nat_gateway": price_nat_gateway,
    "aws_eip": price_eip,
    "aws_vpn_connection": price_vpn_connection,
    "aws_vpc_endpoint": price_vpc_endpoint,
    "aws_rds_cluster": price_rds_cluster,
    "aws_rds_cluster_instance": price_rds_cluster_instance,
    "aws_dms_replication_instance": price_dms_replication_instance,
    "aws_lambda_function": price_lambda_function,
    "aws_lb": price_lb,
    "aws_wafv2_web_acl": price_wafv2_web_acl,
    "aws_route53_health_check": price_route53_health_check,
    "aws_route53_record": price_route53_record,
    "aws_route53_zone": price_route53_zone,
    "aws_kms_key": price_kms_key,
    "aws_secretsmanager_secret": price_secretsmanager_secret,
    "aws_acm_certificate": price_acm_certificate,
    "aws_cloudwatch_log_group": price_cloudwatch_log_group,
    "aws_cloudwatch_dashboard": price_cloudwatch_dashboard,
    "aws_cloudwatch_metric_alarm": price_cloudwatch_metric_alarm,
    "aws_cloudwatch_composite_alarm": price_cloudwatch_composite_alarm,
    "aws_ecr_repository": price_ecr_repository,
    "aws_s3_bucket": price_s3_bucket,
    "aws_sns_topic": price_sns_topic,
    "aws_sqs_queue": price_sqs_queue,
    "aws_dynamodb_table": price_dynamodb_table,
}

#: Usage-driven items that belong to the stack as a whole rather than to one resource.
STACK_RULES: tuple[StackRule, ...] = (
    usage_inter_az,
    usage_hosted_zone,
    usage_kms_requests,
    usage_secrets_api,
    usage_custom_metrics,
)

_PRICED_VIA = "no charge of its own; its cost is priced through "

#: Resource types with no charge of their own, each with the reason.
FREE_TYPES: dict[str, str] = {
    "aws_vpc": "VPCs are free",
    "aws_subnet": "subnets are free",
    "aws_route": "routes are free",
    "aws_route_table": "route tables are free",
    "aws_route_table_association": "route table associations are free",
    "aws_main_route_table_association": "route table associations are free",
    "aws_internet_gateway": "internet gateways are free (data out is priced per GB)",
    "aws_egress_only_internet_gateway": "egress-only internet gateways are free",
    "aws_default_security_group": "security groups are free",
    "aws_security_group": "security groups are free",
    "aws_security_group_rule": "security group rules are free",
    "aws_vpc_security_group_ingress_rule": "security group rules are free",
    "aws_vpc_security_group_egress_rule": "security group rules are free",
    "aws_network_acl": "network ACLs are free",
    "aws_network_acl_rule": "network ACL rules are free",
    "aws_default_network_acl": "network ACLs are free",
    "aws_vpc_dhcp_options": "DHCP option sets are free",
    "aws_vpc_dhcp_options_association": "DHCP option sets are free",
    "aws_customer_gateway": "customer gateways are free (the VPN connection is priced)",
    "aws_vpn_gateway": "virtual private gateways are free (the VPN connection is priced)",
    "aws_vpn_gateway_attachment": "VPN gateway attachments are free",
    "aws_vpn_gateway_route_propagation": "route propagation is free",
    "aws_vpn_connection_route": "VPN static routes are free",
    "aws_flow_log": _PRICED_VIA + "its CloudWatch log group (ingestion and storage)",
    "aws_iam_role": "IAM is free",
    "aws_iam_role_policy": "IAM is free",
    "aws_iam_policy": "IAM is free",
    "aws_iam_role_policy_attachment": "IAM is free",
    "aws_iam_service_linked_role": "IAM is free",
    "aws_iam_instance_profile": "IAM is free",
    "aws_kms_alias": "aliases are free (the key is priced)",
    "aws_kms_key_policy": "key policies are free (the key is priced)",
    "aws_db_subnet_group": "subnet groups are free",
    "aws_rds_cluster_parameter_group": "parameter groups are free",
    "aws_db_parameter_group": "parameter groups are free",
    "aws_rds_cluster_role_association": "role associations are free",
    "aws_dms_replication_subnet_group": "subnet groups are free",
    "aws_dms_endpoint": _PRICED_VIA + "the replication instance",
    "aws_dms_replication_task": _PRICED_VIA + "the replication instance (and DMS transfer)",
    "aws_dms_certificate": "DMS certificates are free",
    "aws_dms_event_subscription": _PRICED_VIA + "its SNS topic",
    "aws_lambda_alias": "aliases are free",
    "aws_lambda_permission": "permissions are free",
    "aws_lambda_invocation": (
        "one invocation of the validation function per apply whose inputs changed: a "
        "handful of requests a month, priced with that function"
    ),
    "aws_lambda_provisioned_concurrency_config": _PRICED_VIA + "its aws_lambda_function",
    "aws_lambda_code_signing_config": "code signing configurations are free",
    "aws_lambda_function_event_invoke_config": "invoke configurations are free",
    "aws_signer_signing_profile": "signing profiles are free (signing jobs are not billed)",
    "aws_appautoscaling_target": _PRICED_VIA + "the scaled resource (provisioned concurrency)",
    "aws_appautoscaling_policy": "Application Auto Scaling is free",
    "aws_lb_listener": _PRICED_VIA + "its aws_lb (hours and LCUs)",
    "aws_lb_listener_rule": _PRICED_VIA + "its aws_lb (rule evaluations in LCUs)",
    "aws_lb_target_group": _PRICED_VIA + "its aws_lb",
    "aws_lb_target_group_attachment": _PRICED_VIA + "its aws_lb",
    "aws_wafv2_web_acl_association": _PRICED_VIA + "the web ACL",
    "aws_wafv2_web_acl_logging_configuration": _PRICED_VIA + "its CloudWatch log group",
    "aws_acm_certificate_validation": "validation is free",
    "aws_sns_topic_subscription": _PRICED_VIA + "its topic (email/HTTPS deliveries negligible)",
    "aws_sns_topic_policy": "topic policies are free",
    "aws_sqs_queue_policy": "queue policies are free",
    "aws_sqs_queue_redrive_policy": "redrive policies are free",
    "aws_s3_bucket_versioning": _PRICED_VIA + "the bucket's storage",
    "aws_s3_bucket_public_access_block": "bucket settings are free",
    "aws_s3_bucket_server_side_encryption_configuration": "SSE-S3 is free",
    "aws_s3_bucket_lifecycle_configuration": "lifecycle rules are free",
    "aws_s3_bucket_policy": "bucket policies are free",
    "aws_s3_bucket_ownership_controls": "bucket settings are free",
    "aws_s3_bucket_logging": _PRICED_VIA + "the target bucket's storage",
    "aws_ecr_lifecycle_policy": "lifecycle policies are free",
    "aws_ecr_repository_policy": "repository policies are free",
    "aws_secretsmanager_secret_rotation": _PRICED_VIA + "the secret and its rotation function",
    "aws_secretsmanager_secret_version": _PRICED_VIA + "the secret",
    "aws_secretsmanager_secret_policy": "secret policies are free",
    "aws_cloudwatch_log_resource_policy": "resource policies are free",
    "aws_cloudwatch_log_metric_filter": _PRICED_VIA + "custom metrics (usage.custom_metric_count)",
    "aws_xray_sampling_rule": "sampling rules are free (recorded traces are priced)",
    "aws_kms_grant": "grants are free",
    "aws_lb_listener_certificate": "listener certificates are free",
    "aws_wafv2_ip_set": "IP sets are free (the rules using them are priced)",
    "aws_wafv2_regex_pattern_set": "pattern sets are free (the rules using them are priced)",
    "aws_cloudwatch_event_rule": "rules on the default bus matching AWS service events are free",
    "aws_cloudwatch_event_target": "targets are free (the invoked resource is priced)",
    "aws_cloudwatch_log_stream": _PRICED_VIA + "its log group",
    "aws_s3_bucket_notification": "bucket notifications are free",
    "aws_db_event_subscription": _PRICED_VIA + "its SNS topic",
    "aws_rds_cluster_endpoint": "custom cluster endpoints are free",
}

#: Types known to be billable for which no rule exists yet: they fail with this message.
UNPRICED_BILLABLE: frozenset[str] = frozenset(
    {
        "aws_db_instance",
        "aws_instance",
        "aws_ebs_volume",
        "aws_elasticache_cluster",
        "aws_elasticache_replication_group",
        "aws_ecs_service",
        "aws_cloudfront_distribution",
        "aws_shield_protection",
        "aws_dms_replication_config",
        "aws_rds_global_cluster",
        "aws_ec2_transit_gateway",
        "aws_globalaccelerator_accelerator",
        "aws_kinesis_firehose_delivery_stream",
        "aws_cloudwatch_event_bus",
        "aws_synthetics_canary",
        "aws_acmpca_certificate_authority",
        "aws_backup_plan",
    }
)


def check_priceable(stack: StackView) -> None:
    """Fail loudly when a resource type has neither a rule nor a reason to be free."""
    for kind, items in stack.by_type.items():
        if kind in RULES or kind in FREE_TYPES:
            continue
        example = items[0].address
        if kind in UNPRICED_BILLABLE:
            raise PricingError(
                f"{kind} is billable but has no pricing rule ({len(items)} in the stack, e.g. "
                f"{example}); add one to paymig.cost.model.RULES"
            )
        raise PricingError(
            f"{kind} is neither priced nor listed as free ({len(items)} in the stack, e.g. "
            f"{example}); add a rule to paymig.cost.model.RULES or a reason to FREE_TYPES"
        )


# --------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class Estimate:
    """The priced line items of one stack at one scale."""

    items: tuple[LineItem, ...]
    scale: float
    migration_months: int = 1

    @property
    def total_monthly_usd(self) -> float:
        """Monthly total during the migration (DMS running)."""
        return float(sum(i.monthly_usd for i in self.items))

    @property
    def steady_state_monthly_usd(self) -> float:
        """Monthly total after DMS is removed."""
        return float(sum(i.monthly_usd for i in self.items if not i.migration_only))

    def steady_state_items(self) -> list[LineItem]:
        """The items that remain after the migration."""
        return [i for i in self.items if not i.migration_only]

    def largest(self, n: int = 3, *, steady_state: bool = False) -> list[LineItem]:
        """The `n` most expensive items (of the steady state if asked)."""
        pool = self.steady_state_items() if steady_state else list(self.items)
        return sorted(pool, key=lambda i: (-i.monthly_usd, i.service, i.resource))[:n]

    def by_service(self) -> dict[str, list[LineItem]]:
        """Items grouped by service, most expensive service first."""
        groups: dict[str, list[LineItem]] = {}
        for item in self.items:
            groups.setdefault(item.service, []).append(item)
        return dict(
            sorted(groups.items(), key=lambda kv: (-sum(i.monthly_usd for i in kv[1]), kv[0]))
        )


def estimate(
    document: Mapping[str, Any],
    usage: UsageConfig,
    prices: PriceTable,
    *,
    scale: float = 1.0,
    api_record_name: str | None = None,
) -> Estimate:
    """Price every resource of a synthesized document at a traffic scale."""
    if scale <= 0:
        raise PricingError(f"--scale: must be greater than 0, got {scale:g}")
    stack = StackView(document)
    check_priceable(stack)
    ctx = Context(stack, usage, prices, scale=scale, api_record_name=api_record_name)
    items: list[LineItem] = []
    for kind, resources in stack.by_type.items():
        rule = RULES.get(kind)
        if rule is None:
            continue
        for res in resources:
            items.extend(rule(ctx, res))
    for stack_rule in STACK_RULES:
        items.extend(stack_rule(ctx))
    return Estimate(items=tuple(items), scale=scale, migration_months=usage.migration_months)


def service_total(items: Iterable[LineItem], service: str) -> float:
    """Monthly USD of one service's items."""
    return float(sum(i.monthly_usd for i in items if i.service == service))


def budget_gate(estimate: Estimate, budget: float) -> list[str]:
    """Failures when the migration-period or steady-state estimate exceeds the budget.

    An empty list means both fit. Each failure names the three largest items of the
    total that does not fit.
    """
    failures = []
    checks = (
        ("migration-period", estimate.total_monthly_usd, False),
        ("steady-state", estimate.steady_state_monthly_usd, True),
    )
    for label, total, steady in checks:
        if total > budget:
            top = ", ".join(
                f"{i.service} {i.resource} ${i.monthly_usd:,.2f}"
                for i in estimate.largest(3, steady_state=steady)
            )
            failures.append(
                f"{label} estimate ${total:,.2f}/month exceeds the budget ${budget:,.2f}/month; "
                f"largest items: {top}"
            )
    return failures
