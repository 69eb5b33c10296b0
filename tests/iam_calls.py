"""Record the IAM action of every AWS call a command makes, for the permission registry.

Every boto3 client's calls pass through `BaseClient._make_api_call`, so patching it sees
each client a command creates (the CLI's own, the controller's, the rollback path's),
including calls a test's hook answers without sending. Only calls made while `command`
is set are recorded, so a test's own set-up calls are not counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient

from paymig.runtime.controller.permissions import COMMANDS, iam_action

#: The commands tests/test_cutover.py runs against the registry (cutover then fallback
#: in one test, the watch in its own); test_controller_moto runs the others, and
#: together they must cover every command of the registry.
CUTOVER_COMMANDS = ("cutover", "fallback")
WATCH_COMMAND = "watch"


@dataclass
class IamCalls:
    """The IAM action and parameters of each call, per command."""

    command: str | None = None
    #: Record only this thread's calls (a command run in a thread while the test acts).
    thread: int | None = None
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> IamCalls:
        """Record every call from now on (until the test ends)."""
        original = BaseClient._make_api_call

        def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if self.command is not None and self.thread in (None, threading.get_ident()):
                action = iam_action(client.meta.service_model.service_name, operation)
                self.seen.setdefault(self.command, []).append((action, dict(params)))
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", recording)
        return self

    def actions(self, command: str) -> set[str]:
        """The IAM actions `command` called."""
        return {action for action, _ in self.seen.get(command, [])}

    def params(self, command: str, action: str) -> list[dict[str, Any]]:
        """The parameters of each call of `action` by `command`, in order."""
        return [params for a, params in self.seen.get(command, []) if a == action]

    def missing(self) -> dict[str, set[str]]:
        """Per command, the actions it called that the registry does not list for it."""
        gaps = {c: self.actions(c) - set(COMMANDS[c]) for c in self.seen}
        return {c: gap for c, gap in gaps.items() if gap}
