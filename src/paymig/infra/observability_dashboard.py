"""The migration dashboard of the observability tier: progress, traffic, API, Aurora, KPIs.

Built from the typed model of :mod:`paymig.infra.dashboard`, on the same dimensions as
the alarms (:class:`DashboardScope`, filled by
:class:`paymig.infra.observability.ObservabilityTier`).
"""

from __future__ import annotations

from dataclasses import dataclass

from paymig import naming
from paymig.infra.dashboard import Dashboard, Expression, GraphWidget, Metric, TextWidget
from paymig.infra.validation_job import progress_widget

ALB = "AWS/ApplicationELB"
RDS = "AWS/RDS"
DMS = "AWS/DMS"
LAMBDA = "AWS/Lambda"

#: Migration-progress metrics DMS exposes only as table statistics; the controller
#: publishes them (``paymig status``) under the traffic metric namespace.
TABLE_STATISTICS_METRICS = ("ValidationFailedRecords", "ValidationSuspendedRecords")
#: Full-load progress, published from the same table statistics.
LOAD_PROGRESS_METRIC = "TablesLoadedPercent"

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DashboardScope:
    """What the dashboard shows: the stack's names and the real resources' dimensions."""

    name: str
    environment: str
    region: str
    function_name: str
    target_group_arn_suffixes: dict[str, str]
    lb_dimensions: Dimensions
    dms_dimensions: Dimensions
    cluster_dimensions: Dimensions
    has_dms: bool


def migration_dashboard(scope: DashboardScope) -> Dashboard:
    """The migration dashboard: progress, traffic, API, Aurora, business KPIs."""
    board = Dashboard(region=scope.region)
    if scope.has_dms:
        board.add(*_progress_widgets(scope))
    board.add(*_api_widgets(scope))
    board.add(*_aurora_widgets(scope))
    board.add(*_business_widgets(scope))
    return board


def _progress_widgets(scope: DashboardScope) -> list[GraphWidget | TextWidget]:
    """Migration progress: DMS load and CDC, validation, and the traffic split."""
    p = scope
    dms = scope.dms_dimensions
    env = (("Environment", p.environment),)
    return [
        TextWidget(f"# {p.name}: migration progress"),
        GraphWidget(
            "DMS full load throughput (rows/s)",
            (
                Metric(DMS, "FullLoadThroughputRowsSource", dms, "Average"),
                Metric(DMS, "FullLoadThroughputRowsTarget", dms, "Average"),
            ),
            width=8,
        ),
        GraphWidget(
            "DMS CDC latency (s)",
            (
                Metric(DMS, "CDCLatencySource", dms, "Maximum"),
                Metric(DMS, "CDCLatencyTarget", dms, "Maximum"),
            ),
            width=8,
        ),
        GraphWidget(
            "DMS CDC incoming changes",
            (Metric(DMS, "CDCIncomingChanges", dms, "Maximum"),),
            width=8,
        ),
        GraphWidget(
            "DMS full load progress (% of tables loaded)",
            (Metric(naming.TRAFFIC_METRIC_NAMESPACE, LOAD_PROGRESS_METRIC, env, "Maximum"),),
            width=12,
        ),
        progress_widget(p.environment),
        GraphWidget(
            "Validation failures and suspended records (from table statistics)",
            tuple(
                Metric(naming.TRAFFIC_METRIC_NAMESPACE, m, env, "Maximum")
                for m in TABLE_STATISTICS_METRICS
            ),
            width=12,
        ),
        GraphWidget(
            "Traffic split (% of requests per record)",
            tuple(
                Metric(
                    naming.TRAFFIC_METRIC_NAMESPACE,
                    naming.TRAFFIC_METRIC_NAME,
                    (*env, ("SetIdentifier", set_id)),
                    "Maximum",
                    label=set_id,
                )
                for set_id in (naming.LEGACY_SET_ID, naming.AWS_SET_ID)
            ),
            width=12,
        ),
    ]


