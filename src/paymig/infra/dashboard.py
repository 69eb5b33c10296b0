"""A typed model of a CloudWatch dashboard body, rendered to the JSON CloudWatch reads.

Widgets are built from :class:`Metric` and :class:`Expression` values, never from JSON
string templates, so every metric carries its namespace, name and dimensions as data
that tests can check (a metric without the right dimensions shows nothing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric with its dimensions and statistic."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str = "Average"
    label: str | None = None
    id: str | None = None
    visible: bool = True

    def to_json(self) -> list[Any]:
        """The metric as a dashboard `metrics` array entry."""
        entry: list[Any] = [self.namespace, self.name]
        for key, value in self.dimensions:
            entry += [key, value]
        options: dict[str, Any] = {"stat": self.stat}
        if self.label:
            options["label"] = self.label
        if self.id:
            options["id"] = self.id
        if not self.visible:
            options["visible"] = False
        entry.append(options)
        return entry


@dataclass(frozen=True)
class Expression:
    """A metric-math or SEARCH expression over other metrics."""

    expression: str
    label: str
    id: str

    def to_json(self) -> list[Any]:
        """The expression as a dashboard `metrics` array entry."""
        return [{"expression": self.expression, "label": self.label, "id": self.id}]


@dataclass(frozen=True)
class GraphWidget:
    """A time-series (or single-value) graph."""

    title: str
    metrics: tuple[Metric | Expression, ...]
    width: int = 12
    height: int = 6
    period: int = 60
    view: str = "timeSeries"
    y_label: str | None = None

    def to_json(self, region: str, x: int, y: int) -> dict[str, Any]:
        """The widget as dashboard JSON at position (x, y)."""
        properties: dict[str, Any] = {
            "title": self.title,
            "region": region,
            "view": self.view,
            "period": self.period,
            "metrics": [m.to_json() for m in self.metrics],
        }
        if self.y_label:
            properties["yAxis"] = {"left": {"label": self.y_label, "showUnits": False}}
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": self.width,
            "height": self.height,
            "properties": properties,
        }


@dataclass(frozen=True)
class TextWidget:
    """A Markdown heading or note."""

    markdown: str
    width: int = 24
    height: int = 1

    def to_json(self, region: str, x: int, y: int) -> dict[str, Any]:
        """The widget as dashboard JSON at position (x, y)."""
        del region
        return {
            "type": "text",
            "x": x,
            "y": y,
            "width": self.width,
            "height": self.height,
            "properties": {"markdown": self.markdown},
        }


@dataclass
class Dashboard:
    """Widgets laid out left to right, top to bottom, on CloudWatch's 24-column grid."""

    region: str
    widgets: list[GraphWidget | TextWidget] = field(default_factory=list)

    def add(self, *widgets: GraphWidget | TextWidget) -> Dashboard:
        """Append widgets; return self."""
        self.widgets.extend(widgets)
        return self

    def body(self) -> dict[str, Any]:
        """The dashboard body as data."""
        x = y = row_height = 0
        placed = []
        for widget in self.widgets:
            if x + widget.width > 24:
                x, y, row_height = 0, y + row_height, 0
            placed.append(widget.to_json(self.region, x, y))
            x += widget.width
            row_height = max(row_height, widget.height)
        return {"widgets": placed}

    def to_json(self) -> str:
        """The dashboard body as the JSON text `aws_cloudwatch_dashboard` takes."""
        return json.dumps(self.body())
