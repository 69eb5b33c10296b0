"""The forward DMS task's restart after a fallback (issue 17, gap 3a).

moto has no ModifyEndpoint, so the calls are checked with botocore's Stubber, which
validates every request against the DMS API model (parameter names and types) as AWS
would; nothing here moves data.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from paymig.naming import dms_task_identifier
from paymig.runtime.cutover.dms import DmsReplication

STACK = "paymig-prod"
TASK = "arn:aws:dms:us-east-2:123456789012:task:FWD"
SOURCE = "arn:aws:dms:us-east-2:123456789012:endpoint:SRC"


def _task(status: str, migration: str) -> dict[str, Any]:
    task = {"ReplicationTaskArn": TASK, "Status": status, "MigrationType": migration}
    return {"ReplicationTasks": [{**task, "SourceEndpointArn": SOURCE}]}


def _describe_task(stub: Stubber, status: str, migration: str = "full-load-and-cdc") -> None:
    stub.add_response(
        "describe_replication_tasks",
        _task(status, migration),
        {"Filters": [{"Name": "replication-task-id", "Values": [dms_task_identifier(STACK)]}]},
    )


def test_fallback_names_its_slot_on_the_endpoint_then_starts_cdc_from_it() -> None:
    client = boto3.client("dms", region_name="us-east-2")
    stub = Stubber(client)
    _describe_task(stub, "stopped")
    stub.add_response(
        "describe_endpoints",
        {"Endpoints": [{"EndpointArn": SOURCE, "PostgreSQLSettings": {"HeartbeatEnable": True}}]},
        {"Filters": [{"Name": "endpoint-arn", "Values": [SOURCE]}]},
    )
    stub.add_response(
        "modify_endpoint",
        {},
        {
            "EndpointArn": SOURCE,
            "PostgreSQLSettings": {"SlotName": "paymig_forward"},
            "ExactSettings": False,
        },
    )
    stub.add_response(
        "modify_replication_task", {}, {"ReplicationTaskArn": TASK, "MigrationType": "cdc"}
    )
    _describe_task(stub, "stopped", "cdc")
    stub.add_response(
        "start_replication_task",
        {},
        {
            "ReplicationTaskArn": TASK,
            "StartReplicationTaskType": "start-replication",
            "CdcStartPosition": "0/1A2B3C4",
        },
    )
    _describe_task(stub, "running", "cdc")
    with stub:
        detail = DmsReplication(client, STACK, sleep=lambda _s: None).start_forward(
            "paymig_forward", "0/1A2B3C4"
        )
    stub.assert_no_pending_responses()
    assert detail.endswith("running from 0/1A2B3C4")


def test_an_endpoint_already_naming_the_slot_is_left_alone() -> None:
    client = boto3.client("dms", region_name="us-east-2")
    stub = Stubber(client)
    stub.add_response(
        "describe_endpoints",
        {"Endpoints": [{"EndpointArn": SOURCE, "PostgreSQLSettings": {"SlotName": "s1"}}]},
        {"Filters": [{"Name": "endpoint-arn", "Values": [SOURCE]}]},
    )
    with stub:
        task = _task("stopped", "cdc")["ReplicationTasks"][0]
        assert DmsReplication(client, STACK).name_forward_slot(task, "s1") is False
    stub.assert_no_pending_responses()
