"""The cost model: each formula against a hand calculation, totals, stack changes, the
registry of priced/free types, the budget gate and `paymig cost`.

Resources the current stack does not have yet are written here as small hand-made
Terraform resource dicts (data in the synthesized JSON's shape, not mocks).
"""

from __future__ import annotations

import ast
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from paymig.cli import main
from paymig.config import PaymigConfig, UsageConfig
from paymig.cost.budget import budget_gate
from paymig.cost.context import ConfigFacts
from paymig.cost.estimate import Estimate, check_priceable, estimate, service_total
from paymig.cost.line_item import LineItem, Timing
from paymig.cost.months import MigrationPlan, Month
from paymig.cost.prices import PricingError, load_price_table, parse_price_table
from paymig.cost.registry import FREE_TYPES, RULES
from paymig.cost.report import lambda_by_volume, print_table, render_markdown, to_json
from paymig.cost.stack_view import StackView
from paymig.cost.timeline import month_table
from paymig.errors import CommandFailedError

REPO = Path(__file__).resolve().parents[1]
PRICES = load_price_table()
USAGE = UsageConfig()
API = "api.payments.example.com"
PLAN = MigrationPlan(Month(2026, 12), 3)
FACTS = ConfigFacts(api_record_name=API, write_target="aurora")

# Hand arithmetic shared by the tests: 50,000 tx/day over a 730-hour month.
TX = 50_000 * 730 / 24  # 1,520,833.33 payments (= API requests) per month
MONTH_S = 730 * 3600  # 2,628,000 s
PEAK_S = 4 * 730 / 24 * 3600  # 4 peak hours a day: 438,000 s a month
OFF_S = MONTH_S - PEAK_S
# One HTTPS Route 53 check of the ALB every 30 s from 16 checkers
R53 = 16 * MONTH_S / 30  # 1,401,600 requests a month


