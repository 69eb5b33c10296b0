"""Observability (requirement 6): alarms that can fire, their composite, and the dashboard.

Every alarm names the real resources in its dimensions (ALB and target group ARN
suffixes, the DMS instance and the task's resource id, the Aurora cluster, the function
and alias), taken from the other constructs' attributes, so it watches data that exists.
The composite ``migration-health`` alarm notifies the alarm topic, which triggers the
rollback Lambda (see :mod:`paymig.infra.automation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import Fn, TerraformLocal
from cdktf_cdktf_provider_aws.cloudwatch_composite_alarm import CloudwatchCompositeAlarm
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from paymig import naming
from paymig.config import AlarmSettings, ObservabilityConfig
from paymig.infra.dashboard import Expression, Metric
from paymig.infra.iam import policy_document, statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps, service_usage
from paymig.infra.observability_dashboard import (
    ALB,
    DMS,
    LAMBDA,
    RDS,
    DashboardScope,
    migration_dashboard,
)

SQS = "AWS/SQS"

#: Custom metric counting error lines in the DMS task log (DMS has no failure metric).
DMS_ERRORS_METRIC = "DmsTaskErrors"
#: The cdc-latency alarm's expression over the forward (m1) and reverse (m2) tasks'
#: CDCLatencyTarget. CloudWatch's metric math: a comparison of two series treats a value
#: missing in one as 0, and IF with a true condition and a missing value gives 0; so the
#: result is m1 or m2 where only one reports, their maximum where both do, and missing
#: where neither does (paymig.semantics.cloudwatch_metric_math, tested there and here).
CDC_DIRECTION_EXPRESSION = "IF(m1 >= m2, m1, m2)"
#: DMS writes ``E:`` severity lines, e.g. ``[TARGET_APPLY    ]E:  ...``, on errors.
DMS_ERROR_PATTERN = '"]E:"'


@dataclass(frozen=True)
class ObservabilityProps:
    """Inputs of the observability tier: the real resources to watch."""

    name: str
    environment: str
    region: str
    account_id: str
    observability: ObservabilityConfig
    alb_arn_suffix: str
    target_group_arn_suffixes: dict[str, str]
    function_name: str
    cluster_identifier: str
    dms_instance_identifier: str
    #: None once the migration is finished (no DMS any more).
    dms_task_arn: str | None
    log_retention_days: int
    #: The reverse (Aurora to on-prem) task, the way back after cutover; None once finished.
    dms_reverse_task_arn: str | None = None
    #: ``migration.stage``: replication alarms are armed from ``cdc`` on.
    stage: str = "cdc"


class ObservabilityTier(Construct):
    """The alarm topics, the six metric alarms, the composite and the dashboard.

    Attributes: :attr:`topic` (composite: rollback and people), :attr:`alert_topic`
    (single alarms: people), :attr:`alarms` (by metric), :attr:`composite`,
    :attr:`dashboard`, :attr:`key`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: ObservabilityProps) -> None:
        """Create the alarms and the dashboard."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_dms_task_resource_id()
        self._build_key()
        self._build_topics()
        self._build_subscriptions()
        self._build_dms_error_metric()
        self._build_alarms()
        self._build_composite()
        self._build_dashboard()

    @property
    def has_dms(self) -> bool:
        """Whether DMS is still deployed (every stage but ``finished``)."""
        return self.props.dms_task_arn is not None

    # ---------------------------------------------------------------- names and dimensions

    @property
    def _dms_log_group_name(self) -> str:
        """The log group DMS writes the task log to (name fixed by DMS)."""
        return f"dms-tasks-{self.props.dms_instance_identifier}"

    @property
    def _lb_dimensions(self) -> tuple[tuple[str, str], ...]:
        """Dimensions of the load balancer's metrics."""
        return (("LoadBalancer", self.props.alb_arn_suffix),)

    @property
    def _dms_dimensions(self) -> tuple[tuple[str, str], ...]:
        """Dimensions of the DMS task's metrics."""
        return (
            ("ReplicationInstanceIdentifier", self.props.dms_instance_identifier),
            ("ReplicationTaskIdentifier", self.dms_task_resource_id),
        )

    @property
    def _reverse_dms_dimensions(self) -> tuple[tuple[str, str], ...]:
        """Dimensions of the reverse DMS task's metrics (same instance)."""
        return (
            ("ReplicationInstanceIdentifier", self.props.dms_instance_identifier),
            ("ReplicationTaskIdentifier", self.dms_reverse_task_resource_id),
        )

    @property
    def _cluster_dimensions(self) -> tuple[tuple[str, str], ...]:
        """Dimensions of the Aurora cluster's metrics."""
        return (("DBClusterIdentifier", self.props.cluster_identifier),)

    # ---------------------------------------------------------------- builders

    def _build_dms_task_resource_id(self) -> None:
        """The DMS tasks' resource ids, as Terraform locals.

        CloudWatch names a DMS task by its resource id: the last field of its ARN. A
        local keeps the expression's quotes out of the dashboard's JSON text.
        """
        self.dms_task_resource_id = self.dms_reverse_task_resource_id = ""
        if self.props.dms_task_arn is None:
            return
        self.dms_task_resource_id_local = TerraformLocal(
            self, "dms_task_resource_id", Fn.element(Fn.split(":", self.props.dms_task_arn), 6)
        )
        self.dms_task_resource_id = str(self.dms_task_resource_id_local.as_string)
        if self.props.dms_reverse_task_arn is not None:
            self.dms_reverse_task_resource_id_local = TerraformLocal(
                self,
                "dms_reverse_task_resource_id",
                Fn.element(Fn.split(":", self.props.dms_reverse_task_arn), 6),
            )
            self.dms_reverse_task_resource_id = str(
                self.dms_reverse_task_resource_id_local.as_string
            )

    def _build_key(self) -> None:
        """The CMK of the topics and the DMS task logs.

        The publishers of the encrypted topics must be admitted by the key policy (SNS
        Developer Guide, "Encryption at rest"): CloudWatch alarms and EventBridge rules.
        """
        props = self.props
        stack = props.name
        source: dict[str, object] = {"StringEquals": {"aws:SourceAccount": props.account_id}}
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{stack}/observability",
                description=f"{stack}: encrypts the alarm topics and the DMS task logs",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    service_usage(
                        "CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", condition=source
                    ),
                    service_usage(
                        "EventBridgeRulesPublish", "events.amazonaws.com", condition=source
                    ),
                    statement(
                        "AccountUsesKeyThroughSns",
                        KEY_USAGE_ACTIONS,
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:ViaService": f"sns.{props.region}.amazonaws.com",
                                "kms:CallerAccount": props.account_id,
                            }
                        },
                    ),
                ],
            ),
        )

    def _build_topics(self) -> None:
        """The composite's topic and the single alarms' topic, both encrypted.

        Single alarms only inform people (which signal fired); the composite's topic
        also triggers the rollback.
        """
        stack = self.props.name
        self.topic = SnsTopic(
            self,
            "topic",
            name=naming.alarm_topic_name(stack),
            kms_master_key_id=self.key.arn,
        )
        self.alert_topic = SnsTopic(
            self,
            "alert-topic",
            name=naming.alert_topic_name(stack),
            kms_master_key_id=self.key.arn,
        )
        # The alert topic's own policy: alarms and EventBridge rules of this account may
        # publish (IAM principals of the account publish through their IAM policies).
        self.alert_topic_policy = SnsTopicPolicy(
            self,
            "alert-topic-policy",
            arn=self.alert_topic.arn,
            policy=policy_document(
                *(
                    statement(
                        sid,
                        ["sns:Publish"],
                        self.alert_topic.arn,
                        principal={"Service": service},
                        condition={"StringEquals": {"aws:SourceAccount": self.props.account_id}},
                    )
                    for sid, service in (
                        ("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com"),
                        ("EventBridgeRulesPublish", "events.amazonaws.com"),
                    )
                )
            ),
        )

    def _build_subscriptions(self) -> None:
        """The configured people's e-mail and HTTPS subscriptions to both topics."""
        observability = self.props.observability
        for topic_id, topic in (("alarm", self.topic), ("alert", self.alert_topic)):
            for index, email in enumerate(observability.notification_emails):
                SnsTopicSubscription(
                    self,
                    f"{topic_id}-email-{index}",
                    topic_arn=topic.arn,
                    protocol="email",
                    endpoint=email,
                )
            for index, url in enumerate(observability.notification_https_endpoints):
                SnsTopicSubscription(
                    self,
                    f"{topic_id}-https-{index}",
                    topic_arn=topic.arn,
                    protocol="https",
                    endpoint=url,
                )

    def _build_dms_error_metric(self) -> None:
        """The DMS task log group and the metric filter that counts its error lines."""
        stack = self.props.name
        if not self.has_dms:
            return
        self.dms_log_group = self.key.encrypted_log_group(
            self,
            "dms-log-group",
            name=self._dms_log_group_name,
            retention_days=self.props.log_retention_days,
        )
        self.dms_error_filter = CloudwatchLogMetricFilter(
            self,
            "dms-error-filter",
            name=f"{stack}-dms-task-errors",
            log_group_name=self.dms_log_group.name,
            pattern=DMS_ERROR_PATTERN,
            metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                namespace=naming.TRAFFIC_METRIC_NAMESPACE,
                name=f"{DMS_ERRORS_METRIC}-{stack}",
                value="1",
                default_value="0",
                unit="Count",
            ),
        )

    def _build_alarms(self) -> None:
        """The six metric alarms, each on the real resource's dimensions."""
        stack = self.props.name
        alarms = self.props.observability.alarms
        lb = self._lb_dimensions
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        self.alarms["5xx-rate"] = self._alarm(
            "5xx-rate",
            alarms["5xx-rate"],
            "Percent of API requests answered 5xx (ALB and targets) over all requests.",
            [
                Metric(ALB, "HTTPCode_ELB_5XX_Count", lb, "Sum"),
                Metric(ALB, "HTTPCode_Target_5XX_Count", lb, "Sum"),
                Metric(ALB, "RequestCount", lb, "Sum"),
            ],
            Expression(
                "IF(m3 > 0, 100 * (FILL(m1, 0) + FILL(m2, 0)) / m3, 0)", "5xx rate (%)", "e1"
            ),
        )
        self.alarms["p99-latency"] = self._alarm(
            "p99-latency",
            alarms["p99-latency"],
            "p99 of the API's target response time in seconds.",
            [Metric(ALB, "TargetResponseTime", lb, "p99")],
        )
        if not self.has_dms:
            self._build_aurora_alarms()
            return
        armed = self.props.stage == "cdc"
        self.alarms["cdc-latency"] = self._cdc_latency_alarm(armed)
        self.alarms["dms-task-failure"] = self._alarm(
            "dms-task-failure",
            alarms["dms-task-failure"],
            "Error lines in the DMS task log (the task stops on data errors).",
            [Metric(naming.TRAFFIC_METRIC_NAMESPACE, f"{DMS_ERRORS_METRIC}-{stack}", (), "Sum")],
            armed=armed,
        )
        self._build_aurora_alarms()

    def _cdc_latency_alarm(self, armed: bool) -> CloudwatchMetricAlarm:
        """CDC latency of the direction that replicates: forward before cutover, reverse after.

        Each task reports CDCLatencyTarget only while it runs, and the cutover stops the
        forward task once the reverse one runs (the fallback the other way round). The
        alarm evaluates :data:`CDC_DIRECTION_EXPRESSION`: the larger of the two where both
        report, the one that reports otherwise, and no datapoint when neither does, which
        ``breaching`` turns into ALARM (no way back, or no way forward). No call at
        cutover is needed, and the composite (user-facing alarms only) never sees it.
        """
        settings = self.props.observability.alarms["cdc-latency"]
        if self.props.dms_reverse_task_arn is None:
            return self._alarm(
                "cdc-latency",
                settings,
                "Seconds the Aurora target lags the on-prem source (DMS CDCLatencyTarget).",
                [Metric(DMS, "CDCLatencyTarget", self._dms_dimensions, "Maximum")],
                armed=armed,
            )
        return self._alarm(
            "cdc-latency",
            settings,
            "Seconds the replicating direction's target lags its source (DMS "
            "CDCLatencyTarget): the forward task (on-prem to Aurora) before cutover, the "
            "reverse task (Aurora to on-prem, the way back) after it; neither reporting is "
            "missing data.",
            [
                Metric(DMS, "CDCLatencyTarget", self._dms_dimensions, "Maximum"),
                Metric(DMS, "CDCLatencyTarget", self._reverse_dms_dimensions, "Maximum"),
            ],
            Expression(CDC_DIRECTION_EXPRESSION, "CDC latency of the replicating task (s)", "e1"),
            armed=armed,
        )

    def _build_aurora_alarms(self) -> None:
        """Writer CPU and reader lag: they page people."""
        alarms = self.props.observability.alarms
        cluster = self._cluster_dimensions
        self.alarms["aurora-cpu"] = self._alarm(
            "aurora-cpu",
            alarms["aurora-cpu"],
            "CPU of the Aurora writer in percent.",
            [Metric(RDS, "CPUUtilization", (*cluster, ("Role", "WRITER")), "Average")],
        )
        self.alarms["replica-lag"] = self._alarm(
            "replica-lag",
            alarms["replica-lag"],
            "Lag of the Aurora readers behind the writer in milliseconds.",
            [Metric(RDS, "AuroraReplicaLag", (*cluster, ("Role", "READER")), "Maximum")],
        )

    def _build_composite(self) -> None:
        """The composite `migration-health` alarm: the AWS side's health, which rolls back.

        Only the user-facing alarms (:data:`paymig.naming.ROLLBACK_ALARM_METRICS`): a
        traffic rollback fixes those. Replication and Aurora alarms page people and gate
        shifts instead; while the API writes to the source they do not touch users.
        """
        stack = self.props.name
        watched = [self.alarms[m] for m in naming.ROLLBACK_ALARM_METRICS]
        self.composite = CloudwatchCompositeAlarm(
            self,
            "composite",
            alarm_name=naming.composite_alarm_name(stack),
            alarm_description="The AWS side's 5xx rate or p99 latency in ALARM: roll traffic "
            "back to legacy (the rollback function acts on the migration's stage).",
            alarm_rule=" OR ".join(
                f"ALARM({json.dumps(naming.alarm_name(stack, m))})"
                for m in naming.ROLLBACK_ALARM_METRICS
            ),
            actions_enabled=True,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            depends_on=watched,
        )

    def _build_dashboard(self) -> None:
        """The migration dashboard, from its typed model."""
        props = self.props
        self.dashboard_model = migration_dashboard(
            DashboardScope(
                name=props.name,
                environment=props.environment,
                region=props.region,
                function_name=props.function_name,
                target_group_arn_suffixes=props.target_group_arn_suffixes,
                lb_dimensions=self._lb_dimensions,
                dms_dimensions=self._dms_dimensions,
                cluster_dimensions=self._cluster_dimensions,
                has_dms=self.has_dms,
            )
        )
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=f"{self.props.name}-migration",
            dashboard_body=self.dashboard_model.to_json(),
        )

    # ---------------------------------------------------------------- more watchers

    def watch_bucket_deletions(self, rule_id: str, bucket_name: str) -> None:
        """Alert people when objects are deleted from a bucket (its EventBridge events).

        The bucket sends its events to EventBridge; this rule reads the deletions
        (PCI DSS 10.3: audit logs protected from unnoticed removal).
        """
        rule = CloudwatchEventRule(
            self,
            f"{rule_id}-rule",
            name=f"{self.props.name}-{rule_id}",
            description=f"Objects deleted from {bucket_name}",
            event_pattern=json.dumps(
                {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Deleted"],
                    "detail": {"bucket": {"name": [bucket_name]}},
                }
            ),
        )
        CloudwatchEventTarget(self, f"{rule_id}-target", rule=rule.name, arn=self.alert_topic.arn)

    def watch_function(self, watch_id: str, function_name: str, queue_name: str) -> None:
        """Alert people when a function fails, is throttled, or dead-letters an event.

        A failed automatic rollback must never be silent: each of the three signals
        alarms on its own, on the first occurrence, to the alert topic.
        """
        signals = (
            ("errors", LAMBDA, "Errors", (("FunctionName", function_name),)),
            ("throttles", LAMBDA, "Throttles", (("FunctionName", function_name),)),
            ("dead-letters", SQS, "ApproximateNumberOfMessagesVisible",
             (("QueueName", queue_name),)),
        )  # fmt: skip
        for signal, namespace, metric, dimensions in signals:
            stat = "Maximum" if namespace == SQS else "Sum"
            CloudwatchMetricAlarm(
                self,
                f"alarm-{watch_id}-{signal}",
                alarm_name=f"{self.props.name}-{watch_id}-{signal}",
                alarm_description=f"{function_name}: {metric} above 0 (missing: not breaching).",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                treat_missing_data="notBreaching",
                metric_query=[
                    self._query("m1", Metric(namespace, metric, dimensions, stat), 60, True)
                ],
                actions_enabled=True,
                alarm_actions=[self.alert_topic.arn],
                ok_actions=[self.alert_topic.arn],
            )

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _query(
        query_id: str, metric: Metric, period: int, returned: bool
    ) -> CloudwatchMetricAlarmMetricQuery:
        """One metric of an alarm's metric query."""
        return CloudwatchMetricAlarmMetricQuery(
            id=query_id,
            return_data=returned,
            metric=CloudwatchMetricAlarmMetricQueryMetric(
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions=dict(metric.dimensions) or None,
                stat=metric.stat,
                period=period,
            ),
        )

    def _alarm(
        self,
        metric: str,
        settings: AlarmSettings,
        description: str,
        metrics: list[Metric],
        expression: Expression | None = None,
        *,
        armed: bool = True,
    ) -> CloudwatchMetricAlarm:
        """One metric alarm from its configured settings.

        With an expression, the metrics are its inputs (ids m1, m2, ...) and the
        expression is what the alarm evaluates; without, the single metric is.
        """
        queries = [
            self._query(f"m{i}", m, settings.period_seconds, expression is None)
            for i, m in enumerate(metrics, start=1)
        ]
        if expression is not None:
            queries.append(
                CloudwatchMetricAlarmMetricQuery(
                    id=expression.id,
                    expression=expression.expression,
                    label=expression.label,
                    return_data=True,
                )
            )
        return CloudwatchMetricAlarm(
            self,
            f"alarm-{metric}",
            alarm_name=naming.alarm_name(self.props.name, metric),
            alarm_description=f"{description} Missing data: {settings.treat_missing_data} "
            f"({settings.missing_data_reason})"
            + ("" if armed else " Unarmed until migration.stage is cdc (CDC running)."),
            comparison_operator="GreaterThanThreshold",
            threshold=settings.threshold,
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.datapoints_to_alarm,
            treat_missing_data=settings.treat_missing_data,
            metric_query=queries,
            # An unarmed alarm keeps its state (the gates read it) but notifies nobody.
            actions_enabled=True,
            alarm_actions=[self.alert_topic.arn] if armed else [],
            ok_actions=[self.alert_topic.arn] if armed else [],
        )
