"""How the configuration reference names a type and writes a value, as a person reads them.

A type is shown as the operator writes it in YAML (``list[email]``, ``map of alarm →
alarm settings``, ``str (optional)``), never as a Python repr; a type without a label
fails the generation, so a new kind of field cannot print ``Annotated[...]``.
"""

from __future__ import annotations

import ipaddress
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from paymig.config import AlarmMetric, EmailAddress, HttpsUrl

#: Constrained aliases inside a list or map, with a name of their own (compared by
#: equality: `Annotated` compares its metadata, `Literal` its values). A field's own
#: top-level `Annotated` is unwrapped by pydantic, so it shows as its base type.
NAMED_TYPES: tuple[tuple[object, str], ...] = (
    (EmailAddress, "email"),
    (HttpsUrl, "https URL"),
    (AlarmMetric, "alarm"),
)

_SCALARS: dict[object, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    Path: "path",
    ipaddress.IPv4Address: "IPv4 address",
    ipaddress.IPv4Network: "IPv4 CIDR",
    type(None): "none",
}

#: Where a CamelCase class name breaks into words.
_WORD_BREAK = re.compile(r"(?<!^)(?=[A-Z])")


def model_label(model: type[BaseModel]) -> str:
    """`TableRule` -> `table rule`, `AlarmSettings` -> `alarm settings`."""
    words = _WORD_BREAK.sub(" ", model.__name__).lower()
    return words.removesuffix(" config")


def choices(values: tuple[Any, ...]) -> str:
    """Literal values as prose: "`a`", "`a` or `b`", "`a`, `b` or `c`"."""
    quoted = [f"`{yaml_text(v)}`" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _named(annotation: Any) -> str | None:
    """The label of a named alias, if `annotation` is one."""
    for known, label in NAMED_TYPES:
        if annotation == known:
            return label
    return None


def type_label(annotation: Any) -> str:
    """A field's type as a person reads it; TypeError for a type nobody named."""
    label = _named(annotation) or _class_label(annotation) or _generic_label(annotation)
    if label is None:
        raise TypeError(f"config reference: no readable name for the type {annotation!r}")
    return label


def _class_label(annotation: Any) -> str | None:
    """The label of a plain class: a scalar or a config model."""
    if not isinstance(annotation, type):
        return None
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if issubclass(annotation, BaseModel):
        return model_label(annotation)
    return None


def _generic_label(annotation: Any) -> str | None:
    """The label of a constrained, literal, list, map or union type."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_label(args[0])
    if origin is Literal:
        return choices(args)
    if origin is list:
        return f"list[{type_label(args[0])}]"
    if origin is dict:
        return f"map of {type_label(args[0])} → {type_label(args[1])}"
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        label = " or ".join(type_label(a) for a in kept)
        return f"{label} (optional)" if len(kept) < len(args) else label
    return None


def _plain(value: Any) -> Any:
    """`value` made of YAML's own types (str, numbers, bool, None, lists, maps)."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (Path, ipaddress.IPv4Address, ipaddress.IPv4Network)):
        return str(value)
    return value


def yaml_text(value: Any) -> str:
    """`value` as it is written in a YAML file, on one line (flow style)."""
    text = yaml.safe_dump(
        _plain(value), default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()
