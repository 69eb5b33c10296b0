"""Finding documentation samples still in place of the values only the operator knows."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from paymig.config.root import PaymigConfig

_DOC_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_DOC_NAMES = ("example.com", "example.net", "example.org")
_DOC_SUFFIXES = (".example", ".test", ".invalid")


def _normalise_sample(value: Any) -> Any:
    """Compare paths as text and address strings as addresses."""
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value)
        except ValueError:
            return value
    return value


def _is_sample(value: Any) -> bool:
    """Whether a value (or any item of a list) comes from a documentation range."""
    if isinstance(value, list):
        return any(_is_sample(item) for item in value)
    return _is_sample_scalar(_normalise_sample(value))


def _is_sample_scalar(value: Any) -> bool:
    """Whether one value comes from a range reserved for documentation."""
    if isinstance(value, ipaddress.IPv4Network):
        return any(value.subnet_of(doc) for doc in _DOC_NETWORKS)
    if isinstance(value, ipaddress.IPv4Address):
        return any(value in doc for doc in _DOC_NETWORKS)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 64496 <= value <= 64511 or 65536 <= value <= 65551  # RFC 5398
    if isinstance(value, str):
        lowered = value.lower()
        return (
            "example" in lowered
            or any(lowered == n or lowered.endswith("." + n) for n in _DOC_NAMES)
            or lowered.endswith(_DOC_SUFFIXES)
        )
    return False


def operator_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield `(dotted name, FieldInfo)` of every operator-supplied field, depth first."""
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from operator_fields(annotation, dotted + ".")
        elif isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(
            "operator_supplied"
        ):
            yield dotted, info


def _lookup(config: BaseModel, dotted: str) -> Any:
    """Get a nested attribute by dotted path."""
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def sample_values_in_use(config: PaymigConfig) -> list[str]:
    """Operator-supplied fields (and alarm recipients) still holding a documentation sample."""
    names = [name for name, _ in operator_fields(PaymigConfig)] + list(SAMPLE_CHECKED_OPTIONAL)
    return [
        f"{name} = {_lookup(config, name)}" for name in names if _is_sample(_lookup(config, name))
    ]


#: Optional fields the shipped files fill with samples too: alarms would mail nobody real.
SAMPLE_CHECKED_OPTIONAL = (
    "observability.notification_emails",
    "observability.notification_https_endpoints",
)
