"""The rows of the configuration reference, read from the config model, and its rendering.

Every leaf field of :class:`~paymig.config.PaymigConfig` is one row; the fields of a
model inside a list or a map (an alarm's settings, a table rule) are rows too, named
``observability.alarms.<alarm>.threshold`` or ``replication.table_rules[].action``. A
default made of such models gets its own small table instead of a one-line value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, get_args, get_origin

import jinja2
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from paymig.config import PaymigConfig
from paymig.config_docs.labels import type_label, yaml_text

#: Where the generated reference is committed, relative to the repository root.
OUTPUT = "docs/configuration.md"


@dataclass(frozen=True)
class Row:
    """One field of the reference: dotted name, type, default and description."""

    name: str
    kind: str
    default: str
    description: str
    operator_supplied: bool


@dataclass(frozen=True)
class DefaultTable:
    """A default made of models (a map or list of them), one table row per entry."""

    heading: str
    anchor: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Reference:
    """Everything the template prints: the field rows and the tables of nested defaults."""

    rows: list[Row] = field(default_factory=list)
    tables: list[DefaultTable] = field(default_factory=list)


def cell(text: str) -> str:
    """Text made safe for a Markdown table cell (a `|` would end the cell)."""
    return text.replace("|", "\\|")


def anchor(heading: str) -> str:
    """The link target GitHub gives a heading: lower case, no punctuation, `-` for spaces."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _entry_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """For `list[Model]` or `dict[K, Model]`: the model and the label of one entry's key.

    The key label is `""` for a list (its entries are written `name[].field`).
    """
    origin, args = get_origin(annotation), get_args(annotation)
    value = args[:1] if origin is list else args[1:] if origin is dict else ()
    if not value or not (isinstance(value[0], type) and issubclass(value[0], BaseModel)):
        return None
    return value[0], "" if origin is list else type_label(args[0])


def _value_cell(value: Any) -> str:
    """A value inside a default table: prose stays prose, anything else as YAML."""
    if isinstance(value, str) and " " in value:
        return cell(value)
    return f"`{cell(yaml_text(value))}`"


def default_table(name: str, value: Any, model: type[BaseModel], key: str) -> DefaultTable:
    """The default of `name`, a map (entries named by `key`) or a list of `model`."""
    fields = list(model.model_fields)
    entries = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    rows = [
        ([f"`{yaml_text(k)}`"] if key else []) + [_value_cell(getattr(v, f)) for f in fields]
        for k, v in entries
    ]
    heading = f"Default of `{name}`"
    return DefaultTable(heading, anchor(heading), ([key] if key else []) + fields, rows)


def _default(info: FieldInfo) -> Any:
    """The field's default value, or PydanticUndefined when it is required."""
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def _default_cell(value: Any) -> str:
    """The Default column: **required**, unset, or the value as written in YAML."""
    if value is PydanticUndefined:
        return "**required**"
    if value is None:
        return "unset"
    return f"`{cell(yaml_text(value))}`"


def _operator_supplied(info: FieldInfo) -> bool:
    """Whether only the operator knows the value (`operator_supplied` in the field's extra)."""
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("operator_supplied"))


def collect(model: type[BaseModel], prefix: str, into: Reference) -> Reference:
    """Add a row for every leaf field of `model` (and of models in its lists and maps)."""
    for name, info in model.model_fields.items():
        dotted, annotation = f"{prefix}{name}", info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            collect(annotation, dotted + ".", into)
            continue
        value, entry = _default(info), _entry_model(annotation)
        default = _default_cell(value)
        if entry is not None and isinstance(value, (list, dict)) and value:
            table = default_table(dotted, value, *entry)
            into.tables.append(table)
            count = f"{len(value)} {'entry' if len(value) == 1 else 'entries'}"
            default = f"{count}, [table below](#{table.anchor})"
        description = cell(info.description or "")
        kind = type_label(annotation)
        into.rows.append(Row(dotted, kind, default, description, _operator_supplied(info)))
        if entry is not None:
            model_in, key = entry
            collect(model_in, f"{dotted}.<{key}>." if key else f"{dotted}[].", into)
    return into


@cache
def _template() -> jinja2.Template:
    """The Markdown template of the reference (loaded once)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("paymig.config_docs", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - the output is Markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("configuration.md.j2")


def render() -> str:
    """The whole of `docs/configuration.md`."""
    reference = collect(PaymigConfig, "", Reference())
    text = _template().render(reference=reference, output=OUTPUT)
    return text.rstrip("\n") + "\n"
