"""Metrics from CloudWatch embedded metric format (EMF) log lines, as CloudWatch Logs extracts.

A Lambda function's stdout goes to CloudWatch Logs, which turns each EMF document into
metrics. Source: CloudWatch User Guide, "Specification: Embedded metric format": the
root holds ``_aws`` with ``Timestamp`` (milliseconds since the epoch) and
``CloudWatchMetrics``, a list of directives, each with a ``Namespace``, ``Dimensions``
(a list of dimension sets, each a list of root member names) and ``Metrics`` (``Name``,
optional ``Unit``); the values of metrics and dimensions are root members. Each metric
is published once per dimension set of its directive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def metric_data(line: str) -> dict[str, list[dict[str, Any]]]:
    """The PutMetricData entries of one log line, by namespace; none for other lines."""
    try:
        document = json.loads(line)
    except ValueError:
        return {}
    if not isinstance(document, Mapping) or not isinstance(document.get("_aws"), Mapping):
        return {}
    meta = document["_aws"]
    stamp = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, UTC)
    found: dict[str, list[dict[str, Any]]] = {}
    for directive in meta.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", []):
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue  # the specification drops a metric without a numeric value
                datum = {"MetricName": metric["Name"], "Dimensions": dimensions,
                         "Timestamp": stamp, "Value": float(value)}  # fmt: skip
                if metric.get("Unit"):
                    datum["Unit"] = metric["Unit"]
                found.setdefault(str(directive["Namespace"]), []).append(datum)
    return found