def doc(**resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A synthesized-document shape from `type={logical_id: attrs}`."""
    return {"resource": resources}


def price(
    document: dict[str, Any],
    scale: float = 1.0,
    usage: UsageConfig = USAGE,
    *,
    month: Month | None = None,
    facts: ConfigFacts = FACTS,
) -> Estimate:
    return estimate(document, usage, PRICES, plan=PLAN, month=month, scale=scale, facts=facts)


def item(est: Estimate, resource: str) -> LineItem:
    found = [i for i in est.items if i.resource == resource]
    assert len(found) == 1, [i.resource for i in est.items]
    return found[0]


def sampled(rate: float) -> float:
    """X-Ray's default rule by hand: 1 trace/s, then 5% of the rest."""
    return min(rate, 1.0) + 0.05 * max(rate - 1.0, 0.0)


# --------------------------------------------------------------------------- a full stack

FULL: dict[str, Any] = {
    "resource": {
        "aws_vpc": {"vpc": {"cidr_block": "10.0.0.0/16"}},
        "aws_subnet": {f"app{i}": {"vpc_id": "${aws_vpc.vpc.id}"} for i in range(3)},
        "aws_nat_gateway": {
            "nat_a": {"tags": {"Name": "nat-a"}},
            "nat_b": {"tags": {"Name": "nat-b"}},
        },
        "aws_eip": {"eip_a": {"tags": {"Name": "eip-a"}}, "eip_b": {"tags": {"Name": "eip-b"}}},
        "aws_vpn_connection": {"vpn": {"tags": {"Name": "vpn"}}},
        "aws_vpc_endpoint": {
            "s3": {"vpc_endpoint_type": "Gateway", "tags": {"Name": "s3-endpoint"}},
            "sm": {
                "vpc_endpoint_type": "Interface",
                "subnet_ids": ["${aws_subnet.app0.id}", "${aws_subnet.app1.id}"],
                "tags": {"Name": "secrets-endpoint"},
            },
        },
        "aws_rds_cluster": {
            "db": {
                "cluster_identifier": "paymig-db",
                "engine": "aurora-postgresql",
                "backup_retention_period": 35,
                "manage_master_user_password": True,
                "enabled_cloudwatch_logs_exports": ["postgresql"],
                "tags": {"Name": "db"},
            }
        },
        "aws_rds_cluster_instance": {
            "writer": {
                "identifier": "db-1",
                "instance_class": "db.r6g.large",
                "monitoring_interval": 60,
                "performance_insights_enabled": True,
                "performance_insights_retention_period": 7,
            },
            "reader": {"identifier": "db-2", "instance_class": "db.r6g.large"},
        },
        "aws_dms_replication_instance": {
            "dms": {
                "replication_instance_id": "dms",
                "replication_instance_class": "dms.r5.large",
                "allocated_storage": 150,
                "multi_az": True,
                "tags": {"Name": "dms"},
            }
        },
        "aws_dms_endpoint": {
            "source": {
                "endpoint_id": "onprem",
                "endpoint_type": "source",
                "engine_name": "postgres",
            },
            "target": {
                "endpoint_id": "aurora",
                "endpoint_type": "target",
                "engine_name": "aurora-postgresql",
            },
        },
        "aws_dms_replication_task": {
            "task": {
                "replication_task_id": "task",
                "migration_type": "full-load-and-cdc",
                "replication_instance_arn": "${aws_dms_replication_instance.dms.replication_instance_arn}",
                "source_endpoint_arn": "${aws_dms_endpoint.source.endpoint_arn}",
                "target_endpoint_arn": "${aws_dms_endpoint.target.endpoint_arn}",
                "replication_task_settings": json.dumps(
                    {"ValidationSettings": {"EnableValidation": True}}
                ),
            }
        },
        "aws_lambda_function": {
            "api": {
                "function_name": "paymig-api",
                "memory_size": 1024,
                "package_type": "Image",
                "tracing_config": {"mode": "Active"},
            }
        },
        "aws_lambda_alias": {"live": {"function_name": "${aws_lambda_function.api.function_name}"}},
        "aws_lambda_permission": {
            "alb": {
                "principal": "elasticloadbalancing.amazonaws.com",
                "function_name": "${aws_lambda_function.api.function_name}",
                "qualifier": "${aws_lambda_alias.live.name}",
            }
        },
        "aws_appautoscaling_target": {
            "pc": {
                "service_namespace": "lambda",
                "scalable_dimension": "lambda:function:ProvisionedConcurrency",
                "resource_id": "function:${aws_lambda_function.api.function_name}:live",
                "min_capacity": 2,
                "max_capacity": 10,
            }
        },
        "aws_lb": {
            "alb": {
                "name": "paymig-alb",
                "load_balancer_type": "application",
                "internal": False,
                "subnets": ["${aws_subnet.app0.id}", "${aws_subnet.app1.id}", "x"],
                "access_logs": {"bucket": "${aws_s3_bucket.logs.bucket}", "enabled": True},
            }
        },
        "aws_lb_target_group": {"blue": {"target_type": "lambda"}},
        "aws_s3_bucket": {"logs": {"bucket": "paymig-alb-logs"}},
        "aws_wafv2_web_acl": {
            "acl": {
                "name": "paymig-acl",
                "rule": [{"name": "sqli"}, {"name": "common"}, {"name": "bad"}, {"name": "rate"}],
            }
        },
        "aws_route53_health_check": {
            "legacy": {
                "type": "HTTPS",
                "fqdn": "legacy-api.payments.example.com",
                "request_interval": 30,
                "tags": {"Name": "hc-legacy"},
            },
            "aws": {
                "type": "HTTPS",
                "fqdn": "${aws_lb.alb.dns_name}",
                "request_interval": 30,
                "tags": {"Name": "hc-aws"},
            },
        },
        "aws_route53_record": {
            "legacy": {"name": API, "type": "CNAME", "records": ["legacy-api.example.com"]},
            "aws": {"name": API, "type": "A", "alias": {"name": "${aws_lb.alb.dns_name}"}},
            "validation": {"name": "${each.value.name}", "type": "CNAME"},
        },
        "aws_kms_key": {"data": {"tags": {"Name": "data-key"}}},
        "aws_secretsmanager_secret": {"app": {"name": "paymig/app"}},
        "aws_acm_certificate": {"cert": {"domain_name": API, "tags": {"Name": "cert"}}},
        "aws_cloudwatch_log_group": {
            "waf": {"name": "aws-waf-logs-paymig", "retention_in_days": 365},
            "lambda": {"name": "/aws/lambda/paymig-api", "retention_in_days": 365},
        },
        "aws_cloudwatch_dashboard": {"dash": {"dashboard_name": "paymig"}},
        "aws_cloudwatch_metric_alarm": {
            "cpu": {"alarm_name": "cpu", "period": 60},
            "fast": {"alarm_name": "fast", "period": 10},
            "rate": {
                "alarm_name": "rate",
                "metric_query": [
                    {"id": "e", "expression": "m1/m2"},
                    {"id": "m1", "metric": {"metric_name": "5xx", "period": 60}},
                    {"id": "m2", "metric": {"metric_name": "req", "period": 60}},
                ],
            },
        },
        "aws_cloudwatch_composite_alarm": {"health": {"alarm_name": "health"}},
        "aws_ecr_repository": {"repo": {"name": "paymig-api"}},
        "aws_sns_topic": {"alarms": {"name": "alarms"}},
        "aws_sqs_queue": {"dlq": {"name": "dlq"}},
        "aws_dynamodb_table": {
            "audit": {
                "name": "audit",
                "billing_mode": "PAY_PER_REQUEST",
                "point_in_time_recovery": {"enabled": True},
            }
        },
        "aws_iam_role": {"role": {"name": "r"}},
        "aws_security_group": {"sg": {"name": "sg"}},
    }
}

# The API function's traffic in each period: half the requests in the 4 peak hours; the
# Route 53 checks evenly over the month.
PEAK_RATE = (TX / 2 + R53 * PEAK_S / MONTH_S) / PEAK_S
OFF_RATE = (TX / 2 + R53 * OFF_S / MONTH_S) / OFF_S
TRACES = sampled(PEAK_RATE) * PEAK_S + sampled(OFF_RATE) * OFF_S
# Lambda GB-seconds at 1 GB: 200 ms per request, 50 ms per health check
USED_GBS = TX * 0.2 + R53 * 0.05

# Every line item of FULL, calculated by hand (monthly USD).
HAND = {
    # NAT: 730 h x $0.045; 20 GB split over 2 gateways = 10 GB x $0.045
    "nat-a": 730 * 0.045,
    "nat-a data processing": 10 * 0.045,
    "nat-b": 730 * 0.045,
    "nat-b data processing": 10 * 0.045,
    # public IPv4: 730 h x $0.005
    "eip-a public IPv4": 730 * 0.005,
    "eip-b public IPv4": 730 * 0.005,
    "vpn": 730 * 0.05,
    # interface endpoint in 2 AZs: 2 x 730 x $0.01; all 10 GB of endpoint traffic x $0.01
    "secrets-endpoint": 2 * 730 * 0.01,
    "secrets-endpoint data processing": 10 * 0.01,
    # Aurora: (500 GB + 10 GB x 12 months) x $0.10; TX x 40 I/O / 1M x $0.20;
    # backups 2 GB/day x 35 days x $0.021; RDS-managed secret $0.40
    "paymig-db storage": 620 * 0.10,
    "paymig-db I/O": TX * 40 / 1e6 * 0.20,
    "paymig-db backups": 2 * 35 * 0.021,
    "paymig-db RDS-managed master secret": 0.40,
    "db-1 (db.r6g.large)": 730 * 0.26,
    "db-2 (db.r6g.large)": 730 * 0.26,
    # enhanced monitoring every 60 s: 2,628,000 s / 60 samples x 1,000 B = 0.0438 GB x $0.50
    "db-1 enhanced monitoring logs": 730 * 3600 / 60 * 1000 / 1e9 * 0.50,
    # DMS Multi-AZ: 2 x 730 x $0.21; (150 GB - 100 GB included with r5) x 2 x $0.115
    "dms (dms.r5.large)": 2 * 730 * 0.21,
    "dms storage": 2 * (150 - 100) * 0.115,
    # task logs 5 GB/month x 1 task x $0.50 (no dms-tasks-dms group in the stack)
    "dms task logs ingestion": 5 * 0.50,
    # the task's full load (one-off): in free; 2 x 500 GB x $0.01 inter-AZ;
    # write I/O 500e9 B x 2 / 4,096 B; validation reads 500e9 B / 8,192 B, at $0.20 per 1M
    "task full load in over the VPN": 0.0,
    "task full load to Aurora (inter-AZ)": 2 * 500 * 0.01,
    "task full load write I/O": 500e9 * 2 / 4096 / 1e6 * 0.20,
    "task row validation read I/O": 500e9 / 8192 / 1e6 * 0.20,
    # CDC 2 x 30 GB x $0.01
    "task CDC to Aurora (inter-AZ)": 2 * 30 * 0.01,
    # postgresql log export with no log group in the stack: 5 GB/month x $0.50
    "paymig-db postgresql log export ingestion": 5 * 0.50,
    # Lambda 1 GB, 2 provisioned environments all month (no scaling policy):
    # requests (TX + R53) / 1M x $0.20; PC 2 x 1 GB x 2,628,000 s x $0.0000041667;
    # used GB-s all on PC x $0.0000097222; X-Ray traces by the default sampling rule x $5/1M
    "paymig-api requests": (TX + R53) / 1e6 * 0.20,
    "paymig-api provisioned concurrency": 2 * 1 * 730 * 3600 * 0.0000041667,
    "paymig-api duration on provisioned concurrency": USED_GBS * 0.0000097222,
    "paymig-api duration on demand": 0.0,
    "paymig-api traces": TRACES / 1e6 * 5.00,
    # ALB: 730 x $0.0225; LCUs: new connections (TX + R53)/730/3600 per s / 25 (> GB/h / 0.4)
    "paymig-alb": 730 * 0.0225,
    "paymig-alb LCUs": ((TX + R53) / 730 / 3600 / 25) * 730 * 0.008,
    "paymig-alb public IPv4": 3 * 730 * 0.005,
    "paymig-alb responses to the internet": TX * 1024 / 1e9 * 0.09,
    # ALB logs: (TX + R53) x 500 B = GB/month, kept 12 months, x $0.023
    "paymig-alb-logs (ALB access logs)": (TX + R53) * 500 / 1e9 * 12 * 0.023,
    # WAF: $5 + 4 rules x $1 + (TX + R53)/1M x $0.60
    "paymig-acl": 5.00,
    "paymig-acl rules": 4 * 1.00,
    "paymig-acl requests": (TX + R53) / 1e6 * 0.60,
    # Route 53: non-AWS HTTPS check $0.75 + HTTPS feature $2; AWS check free (first 50) + $1
    "hc-legacy (non-AWS endpoint)": 0.75,
    "hc-legacy optional features": 2.00,
    "hc-aws (AWS endpoint)": 0.0,
    "hc-aws optional features": 1.00,
    # the one non-alias record of the API name answers every request's query
    f"{API} queries": TX / 1e6 * 0.40,
    f"{API} queries (alias)": 0.0,
    "hosted zone (dns.hosted_zone_id)": 0.50,
    "data-key": 1.00,
    "API requests": 100_000 / 10_000 * 0.03,
    "paymig/app": 0.40,
    "API calls": 50_000 / 10_000 * 0.05,
    "cert": 0.0,
    # WAF logs (TX + R53) x 1,500 B; Lambda logs TX x 1,024 B + R53 x 300 B;
    # storage = GB x 365/(730/24) months
    "aws-waf-logs-paymig ingestion": (TX + R53) * 1500 / 1e9 * 0.50,
    "aws-waf-logs-paymig storage": (TX + R53) * 1500 / 1e9 * (365 / (730 / 24)) * 0.03,
    "/aws/lambda/paymig-api ingestion": (TX * 1024 + R53 * 300) / 1e9 * 0.50,
    "/aws/lambda/paymig-api storage": (TX * 1024 + R53 * 300) / 1e9 * (365 / (730 / 24)) * 0.03,
    "dashboard paymig": 3.00,
    "alarm cpu": 0.10,
    "alarm fast": 0.30,
    "alarm rate": 2 * 0.10,
    "composite alarm health": 0.50,
    "custom metrics": 20 * 0.30,
    "paymig-api": 2 * 0.10,  # ECR: 2 GB x $0.10
    "alarms": 10_000 / 1e6 * 0.50,
    "dlq": 100_000 / 1e6 * 0.40,
    "audit writes": 10_000 / 1e6 * 0.625,
    "audit reads": 100_000 / 1e6 * 0.125,
    "audit storage": 1 * 0.25,
    "audit point-in-time recovery": 1 * 0.20,
    # write target aurora: (TX x (2,048 + 1,024 + 8,192) B + R53 x 300 B) x 0.67, x2 x $0.01
    "inter-AZ API to Aurora": (TX * 11264 + R53 * 300) / 1e9 * 0.67 * 2 * 0.01,
}
MIGRATION_ONLY = {
    "dms (dms.r5.large)",
    "dms storage",
    "dms task logs ingestion",
    "task CDC to Aurora (inter-AZ)",
    # the legacy (non-alias) record of the API goes when the migration finishes
    f"{API} queries",
}
ONE_OFF = {
    "task full load in over the VPN",
    "task full load to Aurora (inter-AZ)",
    "task full load write I/O",
    "task row validation read I/O",
}


def test_every_item_of_a_full_stack_matches_the_hand_calculation() -> None:
    est = price(FULL)
    got = {i.resource: i.monthly_usd for i in est.items}
    assert set(got) == set(HAND)
    for name, usd in HAND.items():
        assert got[name] == pytest.approx(usd, rel=1e-9, abs=1e-12), name
    for i in est.items:
        assert i.monthly_usd == pytest.approx(i.quantity * i.unit_usd)
        assert i.basis
    assert {i.resource for i in est.items if i.timing is Timing.migration} == MIGRATION_ONLY
    assert {i.resource for i in est.items if i.timing is Timing.one_off} == ONE_OFF


def test_totals_load_month_migration_and_steady_state() -> None:
    est = price(FULL)
    one_off = sum(HAND[name] for name in ONE_OFF)
    assert one_off == pytest.approx(0 + 10.00 + 48.828125 + 12.20703125)
    assert est.load_month_usd == pytest.approx(sum(HAND.values()))
    assert est.one_off_usd == pytest.approx(one_off)
    assert est.total_monthly_usd == pytest.approx(sum(HAND.values()) - one_off)
    dms = sum(HAND[name] for name in MIGRATION_ONLY)
    assert dms == pytest.approx(306.60 + 11.50 + 2.50 + 0.60 + HAND[f"{API} queries"])
    assert est.steady_state_monthly_usd == pytest.approx(sum(HAND.values()) - one_off - dms)
    # the plan's first month is the load month: its bill carries everything
    assert est.bill_usd == pytest.approx(est.load_month_usd)


def _per_period(scale: float) -> list[tuple[float, float]]:
    """(GB-seconds used, GB-seconds provisioned) of the API at 1 GB with 2 environments."""
    return [
        (scale * TX / 2 * 0.2 + R53 * seconds / MONTH_S * 0.05, 2 * seconds)
        for seconds in (PEAK_S, OFF_S)
    ]


def test_lambda_overflow_beyond_provisioned_concurrency_follows_the_peak() -> None:
    for scale in (10, 100):
        est = price(FULL, scale=scale)
        periods = _per_period(scale)
        on_pc = sum(min(used, cap) for used, cap in periods)
        overflow = sum(max(used - cap, 0) for used, cap in periods)
        assert overflow > 0  # at 10x the 4 peak hours already need more than 2 environments
        assert item(est, "paymig-api duration on provisioned concurrency").quantity == (
            pytest.approx(on_pc)
        )
        assert item(est, "paymig-api duration on demand").monthly_usd == pytest.approx(
            overflow * 0.0000166667
        )


def test_lambda_at_1x_and_10x_volume() -> None:
    one = service_total(price(FULL).items, "Lambda")
    ten = service_total(price(FULL, scale=10).items, "Lambda")
    pc = 2 * 730 * 3600 * 0.0000041667
    assert one == pytest.approx((TX + R53) / 1e6 * 0.2 + pc + USED_GBS * 0.0000097222)
    periods = _per_period(10)
    assert ten == pytest.approx(
        (10 * TX + R53) / 1e6 * 0.2
        + pc
        + sum(min(u, c) for u, c in periods) * 0.0000097222
        + sum(max(u - c, 0) for u, c in periods) * 0.0000166667
    )


def test_target_tracking_follows_the_daily_peak_at_10x() -> None:
    """With a target-tracking policy, the peak hours get more environments than the rest."""
    tracked = copy.deepcopy(FULL)
    tracked["resource"]["aws_appautoscaling_policy"] = {
        "pc": {
            "policy_type": "TargetTrackingScaling",
            "resource_id": "${aws_appautoscaling_target.pc.resource_id}",
            "target_tracking_scaling_policy_configuration": {"target_value": 0.7},
        }
    }
    est = price(tracked, scale=10)
    # concurrency = requests/s x 0.2 s + checks/s x 0.05 s; environments = ceil(c / 0.7)
    peak = (10 * TX / 2 / PEAK_S) * 0.2 + (R53 / MONTH_S) * 0.05
    off = (10 * TX / 2 / OFF_S) * 0.2 + (R53 / MONTH_S) * 0.05
    assert (round(peak, 3), round(off, 3)) == (3.499, 0.721)
    units = (5, 2)  # ceil(3.499 / 0.7) = 5; ceil(0.721 / 0.7) = 2 = the minimum
    pcs = item(est, "paymig-api provisioned concurrency")
    assert pcs.quantity == pytest.approx(units[0] * PEAK_S + units[1] * OFF_S)
    assert "peak 5 env" in pcs.basis and "off-peak 2 env" in pcs.basis
    assert item(est, "paymig-api duration on demand").quantity == pytest.approx(0.0)
    # at 1x the minimum of 2 holds all day
    assert item(price(tracked), "paymig-api provisioned concurrency").quantity == (
        pytest.approx(2 * MONTH_S)
    )


def test_arm_lambda_and_provisioned_concurrency_config_and_no_tracing() -> None:
    document = doc(
        aws_lambda_function={
            "fn": {"function_name": "f", "memory_size": 512, "architectures": ["arm64"]}
        },
        aws_lambda_provisioned_concurrency_config={
            "pc": {"function_name": "${aws_lambda_function.fn.function_name}",
                   "provisioned_concurrent_executions": 3}
        },
    )  # fmt: skip
    est = price(document)
    # no ALB: the function is not the API; 1,000 invocations/month
    assert item(est, "f requests").quantity == pytest.approx(1000 / 1e6)
    assert item(est, "f provisioned concurrency").monthly_usd == pytest.approx(
        3 * 0.5 * 730 * 3600 * 0.0000033334
    )
    assert item(est, "f duration on provisioned concurrency").monthly_usd == pytest.approx(
        1000 * 0.2 * 0.5 * 0.0000077778
    )
    assert not [i for i in est.items if i.service == "X-Ray"]


def test_single_az_dms_is_half_the_multi_az_instance_and_storage() -> None:
    single = copy.deepcopy(FULL)
    single["resource"]["aws_dms_replication_instance"]["dms"]["multi_az"] = False
    est = price(single)
    assert item(est, "dms (dms.r5.large)").monthly_usd == pytest.approx(730 * 0.21)
    assert item(est, "dms storage").monthly_usd == pytest.approx((150 - 100) * 0.115)


def test_postgresql_export_into_a_stack_log_group_is_priced_once() -> None:
    own = copy.deepcopy(FULL)
    own["resource"]["aws_cloudwatch_log_group"]["pg"] = {
        "name": "/aws/rds/cluster/paymig-db/postgresql",
        "retention_in_days": 30,
    }
    est = price(own)
    assert not [i for i in est.items if "postgresql log export" in i.resource]
    assert item(est, "/aws/rds/cluster/paymig-db/postgresql ingestion").monthly_usd == (
        pytest.approx(5 * 0.50)
    )


def test_provisioned_dynamodb_never_expiring_log_group_and_other_bucket() -> None:
    document = doc(
        aws_dynamodb_table={"t": {"name": "t", "read_capacity": 5, "write_capacity": 2}},
        aws_cloudwatch_log_group={"g": {"name": "/custom/group"}},
        aws_s3_bucket={"b": {"bucket": "other"}},
    )
    est = price(document)
    assert item(est, "t write capacity").monthly_usd == pytest.approx(2 * 730 * 0.00065)
    assert item(est, "t read capacity").monthly_usd == pytest.approx(5 * 730 * 0.00013)
    assert item(est, "/custom/group ingestion").monthly_usd == pytest.approx(1 * 0.50)
    # retention 0 = never expires: 36 months of 1 GB kept
    assert item(est, "/custom/group storage").monthly_usd == pytest.approx(36 * 0.03)
    assert item(est, "other").monthly_usd == pytest.approx(1 * 0.023)


def test_calculated_health_check_and_fast_interval_latency_features() -> None:
    document = doc(
        aws_route53_health_check={
            "calc": {"type": "CALCULATED", "tags": {"Name": "calc"}},
            "fast": {"type": "HTTP_STR_MATCH", "fqdn": "on-prem.example.net",
                     "request_interval": 10, "measure_latency": True, "tags": {"Name": "fast"}},
        }
    )  # fmt: skip
    est = price(document)
    assert item(est, "calc").monthly_usd == pytest.approx(0.50)
    features = item(est, "fast optional features")
    # string matching, fast interval, latency measurement on a non-AWS endpoint
    assert features.quantity == 3
    assert features.monthly_usd == pytest.approx(3 * 2.00)


def test_scale_multiplies_traffic_items_but_not_fixed_ones() -> None:
    one, ten = price(FULL), price(FULL, scale=10)
    # client requests scale; the health checks come from the stack and do not
    assert item(ten, "paymig-acl requests").monthly_usd == pytest.approx(
        (10 * TX + R53) / 1e6 * 0.60
    )
    assert item(one, "paymig-acl requests").monthly_usd == pytest.approx((TX + R53) / 1e6 * 0.60)
    assert (
        item(ten, "db-1 (db.r6g.large)").monthly_usd == item(one, "db-1 (db.r6g.large)").monthly_usd
    )
    assert item(ten, "task full load to Aurora (inter-AZ)").monthly_usd == pytest.approx(10.0)


# --------------------------------------------------------------------------- stack changes


def test_resizing_the_aurora_instances_moves_the_estimate_exactly() -> None:
    bigger = copy.deepcopy(FULL)
    for inst in bigger["resource"]["aws_rds_cluster_instance"].values():
        inst["instance_class"] = "db.r6g.xlarge"
    delta = price(bigger).total_monthly_usd - price(FULL).total_monthly_usd
    assert delta == pytest.approx(2 * 730 * (0.519 - 0.26))


def test_for_each_counts_literal_collections_and_rejects_expressions() -> None:
    three = doc(aws_kms_key={"k": {"for_each": {"a": 1, "b": 2, "c": 3}, "tags": {"Name": "k"}}})
    assert item(price(three), "k").monthly_usd == pytest.approx(3 * 1.00)
    dynamic = doc(aws_kms_key={"k": {"for_each": "${toset(var.keys)}"}})
    with pytest.raises(PricingError, match=r"for_each .* is not a literal collection"):
        price(dynamic)


def test_adding_a_reader_with_count_adds_its_hours() -> None:
    more = copy.deepcopy(FULL)
    more["resource"]["aws_rds_cluster_instance"]["reader"]["count"] = 2
    delta = price(more).total_monthly_usd - price(FULL).total_monthly_usd
    assert delta == pytest.approx(730 * 0.26)


def test_removing_a_nat_gateway_and_its_eip_from_the_prod_stack(prod_tf: dict[str, Any]) -> None:
    before = price(prod_tf)
    fewer = copy.deepcopy(prod_tf)
    nat_id = sorted(fewer["resource"]["aws_nat_gateway"])[0]
    eip_id = sorted(fewer["resource"]["aws_eip"])[0]
    del fewer["resource"]["aws_nat_gateway"][nat_id]
    del fewer["resource"]["aws_eip"][eip_id]
    after = price(fewer)
    # the NAT traffic is the same, only spread over fewer gateways
    assert before.total_monthly_usd - after.total_monthly_usd == pytest.approx(
        730 * 0.045 + 730 * 0.005
    )


def test_changing_flow_log_retention_in_the_prod_stack(prod_tf: dict[str, Any]) -> None:
    longer = copy.deepcopy(prod_tf)
    groups = longer["resource"]["aws_cloudwatch_log_group"]
    (group_id,) = [k for k, g in groups.items() if g["name"].endswith("/vpc-flow-logs")]
    assert groups[group_id]["retention_in_days"] == 365
    groups[group_id]["retention_in_days"] = 731
    delta = price(longer).total_monthly_usd - price(prod_tf).total_monthly_usd
    # 30 GB/month of flow logs kept (731 - 365) days longer, at $0.03/GB-month
    assert delta == pytest.approx(30 * (731 - 365) / (730 / 24) * 0.03)


def test_dropping_dms_changes_only_the_migration_total() -> None:
    without = copy.deepcopy(FULL)
    for kind in ("aws_dms_replication_instance", "aws_dms_replication_task", "aws_dms_endpoint"):
        del without["resource"][kind]
    del without["resource"]["aws_route53_record"]["legacy"]  # finishing removes it too
    a, b = price(FULL), price(without)
    assert a.steady_state_monthly_usd == pytest.approx(b.steady_state_monthly_usd)
    assert b.total_monthly_usd == pytest.approx(b.steady_state_monthly_usd)
    assert b.one_off_usd == 0.0


# --------------------------------------------------------------------------- the prod stack


def test_every_type_in_the_synthesized_prod_stack_is_priced_or_free(
    prod_tf: dict[str, Any],
) -> None:
    kinds = set(prod_tf["resource"])
    assert kinds <= set(RULES) | set(FREE_TYPES), sorted(kinds - set(RULES) - set(FREE_TYPES))
    check_priceable(StackView(prod_tf))
    est = price(prod_tf)
    nats = prod_tf["resource"]["aws_nat_gateway"]
    assert sum(1 for i in est.items if i.unit == "NAT gateway-hour") == len(nats)
    eips = prod_tf["resource"]["aws_eip"]
    ipv4 = [i for i in est.items if i.unit == "public IPv4 address-hour"]
    # one item per NAT EIP, plus one for the internet-facing ALB's per-AZ addresses
    assert len(ipv4) == len(eips) + len(prod_tf["resource"]["aws_lb"])
    assert sum(1 for i in est.items if i.unit == "VPN connection-hour") == len(
        prod_tf["resource"]["aws_vpn_connection"]
    )
    assert sum(1 for i in est.items if i.unit == "key-month") == len(
        prod_tf["resource"]["aws_kms_key"]
    )
    assert est.total_monthly_usd <= 3000
    assert budget_gate(est, 3000) == []


def test_an_unknown_type_fails_loudly() -> None:
    with pytest.raises(
        PricingError,
        match=r"aws_made_up is neither priced nor listed as free .*"
        r"add a rule to paymig\.cost\.registry\.RULES or a reason to FREE_TYPES",
    ):
        price(doc(aws_made_up={"x": {}}))


def test_a_billable_type_without_a_rule_fails_loudly(prod_tf: dict[str, Any]) -> None:
    grown = copy.deepcopy(prod_tf)
    grown["resource"]["aws_db_instance"] = {"legacy_copy": {"instance_class": "db.m5.large"}}
    with pytest.raises(
        PricingError,
        match=r"aws_db_instance is billable but has no pricing rule .*aws_db_instance.legacy_copy"
        r"\); add one to paymig\.cost\.registry\.RULES$",
    ):
        price(grown)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"aws_rds_cluster_instance": {"i": {"instance_class": "db.x9.huge"}}},
         r"no aurora_postgresql price for instance class 'db.x9.huge'"),
        ({"aws_dms_replication_instance": {"d": {"replication_instance_class": "dms.x.y"}}},
         r"no dms price for instance class 'dms.x.y'"),
        ({"aws_nat_gateway": {"n": {"count": "${var.n}"}}}, r"count '\$\{var.n\}' is not a literal"),
        ({"aws_rds_cluster": {"c": {"engine": "aurora-mysql"}}}, r"engine 'aurora-mysql'"),
        ({"aws_rds_cluster": {"c": {"engine": "aurora-postgresql", "storage_type": "aurora-iopt1"}}},
         r"I/O-Optimized"),
        ({"aws_lb": {"l": {"load_balancer_type": "network"}}}, r"load_balancer_type 'network'"),
        ({"aws_rds_cluster_instance": {"i": {"instance_class": "db.r6g.large",
          "performance_insights_enabled": True, "performance_insights_retention_period": 731}}},
         r"Performance Insights retention 731"),
        ({"aws_acm_certificate": {"c": {"certificate_authority_arn": "arn:ca"}}}, r"private CA"),
        ({"aws_cloudwatch_log_group": {"g": {"log_group_class": "INFREQUENT_ACCESS"}}},
         r"log_group_class 'INFREQUENT_ACCESS'"),
        ({"aws_vpc_endpoint": {"e": {"vpc_endpoint_type": "Interface"}}}, r"without literal subnet_ids"),
    ],
)  # fmt: skip
def test_resources_that_cannot_be_priced_name_the_reason(
    resources: dict[str, Any], message: str
) -> None:
    with pytest.raises(PricingError, match=message):
        price(doc(**resources))


