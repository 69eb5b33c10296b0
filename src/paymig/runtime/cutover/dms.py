"""The two DMS tasks as a :class:`~paymig.runtime.cutover.replication.Replication`.

The forward task (``naming.dms_task_identifier``, full load and CDC) and the reverse
task (``naming.dms_reverse_task_identifier``, CDC only, Aurora to on-prem). Starting at
a point is DMS's native CDC start: ``StartReplicationTask`` with ``CdcStartPosition``
set to the LSN of the slot the cutover created (DMS API reference,
StartReplicationTask; DMS User Guide, "Using a PostgreSQL database as a source": with
``SlotName`` on the source endpoint DMS reads that slot). A restart of the forward task
after a fallback makes it CDC-only first (``ModifyReplicationTask`` with
``MigrationType=cdc``, allowed on a stopped task): the rows are all there already.

Not verified against AWS: moto accepts these calls but replicates nothing; the logical
replication stand-in is what moves rows in the tests.
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

    def start_forward(self, slot: str, lsn: str) -> str:
        """Make the forward task CDC only and start it at the fallback point."""
        task = self._task(self.forward)
        if task.get("MigrationType") != "cdc" and task["Status"] in _STOPPED:
            self.client.modify_replication_task(
                ReplicationTaskArn=task["ReplicationTaskArn"], MigrationType="cdc"
            )
        return self._start(self.forward, lsn)
