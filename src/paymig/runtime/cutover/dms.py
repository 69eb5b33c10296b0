"""The two DMS tasks as a :class:`~paymig.runtime.cutover.replication.Replication`.

The forward task (``naming.dms_task_identifier``, full load and CDC) and the reverse
task (``naming.dms_reverse_task_identifier``, CDC only, Aurora to on-prem). Starting at
a point is DMS's native CDC start: ``StartReplicationTask`` with ``CdcStartPosition``
set to the LSN of the slot the operation created (DMS API reference,
StartReplicationTask: "a logical replication slot should already be created and
associated with the source endpoint"; PostgreSQLSettings ``SlotName``: "the name of a
previously created logical replication slot ... DMS verifies that the specified logical
replication slot exists before starting the CDC load task. It also verifies that the
task was created with a valid setting of CdcStartPosition").

The reverse source endpoint names ``replication.reverse_slot_name`` from the first
apply. The forward one names no slot at first (a ``full-load-and-cdc`` task then lets
DMS create its own, the documented default); a restart after a fallback names
``cutover.forward_slot_name`` on it first (``ModifyEndpoint`` with
``PostgreSQLSettings.SlotName`` and ``ExactSettings=False``, which keeps the other
settings; the stack ignores later changes of that one attribute) and makes the task
CDC-only (``ModifyReplicationTask`` with ``MigrationType=cdc``, allowed on a stopped
task): the rows are all there already.

Not verified against AWS: moto accepts the task calls but replicates nothing and has no
ModifyEndpoint (the tests check that call against the DMS API model with a stubber);
the logical replication stand-in is what moves rows in the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paymig.errors import PaymigError
from paymig.naming import dms_reverse_task_identifier, dms_task_identifier

#: Task states from which a stop has nothing to do.
_STOPPED = ("stopped", "ready", "failed")


class DmsReplication:
    """Stop and start the stack's two DMS tasks, waiting for each to settle."""

    plugin = "test_decoding"

    def __init__(
        self,
        client: Any,
        stack_name: str,
        *,
        timeout_seconds: float = 300.0,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A DMS client and the stack whose tasks these are."""
        self.client = client
        self.forward = dms_task_identifier(stack_name)
        self.reverse = dms_reverse_task_identifier(stack_name)
        self.timeout = timeout_seconds
        self.poll = poll_seconds
        self.sleep = sleep
        self.clock = clock

    def _task(self, identifier: str) -> dict[str, Any]:
        found = self.client.describe_replication_tasks(
            Filters=[{"Name": "replication-task-id", "Values": [identifier]}]
        )["ReplicationTasks"]
        if not found:
            raise PaymigError(f"DMS task {identifier}: not found")
        task: dict[str, Any] = found[0]
        return task

    def _wait(self, identifier: str, wanted: tuple[str, ...]) -> str:
        start = self.clock()
        while True:
            status = str(self._task(identifier)["Status"])
            if status in wanted:
                return status
            if self.clock() - start > self.timeout:
                raise PaymigError(
                    f"DMS task {identifier}: still {status} after {self.timeout:g} s "
                    f"(waiting for {' or '.join(wanted)})"
                )
            self.sleep(self.poll)

    def _stop(self, identifier: str) -> str:
        task = self._task(identifier)
        if task["Status"] in _STOPPED:
            return f"{identifier} already {task['Status']}"
        if task["Status"] != "stopping":
            self.client.stop_replication_task(ReplicationTaskArn=task["ReplicationTaskArn"])
        return f"{identifier} {self._wait(identifier, _STOPPED)}"

    def _start(self, identifier: str, lsn: str) -> str:
        task = self._task(identifier)
        if task["Status"] in ("running", "starting"):
            return f"{identifier} already {task['Status']}"
        self.client.start_replication_task(
            ReplicationTaskArn=task["ReplicationTaskArn"],
            StartReplicationTaskType="start-replication",
            CdcStartPosition=lsn,
        )
        return f"{identifier} {self._wait(identifier, ('running',))} from {lsn}"

    def stop_forward(self) -> str:
        """Stop the forward task."""
        return self._stop(self.forward)

    def start_reverse(self, slot: str, lsn: str) -> str:
        """Start the reverse task at the cutover point (its endpoint names ``slot``)."""
        return self._start(self.reverse, lsn)

    def stop_reverse(self) -> str:
        """Stop the reverse task."""
        return self._stop(self.reverse)

    def name_forward_slot(self, task: dict[str, Any], slot: str) -> bool:
        """Make the forward task's source endpoint name ``slot``; True if it changed."""
        arn = str(task["SourceEndpointArn"])
        found = self.client.describe_endpoints(Filters=[{"Name": "endpoint-arn", "Values": [arn]}])[
            "Endpoints"
        ]
        if not found:
            raise PaymigError(f"DMS endpoint {arn}: not found")
        if found[0].get("PostgreSQLSettings", {}).get("SlotName") == slot:
            return False
        self.client.modify_endpoint(
            EndpointArn=arn, PostgreSQLSettings={"SlotName": slot}, ExactSettings=False
        )
        return True

    def start_forward(self, slot: str, lsn: str) -> str:
        """Name ``slot`` on the source endpoint, make the task CDC only, start at ``lsn``."""
        task = self._task(self.forward)
        if task["Status"] in _STOPPED:
            self.name_forward_slot(task, slot)
        if task.get("MigrationType") != "cdc" and task["Status"] in _STOPPED:
            self.client.modify_replication_task(
                ReplicationTaskArn=task["ReplicationTaskArn"], MigrationType="cdc"
            )
        return self._start(self.forward, lsn)