def test_the_api_function_must_be_identifiable_behind_an_alb() -> None:
    two = doc(
        aws_lb={"l": {"subnets": ["a", "b"]}},
        aws_lambda_function={"a": {"function_name": "a"}, "b": {"function_name": "b"}},
    )
    with pytest.raises(PricingError, match=r"cannot tell which Lambda function serves the API"):
        price(two)


def test_scale_must_be_positive() -> None:
    with pytest.raises(PricingError, match=r"--scale: must be greater than 0"):
        price(FULL, scale=0)


# --------------------------------------------------------------------------- price table


def test_every_price_is_dated_sourced_from_aws_and_has_a_unit() -> None:
    entries = list(PRICES.prices.items()) + [
        (f"{fam}.{cls}", p) for fam, classes in PRICES.instance_hours.items()
        for cls, p in classes.items()
    ]  # fmt: skip
    assert len(entries) > 60
    for key, p in entries:
        assert p.source.host == "aws.amazon.com", key
        assert p.unit and p.note, key
        assert p.taken.year >= 2026, key
        if p.confirmed_by is None:
            assert "verify" in p.note or p.usd == 0.0, key
    assert PRICES.region == "us-east-2"
    for key, q in PRICES.quantities.items():
        assert q.source.host is not None and q.source.host.endswith("amazon.com"), key
        assert q.unit and q.note, key
        if q.confirmed_by is None:
            assert "verify" in q.note or q.source.host == "docs.aws.amazon.com", key
    calendar = PRICES.engine_support["aurora-postgresql"]["14"]
    assert calendar.source.host == "docs.aws.amazon.com"
    assert "verify" in calendar.note.lower()
    assert PRICES.vcpus is not None and PRICES.vcpus.classes["db.r6g.large"] == 2
    # every Aurora class that has a price has a vCPU count (Extended Support needs it)
    assert set(PRICES.instance_hours["aurora_postgresql"]) <= set(PRICES.vcpus.classes)


