"""The moto server with the one API moto 5.2.5 lacks, answering one request at a time.

CloudWatch ``PutCompositeAlarm``: moto's model keeps composite alarms (an alarm with a
rule; DescribeAlarms lists it under ``CompositeAlarms`` with its ``AlarmRule``), but
its responses have no handler for the call, which answers HTTP 500. The handler added
here stores the composite in moto's own backend with the parameters of the
PutCompositeAlarm API reference that moto's model holds (name, rule, description,
actions, tags). Like every moto alarm, it is never evaluated.

One request at a time: moto's backends are plain dictionaries without locks, and
moto.server answers each request in a thread of its own. Terraform sends up to 20 at
once; a create answered with an error after it was stored (another thread changed a
dictionary under it) is retried by the SDK and then fails as a duplicate
("InvalidGroup.Duplicate: The security group ... already exists", seen in a rehearsal).
Requests are served one after another instead, which costs little: the GIL runs one
thread at a time anyway and moto waits on nothing (no long polls are used here).

Run as ``python -m paymig.local.moto_extensions`` with moto.server's arguments.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialized(app: WsgiApp) -> WsgiApp:
    """``app`` answering one request at a time (its whole body read under the lock)."""
    lock = threading.Lock()

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    return call


def _put_composite_alarm(self: Any) -> Any:
    """``PutCompositeAlarm``: store the composite as moto's model does (an alarm with a rule)."""
    from moto.core.responses import EmptyResult

    self.cloudwatch_backend.put_metric_alarm(
        name=self._get_param("AlarmName"),
        namespace=None,
        metric_name=None,
        metric_data_queries=None,
        comparison_operator=None,
        evaluation_periods=None,
        datapoints_to_alarm=None,
        period=None,
        threshold=None,
        statistic=None,
        extended_statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        unit=None,
        actions_enabled=self._get_bool_param("ActionsEnabled"),
        treat_missing_data=None,
        evaluate_low_sample_count_percentile=None,
        threshold_metric_id=None,
        rule=self._get_param("AlarmRule"),
        tags=self._get_param("Tags", []),
    )
    return EmptyResult()


def install() -> None:
    """Add the handlers to moto's response classes (in this process only)."""
    from moto.cloudwatch.responses import CloudWatchResponse

    CloudWatchResponse.put_composite_alarm = _put_composite_alarm  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    """Install the handlers, then run moto's server with `argv`, one request at a time."""
    install()
    from moto import server

    run_simple = server.run_simple  # type: ignore[attr-defined]

    def run_serialized(host: str, port: int, app: WsgiApp, **options: Any) -> None:
        run_simple(host, port, serialized(app), **options)

    server.run_simple = run_serialized  # type: ignore[attr-defined,assignment]
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