def _api_widgets(scope: DashboardScope) -> list[GraphWidget | TextWidget]:
    """The payment API: latency, errors per target group, Lambda errors and throttles."""
    p = scope
    lb = scope.lb_dimensions
    groups = {
        alias: (*lb, ("TargetGroup", suffix))
        for alias, suffix in p.target_group_arn_suffixes.items()
    }
    fn = p.function_name
    return [
        TextWidget(f"# {p.name}: payment API"),
        GraphWidget(
            "API latency (s)",
            tuple(
                Metric(ALB, "TargetResponseTime", lb, stat, label=stat)
                for stat in ("p50", "p95", "p99")
            ),
            width=8,
        ),
        GraphWidget(
            "API errors",
            (
                Metric(ALB, "HTTPCode_ELB_5XX_Count", lb, "Sum", label="ALB 5xx"),
                *(
                    Metric(ALB, "HTTPCode_Target_5XX_Count", dims, "Sum", label=f"{a} 5xx")
                    for a, dims in groups.items()
                ),
            ),
            width=8,
        ),
        GraphWidget(
            "Lambda errors and throttles",
            tuple(
                Metric(
                    LAMBDA,
                    metric,
                    (("FunctionName", fn), ("Resource", f"{fn}:{alias}")),
                    "Sum",
                    label=f"{alias} {metric.lower()}",
                )
                for alias in p.target_group_arn_suffixes
                for metric in ("Errors", "Throttles")
            ),
            width=8,
        ),
    ]


def _aurora_widgets(scope: DashboardScope) -> list[GraphWidget | TextWidget]:
    """Aurora: writer CPU, connections, replica lag, free local storage."""
    cluster = scope.cluster_dimensions
    return [
        TextWidget(f"# {scope.name}: Aurora"),
        GraphWidget(
            "Writer CPU (%)",
            (Metric(RDS, "CPUUtilization", (*cluster, ("Role", "WRITER")), "Average"),),
            width=6,
        ),
        GraphWidget(
            "Connections",
            (Metric(RDS, "DatabaseConnections", cluster, "Sum"),),
            width=6,
        ),
        GraphWidget(
            "Replica lag (ms)",
            (Metric(RDS, "AuroraReplicaLag", (*cluster, ("Role", "READER")), "Maximum"),),
            width=6,
        ),
        GraphWidget(
            "Free local storage (bytes)",
            (Metric(RDS, "FreeLocalStorage", cluster, "Minimum"),),
            width=6,
        ),
    ]


def _business_widgets(scope: DashboardScope) -> list[GraphWidget | TextWidget]:
    """Business KPIs the payment API publishes: volume, success rate, value."""
    p = scope
    env = (("Environment", p.environment),)

    def payments(name: str, metric_id: str, visible: bool = True) -> Metric:
        return Metric(
            naming.PAYMENT_METRICS_NAMESPACE, name, env, "Sum", id=metric_id, visible=visible
        )

    return [
        TextWidget(f"# {p.name}: business KPIs"),
        GraphWidget(
            "Payments processed",
            (
                payments(naming.METRIC_PAYMENTS_PROCESSED, "processed"),
                payments(naming.METRIC_PAYMENTS_SUCCEEDED, "succeeded"),
                payments(naming.METRIC_PAYMENTS_FAILED, "failed"),
            ),
            width=8,
            period=300,
        ),
        GraphWidget(
            "Payment success rate (%)",
            (
                payments(naming.METRIC_PAYMENTS_PROCESSED, "p", visible=False),
                payments(naming.METRIC_PAYMENTS_SUCCEEDED, "s", visible=False),
                Expression("IF(p > 0, 100 * s / p, 100)", "success rate", "rate"),
            ),
            width=8,
            period=300,
        ),
        GraphWidget(
            "Payment value by currency",
            (
                Expression(
                    f"SEARCH('{{{naming.PAYMENT_METRICS_NAMESPACE},"
                    f"{naming.DIMENSION_ENVIRONMENT},{naming.DIMENSION_CURRENCY}}} "
                    f'MetricName="{naming.METRIC_PAYMENT_VALUE}" '
                    f"{naming.DIMENSION_ENVIRONMENT}=\"{p.environment}\"', 'Sum', 300)",
                    "value",
                    "value",
                ),
            ),
            width=8,
            period=300,
        ),
    ]