def test_unknown_price_key_and_invalid_table_are_errors() -> None:
    with pytest.raises(PricingError, match=r"no price 'nope'"):
        PRICES.get("nope")
    with pytest.raises(PricingError, match=r"no instance family 'ec2'"):
        PRICES.instance_hour("ec2", "m5.large")
    with pytest.raises(PricingError, match=r"no quantity 'nope'"):
        PRICES.quantity("nope")
    bad = (
        "region: us-east-2\ncurrency: USD\ninstance_hours: {}\nprices:\n"
        "  x: {usd: 1, unit: h, taken: 2026-01-01, note: n}\n"
    )
    with pytest.raises(PricingError, match=r"prices.x.source: Field required"):
        parse_price_table(bad)
    with pytest.raises(PricingError, match=r"YAML syntax error"):
        parse_price_table("prices: [")


def test_no_price_literals_outside_the_table() -> None:
    """Only named non-price constants (hours, bytes, LCU definition, volumes) are floats."""
    allowed = {730.0, 24.0, 3600.0, 1e9, 1e6, 25.0, 1.0, 0.4, 10.0, 0.0}
    for path in (REPO / "src" / "paymig" / "cost").rglob("*.py"):
        floats = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, float)
        }
        assert floats <= allowed, (path.name, floats - allowed)


