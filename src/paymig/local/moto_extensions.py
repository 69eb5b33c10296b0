"""The moto server, with the one API this project needs that moto 5.2.5 does not answer.

CloudWatch ``PutCompositeAlarm``: moto's model keeps composite alarms (an alarm with a
rule; DescribeAlarms lists it under ``CompositeAlarms`` with its ``AlarmRule``), but
its responses have no handler for the call, which answers HTTP 500. The handler added
here stores the composite in moto's own backend with the parameters of the
PutCompositeAlarm API reference that moto's model holds (name, rule, description,
actions, tags). Like every moto alarm, it is never evaluated.

Run as ``python -m paymig.local.moto_extensions`` with moto.server's arguments.
"""

from __future__ import annotations

import sys
from typing import Any


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
    """Install the handlers, then run moto's server with `argv`."""
    install()
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
