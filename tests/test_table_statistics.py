"""DMS per-table progress, published by the controller for the dashboard."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from paymig.runtime.controller.aws import Metrics
from paymig.runtime.controller.core import TABLE_STATISTICS_METRICS, summarize_table_statistics

TABLES = [
    {"TableName": "payments", "TableState": "Table completed", "ValidationFailedRecords": 2,
     "ValidationSuspendedRecords": 1},
    {"TableName": "refunds", "TableState": "Full load", "ValidationFailedRecords": 0,
     "ValidationSuspendedRecords": 4},
    {"TableName": "accounts", "TableState": "Table completed"},
    {"TableName": "ledger", "TableState": "Table error", "ValidationFailedRecords": 5},
]  # fmt: skip


def test_summary_sums_failures_and_counts_loaded_tables() -> None:
    assert summarize_table_statistics(TABLES) == {
        "ValidationFailedRecords": 7.0,
        "ValidationSuspendedRecords": 5.0,
        "TablesLoadedPercent": 50.0,
    }
    assert summarize_table_statistics([]) == {
        "ValidationFailedRecords": 0.0,
        "ValidationSuspendedRecords": 0.0,
        "TablesLoadedPercent": 0.0,
    }
    assert tuple(summarize_table_statistics(TABLES)) == TABLE_STATISTICS_METRICS


def test_shell_pages_through_statistics_and_publishes_them() -> None:
    """moto implements no DescribeTableStatistics, so botocore's Stubber stands in for DMS
    and CloudWatch here; it checks the exact requests the shell sends."""
    dms = boto3.client(
        "dms", region_name="us-east-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    cloudwatch = boto3.client(
        "cloudwatch", region_name="us-east-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = "arn:aws:dms:us-east-2:123456789012:task:ABCDEF123"
    task = {
        "ReplicationTasks": [
            {"ReplicationTaskArn": arn, "ReplicationTaskIdentifier": "paymig-prod-task"}
        ]
    }
    lookup = {
        "Filters": [{"Name": "replication-task-id", "Values": ["paymig-prod-task"]}],
        "WithoutSettings": True,
    }
    with Stubber(dms) as dms_stub, Stubber(cloudwatch) as cw_stub:
        dms_stub.add_response("describe_replication_tasks", task, lookup)
        dms_stub.add_response(
            "describe_table_statistics",
            {"TableStatistics": TABLES[:2], "Marker": "m1"},
            {"ReplicationTaskArn": arn, "MaxRecords": 500},
        )
        dms_stub.add_response(
            "describe_table_statistics",
            {"TableStatistics": TABLES[2:]},
            {"ReplicationTaskArn": arn, "MaxRecords": 500, "Marker": "m1"},
        )
        cw_stub.add_response(
            "put_metric_data",
            {},
            {
                "Namespace": "Paymig/Migration",
                "MetricData": [
                    {
                        "MetricName": "ValidationFailedRecords",
                        "Dimensions": [{"Name": "Environment", "Value": "prod"}],
                        "Value": 7.0,
                        "Unit": "Count",
                    },
                    {
                        "MetricName": "ValidationSuspendedRecords",
                        "Dimensions": [{"Name": "Environment", "Value": "prod"}],
                        "Value": 5.0,
                        "Unit": "Count",
                    },
                    {
                        "MetricName": "TablesLoadedPercent",
                        "Dimensions": [{"Name": "Environment", "Value": "prod"}],
                        "Value": 50.0,
                        "Unit": "Percent",
                    },
                ],
            },
        )
        figures = Metrics(cloudwatch, "paymig-prod", "prod", dms=dms).publish_table_statistics()
        dms_stub.assert_no_pending_responses()
        cw_stub.assert_no_pending_responses()
    assert figures == {
        "ValidationFailedRecords": 7.0,
        "ValidationSuspendedRecords": 5.0,
        "TablesLoadedPercent": 50.0,
    }


def test_no_task_publishes_nothing() -> None:
    dms = boto3.client(
        "dms", region_name="us-east-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(dms) as stub:
        stub.add_response("describe_replication_tasks", {"ReplicationTasks": []})
        assert Metrics(object(), "paymig-prod", "prod", dms=dms).publish_table_statistics() is None
    assert Metrics(object(), "paymig-prod", "prod").publish_table_statistics() is None