# --------------------------------------------------------------------------- budget gate


def _items(*amounts: tuple[str, float, bool]) -> Estimate:
    return Estimate(
        items=tuple(
            LineItem(
                "S", name, 1.0, "u", usd, usd, "b", Timing.migration if mig else Timing.recurring
            )
            for name, usd, mig in amounts
        ),
        scale=1.0,
        month=PLAN.start,
        plan=PLAN,
    )


def test_budget_gate_passes_when_both_totals_fit() -> None:
    assert budget_gate(_items(("a", 1000, False), ("dms", 900, True)), 3000) == []


def test_budget_gate_names_the_three_largest_items() -> None:
    est = _items(("a", 1200, False), ("b", 900, False), ("dms", 1000, True), ("c", 100, False))
    failures = budget_gate(est, 3000)
    # migration total 3,200 > 3,000; steady state 2,200 fits
    assert failures == [
        "migration-period estimate $3,200.00/month exceeds the budget $3,000.00/month; "
        "largest items: S a $1,200.00, S dms $1,000.00, S b $900.00"
    ]
    both = budget_gate(est, 2000)
    assert len(both) == 2
    assert both[1] == (
        "steady-state estimate $2,200.00/month exceeds the budget $2,000.00/month; "
        "largest items: S a $1,200.00, S b $900.00, S c $100.00"
    )


