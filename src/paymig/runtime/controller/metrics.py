"""CloudWatch: alarm states, the CDC latency, and the metrics the controller publishes.

Reads serve the gates, `paymig status` and the rollback's check that an alarm event is
still current; writes (the traffic split, DMS per-table progress) happen only in commands
that change something (`shift`, `rollback`, `paymig progress`), never in `status`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from paymig.naming import (
    AWS_SET_ID,
    CDC_LATENCY_METRIC,
    CDC_LATENCY_NAMESPACE,
    LEGACY_SET_ID,
    TRAFFIC_METRIC_NAME,
    TRAFFIC_METRIC_NAMESPACE,
    alarm_names,
    cdc_latency_dimensions,
    composite_alarm_name,
    dms_reverse_task_identifier,
    dms_task_identifier,
)
from paymig.runtime.controller.core import (
    CompositeNow,
    Weights,
    parse_time,
    summarize_table_statistics,
)


class Metrics:
    """Alarm states, the CDC latency, and the traffic-split metric."""

    def __init__(
        self, client: Any, stack_name: str, environment: str, dms: Any | None = None
    ) -> None:
        """Wrap a CloudWatch client (and a DMS client, for the task id) for one environment."""
        self.client = client
        self.stack_name = stack_name
        self.environment = environment
        self.dms = dms

    def dms_task_resource_id(self) -> str | None:
        """Resource id of the environment's DMS task (the last field of its ARN), if any."""
        arn = self._task_arn()
        return None if arn is None else arn.rsplit(":", 1)[-1]

    def alarms(self) -> dict[str, dict[str, Any]]:
        """The environment's alarms that exist (metric and composite), by name."""
        response = self.client.describe_alarms(
            AlarmNames=list(alarm_names(self.stack_name)),
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
        return {
            alarm["AlarmName"]: alarm
            for kind in ("MetricAlarms", "CompositeAlarms")
            for alarm in response.get(kind, [])
        }

    def alarm_states(self) -> dict[str, str]:
        """State of each of the environment's alarms that exists (metric and composite)."""
        return {name: str(alarm["StateValue"]) for name, alarm in self.alarms().items()}

    def composite_now(self) -> CompositeNow | None:
        """The composite's state and when it last changed; None if it does not exist."""
        name = composite_alarm_name(self.stack_name)
        response = self.client.describe_alarms(
            AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        found = response.get("CompositeAlarms", []) + response.get("MetricAlarms", [])
        if not found:
            return None
        # StateTransitionedTimestamp: the last change of StateValue (StateUpdatedTimestamp
        # also moves with the evaluation state); the emulator has only the latter.
        changed = found[0].get("StateTransitionedTimestamp") or found[0].get(
            "StateUpdatedTimestamp"
        )
        return CompositeNow(state=str(found[0]["StateValue"]), updated_at=parse_time(changed))

    def _task_arn(self, identifier: str | None = None) -> str | None:
        """ARN of one of the environment's DMS tasks (default: the forward one), if any."""
        if self.dms is None:
            return None
        tasks = self.dms.describe_replication_tasks(
            Filters=[
                {
                    "Name": "replication-task-id",
                    "Values": [identifier or dms_task_identifier(self.stack_name)],
                }
            ],
            WithoutSettings=True,
        ).get("ReplicationTasks", [])
        return str(tasks[0]["ReplicationTaskArn"]) if tasks else None

    def table_statistics(self) -> dict[str, float] | None:
        """The task's per-table progress, summed (read only); None without a task."""
        arn = self._task_arn()
        if arn is None or self.dms is None:
            return None
        tables: list[dict[str, Any]] = []
        marker = None
        while True:
            kwargs: dict[str, Any] = {"ReplicationTaskArn": arn, "MaxRecords": 500}
            if marker:
                kwargs["Marker"] = marker
            page = self.dms.describe_table_statistics(**kwargs)
            tables.extend(page.get("TableStatistics", []))
            marker = page.get("Marker")
            if not marker:
                break
        return summarize_table_statistics(tables)

    def publish_table_statistics(self) -> dict[str, float] | None:
        """Publish the task's per-table progress as `Paymig/Migration` metrics.

        Returns the published figures, or None when the task does not exist yet.
        """
        figures = self.table_statistics()
        if figures is None:
            return None
        self.client.put_metric_data(
            Namespace=TRAFFIC_METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": self.environment}],
                    "Value": value,
                    "Unit": "Percent" if name.endswith("Percent") else "Count",
                }
                for name, value in figures.items()
            ],
        )
        return figures

    def _task_resource_ids(self) -> list[str]:
        """Resource ids of the forward and the reverse task, those that exist."""
        ids = []
        for identifier in (
            dms_task_identifier(self.stack_name),
            dms_reverse_task_identifier(self.stack_name),
        ):
            arn = self._task_arn(identifier)
            if arn is not None:
                ids.append(arn.rsplit(":", 1)[-1])
        return ids

    def _latency_points(
        self, task_id: str, now: datetime, lookback_seconds: int
    ) -> dict[datetime, float]:
        """One task's per-minute maxima of CDCLatencyTarget in the window, by minute."""
        response = self.client.get_metric_statistics(
            Namespace=CDC_LATENCY_NAMESPACE,
            MetricName=CDC_LATENCY_METRIC,
            Dimensions=[
                {"Name": k, "Value": v}
                for k, v in cdc_latency_dimensions(self.stack_name, task_id).items()
            ],
            StartTime=now - timedelta(seconds=lookback_seconds),
            EndTime=now + timedelta(seconds=60),
            Period=60,
            Statistics=["Maximum"],
        )
        return {p["Timestamp"]: float(p["Maximum"]) for p in response.get("Datapoints", [])}

    def cdc_latency(self, now: datetime, lookback_seconds: int) -> tuple[float, datetime] | None:
        """CDC latency of the replicating direction: the latest minute's value, or None.

        The cdc-latency alarm's rule (``paymig.infra.observability``,
        ``CDC_DIRECTION_EXPRESSION``): per minute, the larger of the forward and the reverse
        task's CDCLatencyTarget where both report, the one that reports otherwise. Before
        cutover only the forward task runs, after it only the reverse one, so this is
        right in every stage without reading it. None when neither task reports in the
        window or neither exists: a gate that cannot be read fails.
        """
        merged: dict[datetime, float] = {}
        for task_id in self._task_resource_ids():
            for at, value in self._latency_points(task_id, now, lookback_seconds).items():
                merged[at] = max(value, merged.get(at, value))
        if not merged:
            return None
        latest = max(merged)
        return merged[latest], latest

    def publish_weights(self, weights: Weights) -> None:
        """Publish the live split as `Paymig/Migration` `TrafficWeight` per set identifier."""
        self.client.put_metric_data(
            Namespace=TRAFFIC_METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": TRAFFIC_METRIC_NAME,
                    "Dimensions": [
                        {"Name": "Environment", "Value": self.environment},
                        {"Name": "SetIdentifier", "Value": set_id},
                    ],
                    "Value": float(weight),
                    "Unit": "Percent",
                }
                for set_id, weight in ((LEGACY_SET_ID, weights.legacy), (AWS_SET_ID, weights.aws))
            ],
        )
