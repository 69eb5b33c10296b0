"""Resources the apply could not create, created from their synthesized definitions.

Some resources of the stack fail against moto 5.2.5 for reasons of the emulator, not of
the stack: everything that refers to the DMS task waits on a task the provider cannot
create. Where the emulator can hold the
resource through another route, the rehearsal creates it from the definition in
``cdk.tf.json``, with each Terraform reference resolved from the apply's state:

- the composite alarm, when the apply could not create it (it depends on the alarms it
  watches): through the emulator's PutCompositeAlarm, which
  :mod:`paymig.local.moto_extensions` adds to moto (Terraform uses the same route);
- metric alarms that depend on the DMS task: with the task's resource id taken from the
  DMS task record the rehearsal created (it moves no data);
- the dashboard: its body as synthesized, with the same resource id.

Everything created here is listed in the report as such.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paymig.errors import CommandFailedError
from paymig.rehearsal.delivery import CompositeDefinition

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ATTRIBUTE = re.compile(r"^([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)$")


def state_attributes(state_path: Path) -> dict[str, dict[str, Any]]:
    """Each managed resource's attributes from a Terraform state file (format 4)."""
    state = json.loads(state_path.read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = {}
    for resource in state.get("resources", []):
        if resource.get("mode") != "managed" or not resource.get("instances"):
            continue
        found[f"{resource['type']}.{resource['name']}"] = resource["instances"][0]["attributes"]
    return found


@dataclass(frozen=True)
class Resolver:
    """Resolves ``${type.name.attribute}`` and ``${local.name}`` in synthesized values."""

    attributes: Mapping[str, Mapping[str, Any]]
    local_values: Mapping[str, str]

    def reference(self, text: str) -> str:
        """The value one reference stands for."""
        if text.startswith("local."):
            name = text.removeprefix("local.")
            if name in self.local_values:
                return self.local_values[name]
        found = _ATTRIBUTE.match(text)
        if found:
            kind, name, attribute = found.groups()
            value = self.attributes.get(f"{kind}.{name}", {}).get(attribute)
            if value is not None:
                return str(value)
        raise CommandFailedError(f"cannot resolve ${{{text}}} from the apply's state")

    def value(self, item: Any) -> Any:
        """`item` with every reference in its strings resolved."""
        if isinstance(item, str):
            return _REFERENCE.sub(lambda m: self.reference(m.group(1)), item)
        if isinstance(item, list):
            return [self.value(v) for v in item]
        if isinstance(item, Mapping):
            return {k: self.value(v) for k, v in item.items() if k != "//"}
        return item


def resources_of(document: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The synthesized resources of one type, by address."""
    return {f"{kind}.{n}": dict(b) for n, b in document.get("resource", {}).get(kind, {}).items()}


def _blocks(value: Any) -> list[Mapping[str, Any]]:
    """A nested block as synthesized: one object, or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def metric_alarm_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm parameters from a resolved ``aws_cloudwatch_metric_alarm`` body."""
    metrics = []
    for query in _blocks(body.get("metric_query")):
        item: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("return_data"))}
        if query.get("expression"):
            item["Expression"] = query["expression"]
            if query.get("label"):
                item["Label"] = query["label"]
        for metric in _blocks(query.get("metric")):
            dims = metric.get("dimensions") or {}
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": metric["namespace"],
                    "MetricName": metric["metric_name"],
                    "Dimensions": [{"Name": k, "Value": str(v)} for k, v in dims.items()],
                },
                "Period": int(metric["period"]),
                "Stat": metric["stat"],
            }
        metrics.append(item)
    request: dict[str, Any] = {
        "AlarmName": body["alarm_name"],
        "AlarmDescription": body.get("alarm_description", ""),
        "ComparisonOperator": body["comparison_operator"],
        "Threshold": float(body["threshold"]),
        "EvaluationPeriods": int(body["evaluation_periods"]),
        "TreatMissingData": body.get("treat_missing_data", "missing"),
        "ActionsEnabled": bool(body.get("actions_enabled", True)),
        "AlarmActions": list(body.get("alarm_actions", [])),
        "OKActions": list(body.get("ok_actions", [])),
        "Metrics": metrics,
    }
    if body.get("datapoints_to_alarm") is not None:
        request["DatapointsToAlarm"] = int(body["datapoints_to_alarm"])
    return request


def composite_definition(body: Mapping[str, Any], account: str, region: str) -> CompositeDefinition:
    """The composite alarm from a resolved ``aws_cloudwatch_composite_alarm`` body."""
    name = str(body["alarm_name"])
    return CompositeDefinition(
        name=name,
        arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        description=body.get("alarm_description"),
        rule=str(body["alarm_rule"]),
        actions_enabled=bool(body.get("actions_enabled", True)),
        alarm_actions=tuple(body.get("alarm_actions", [])),
        ok_actions=tuple(body.get("ok_actions", [])),
        insufficient_data_actions=tuple(body.get("insufficient_data_actions", [])),
    )


def put_composite(cloudwatch: Any, definition: CompositeDefinition) -> None:
    """Create the composite alarm (the emulator's PutCompositeAlarm is an extension)."""
    cloudwatch.put_composite_alarm(
        AlarmName=definition.name,
        AlarmRule=definition.rule,
        AlarmDescription=definition.description or "",
        ActionsEnabled=definition.actions_enabled,
        AlarmActions=list(definition.alarm_actions),
        OKActions=list(definition.ok_actions),
        InsufficientDataActions=list(definition.insufficient_data_actions),
    )
    found = cloudwatch.describe_alarms(AlarmNames=[definition.name], AlarmTypes=["CompositeAlarm"])
    if not found.get("CompositeAlarms"):
        raise CommandFailedError(f"{definition.name}: the emulator did not keep the composite")


def dashboard_metrics(
    body: Mapping[str, Any],
) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Every metric a dashboard graphs: (namespace, name, dimensions).

    A metric row is ``[namespace, name, dim, value, ..., {options}]``; ``"..."`` and
    ``"."`` repeat the previous row's values (CloudWatch's dashboard body syntax).
    """
    found = []
    for widget in body.get("widgets", []):
        previous: list[str] = []
        for row in widget.get("properties", {}).get("metrics", []):
            values = [v for v in row if not isinstance(v, Mapping)]
            if not values:
                continue  # an expression row
            if values[0] == "...":
                values = previous[: len(previous) - len(values) + 1] + values[1:]
            values = [previous[i] if v == "." and i < len(previous) else v
                      for i, v in enumerate(values)]  # fmt: skip
            previous = [str(v) for v in values]
            dims = tuple(zip(previous[2::2], previous[3::2], strict=False))
            found.append((previous[0], previous[1], dims))
    return found