def test_budget_gate_checks_the_load_month_when_there_is_a_one_off() -> None:
    est = Estimate(
        items=(
            LineItem("S", "a", 1.0, "u", 2500, 2500, "b"),
            LineItem("S", "load", 1.0, "u", 600, 600, "b", Timing.one_off),
        ),
        scale=1.0,
        month=PLAN.start,
        plan=PLAN,
    )
    assert budget_gate(est, 3000) == [
        "load-month estimate $3,100.00/month exceeds the budget $3,000.00/month; "
        "largest items: S a $2,500.00, S load $600.00"
    ]


def test_check_budget_gate_fails_with_a_small_budget(
    prod_config: PaymigConfig, prod_synth: Any
) -> None:
    from paymig.cli.infra_commands import _budget_gate
    from paymig.cost.report import estimate_environment, table_environment

    console = Console(file=io.StringIO(), width=300)
    _budget_gate(console, prod_config, prod_synth.json_path)  # fits $3,000
    est = estimate_environment(prod_config, prod_synth.document)
    table = table_environment(prod_config, prod_synth.document)
    peak = max(table.rows, key=lambda r: r.total_usd)
    assert console.file.getvalue() == (
        f"budget: load month ${est.load_month_usd:,.2f}, migration "
        f"${est.total_monthly_usd:,.2f}/month, steady state "
        f"${est.steady_state_monthly_usd:,.2f}/month, highest month {peak.month} "
        f"${peak.total_usd:,.2f}, within $3,000.00\n"
    )
    tight = prod_config.model_copy(update={"budget_usd": 50.0})
    with pytest.raises(CommandFailedError) as raised:
        _budget_gate(console, tight, prod_synth.json_path)
    message = str(raised.value)
    assert message.startswith(
        f"paymig-prod: load-month estimate ${est.load_month_usd:,.2f}/month exceeds the budget "
        "$50.00/month; largest items: DMS"
    )
    assert f"; migration-period estimate ${est.total_monthly_usd:,.2f}/month exceeds" in message
    assert f"; steady-state estimate ${est.steady_state_monthly_usd:,.2f}/month exceeds" in message
    months = ", ".join(f"{r.month} ${r.total_usd:,.2f}" for r in table.rows)
    assert message.endswith(f"; 12 month(s) exceed the budget $50.00/month: {months}")


# --------------------------------------------------------------------------- reports and CLI


def _table(document: dict[str, Any] = FULL, scale: float = 1.0) -> Any:
    return month_table(document, USAGE, PRICES, plan=PLAN, scale=scale, facts=FACTS)


def test_markdown_groups_by_service_with_shares() -> None:
    est = price(FULL)
    text = render_markdown(est, _table(), 3000, {1.0: 10.0, 10.0: 20.0})
    total = est.bill_usd
    waf = HAND["paymig-acl"] + HAND["paymig-acl rules"] + HAND["paymig-acl requests"]
    lines = text.splitlines()
    assert f"| WAF | {waf:,.2f} | {100 * waf / total:.1f}% |" in lines
    assert f"| **Total** | **{total:,.2f}** | 100% |" in lines
    assert (
        "- Lambda by volume (x the configured transactions/day): 1x $10.00/month, 10x $20.00/month"
        in lines
    )
    load = HAND["task full load write I/O"]
    assert (
        f"| Aurora | task full load write I/O (one-off, load month) | 244.1 | 1M I/O requests "
        f"| 0.2 | {load:,.2f} | {100 * load / total:.1f}% | 500 GB x 2 log bytes per byte / "
        "4096 B per write I/O, x price per million |"
    ) in lines
    assert f"| 2026-12 | load month | {total:,.2f} | 0.00 | fits |" in "\n".join(lines)
    assert text == render_markdown(price(FULL), _table(), 3000, {1.0: 10.0, 10.0: 20.0})


def test_a_steady_month_bills_only_recurring_items() -> None:
    est = price(FULL, month=Month(2027, 3))
    assert est.phase == "steady state"
    assert est.bill_usd == pytest.approx(est.steady_state_monthly_usd)
    assert not [i for i in est.billed_items() if i.migration_only]
    text = render_markdown(est, _table(), 3000, {1.0: 1.0})
    assert "dms (dms.r5.large)" not in text.split("### Twelve months")[0]


def test_table_prints_services_the_totals_and_the_months() -> None:
    console = Console(record=True, width=250)
    est = price(FULL)
    print_table(console, est, _table(), 3000, {1.0: 1.0, 10.0: 2.0})
    out = console.export_text()
    assert f"Bill for 2026-12 (load month): ${est.bill_usd:,.2f}" in out
    assert f"Migration period (DMS running, 3 month(s)): ${est.total_monthly_usd:,.2f}/month" in out
    assert f"Steady state (after DMS is removed): ${est.steady_state_monthly_usd:,.2f}/month" in out
    assert "dms (dms.r5.large) (migration only)" in out
    assert "task full load write I/O (one-off, load month)" in out
    assert "Twelve months from the migration start 2026-12" in out
    assert "2027-11" in out
    assert "Not deducted: free tiers that expire or depend on the account" in out


def test_json_report_shape() -> None:
    est = price(FULL)
    data = to_json(est, _table(), 3000, {1.0: 1.5, 10.0: 2.5})
    assert set(data) == {
        "month", "phase", "bill_usd", "load_month_usd", "total_monthly_usd",
        "steady_state_monthly_usd", "budget_usd", "scale", "migration_start",
        "migration_months", "within_budget", "lambda_monthly_usd_by_volume", "months", "items",
    }  # fmt: skip
    assert data["month"] == "2026-12" and data["phase"] == "load month"
    assert data["lambda_monthly_usd_by_volume"] == {"1": 1.5, "10": 2.5}
    assert all(
        set(i) == {"service", "resource", "quantity", "unit", "unit_usd", "monthly_usd", "basis",
                   "timing"}
        for i in data["items"]
    )  # fmt: skip
    assert [m["month"] for m in data["months"]][:2] == ["2026-12", "2027-01"]
    assert data["months"][0]["total_usd"] == round(est.bill_usd, 2)


def _write_config(tmp_path: Path, budget: float) -> Path:
    text = (REPO / "config" / "prod.yaml").read_text()
    path = tmp_path / "prod.yaml"
    path.write_text(text.replace("budget_usd: 3000", f"budget_usd: {budget}"))
    return path


def test_cli_cost_json_from_a_synthesized_file(
    tmp_path: Path, prod_synth: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["cost", "--from-json", str(prod_synth.json_path), "--format", "json",
                 "--scale", "2", "--month", "2027-01"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scale"] == 2.0 and data["budget_usd"] == 3000.0
    assert data["month"] == "2027-01" and data["phase"] == "migration"
    assert data["bill_usd"] == pytest.approx(sum(i["monthly_usd"] for i in data["items"]), abs=0.01)
    assert data["bill_usd"] == data["total_monthly_usd"]
    assert data["within_budget"] is True


def test_cli_cost_exits_1_over_budget(
    tmp_path: Path, prod_synth: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, 100)
    code = main(["cost", "--config", str(config), "--from-json", str(prod_synth.json_path),
                 "--format", "markdown", "--month", "2026-12"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "Budget: $100.00/month: EXCEEDED" in out
    assert "12 month(s) exceed the budget $100.00/month" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "0"], "paymig: --scale: must be greater than 0, got 0\n"),
        (["--scale", "-1"], "paymig: --scale: must be greater than 0, got -1\n"),
    ],
)
def test_cli_cost_rejects_bad_scale(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(FULL))
    assert main(["cost", "--from-json", str(stack), *args]) == 2
    assert capsys.readouterr().err == message


def test_cli_cost_bad_inputs_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    assert main(["cost", "--from-json", str(missing)]) == 2
    assert capsys.readouterr().err == f"paymig: --from-json {missing}: file not found\n"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["cost", "--from-json", str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"paymig: --from-json {broken}: not JSON:")
    wrong = tmp_path / "list.json"
    wrong.write_text("[]")
    assert main(["cost", "--from-json", str(wrong)]) == 2
    assert "not a synthesized Terraform document" in capsys.readouterr().err
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(doc(aws_made_up={"x": {}})))
    assert main(["cost", "--from-json", str(unknown)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("paymig: aws_made_up is neither priced nor listed as free")
    assert err.count("\n") == 1


def test_lambda_by_volume_on_a_full_stack(prod_config: PaymigConfig) -> None:
    volumes = lambda_by_volume(prod_config, FULL, Month(2026, 12))
    assert volumes[1.0] == pytest.approx(service_total(price(FULL).items, "Lambda"))
    assert volumes[10.0] == pytest.approx(service_total(price(FULL, 10).items, "Lambda"))


def test_api_function_found_through_a_target_group_attachment_to_an_alias() -> None:
    document = doc(
        aws_lb={"l": {"name": "alb", "internal": True}},
        aws_lambda_function={"api": {"function_name": "api"}, "rb": {"function_name": "rb"}},
        aws_lambda_alias={"blue": {"function_name": "${aws_lambda_function.api.function_name}"}},
        aws_lb_target_group_attachment={"a": {"target_id": "${aws_lambda_alias.blue.arn}"}},
        aws_cloudwatch_log_group={
            "api": {"name": "/aws/lambda/api", "retention_in_days": 30},
            "rb": {"name": "/aws/lambda/${aws_lambda_function.rb.function_name}",
                   "retention_in_days": 30},
        },
    )  # fmt: skip
    est = price(document)
    assert item(est, "api requests").quantity == pytest.approx(TX / 1e6)
    assert item(est, "rb requests").quantity == pytest.approx(1000 / 1e6)
    assert item(est, "/aws/lambda/api ingestion").quantity == pytest.approx(TX * 1024 / 1e9)
    # the rollback function's group is found by its reference: 1,000 x 1,024 B
    assert item(est, "aws_cloudwatch_log_group.rb ingestion").quantity == pytest.approx(
        1000 * 1024 / 1e9
    )
    # internal ALB: no public IPv4 and no internet transfer
    assert [i.resource for i in est.items if i.service == "ELB"] == ["alb", "alb LCUs"]
    assert not [i for i in est.items if i.resource.startswith("alb ") and i.service != "ELB"]


def test_single_function_behind_an_alb_is_the_api_and_labels_fall_back() -> None:
    document = doc(
        aws_lb={"l": {"subnets": ["a", "b"]}},
        aws_lambda_function={"f": {"memory_size": 256}},
    )
    est = price(document)
    # no literal name: the label is the Terraform address
    assert item(est, "aws_lambda_function.f requests").quantity == pytest.approx(TX / 1e6)
    assert item(est, "aws_lb.l public IPv4").quantity == 2 * 730


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"aws_vpc_endpoint": {"e": {"vpc_endpoint_type": "GatewayLoadBalancer"}}},
         r"vpc_endpoint_type 'GatewayLoadBalancer'"),
        ({"aws_rds_cluster_instance": {"i": {"instance_class": "${var.c}"}}},
         r"instance_class '\$\{var.c\}' is not a literal string"),
        ({"aws_lambda_function": {"f": {"memory_size": "${var.m}"}}},
         r"memory_size '\$\{var.m\}' is not a literal integer"),
        ({"aws_lb": {"l": {}}}, r"internet-facing ALB without literal subnets"),
    ],
)  # fmt: skip
def test_more_unpriceable_attributes(resources: dict[str, Any], message: str) -> None:
    with pytest.raises(PricingError, match=message):
        price(doc(**resources))


def test_cli_cost_synthesizes_when_no_file_is_given(
    prod_config: PaymigConfig, prod_synth: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from paymig.cost.report import estimate_environment

    assert main(["cost", "--env", "prod", "--format", "json", "--month", "2027-02"]) == 0
    data = json.loads(capsys.readouterr().out)
    est = estimate_environment(prod_config, prod_synth.document, month=Month(2027, 2))
    assert data["bill_usd"] == round(est.bill_usd, 2)


def test_cli_cost_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(FULL))
    assert main(["cost", "--from-json", str(stack), "--month", "2026-12"]) == 0
    out = capsys.readouterr().out
    est = price(FULL, facts=ConfigFacts(api_record_name=API, write_target="source"))
    assert f"Migration period (DMS running, 3 month(s)): ${est.total_monthly_usd:,.2f}/month" in out
    assert "Budget: $3,000.00/month: every total and month fits" in out


def test_cli_cost_from_json_does_not_load_jsii(tmp_path: Path) -> None:
    """Pricing a file needs no synthesis: a fresh process never imports the jsii bindings."""
    import subprocess
    import sys

    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(FULL))
    probe = (
        "import sys, contextlib, io\n"
        "from paymig.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['cost', '--from-json', {str(stack)!r}, '--format', 'json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'jsii', 'cdktf', 'constructs', 'cdktf_cdktf_provider_aws'} or m == 'paymig.infra.stack')\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout == "0 []\n"
