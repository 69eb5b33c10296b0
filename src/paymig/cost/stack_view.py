"""The synthesized Terraform document as the rules read it: resources, references, attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from paymig.cost.prices import PricingError
from paymig.cost.units import HOURS_PER_MONTH

_REFERENCE = re.compile(r"\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)[.}\[]")


@dataclass(frozen=True)
class Resource:
    """One resource of the synthesized stack."""

    type: str
    logical_id: str
    attrs: Mapping[str, Any]

    @property
    def address(self) -> str:
        """Terraform address, `type.logical_id`."""
        return f"{self.type}.{self.logical_id}"

    @property
    def label(self) -> str:
        """A readable name: its `name`/`identifier`/`Name` tag literal, else its path."""
        for key in (
            "name",
            "identifier",
            "cluster_identifier",
            "replication_instance_id",
            "function_name",
            "bucket",
            "dashboard_name",
            "alarm_name",
        ):
            value = self.attrs.get(key)
            if isinstance(value, str) and "${" not in value:
                return value
        tags = self.attrs.get("tags")
        if isinstance(tags, Mapping):
            tag_name = tags.get("Name")
            if isinstance(tag_name, str) and "${" not in tag_name:
                return tag_name
        meta = self.attrs.get("//", {}).get("metadata", {})
        path = meta.get("path")
        return str(path) if isinstance(path, str) else self.address

    @property
    def count(self) -> int:
        """Instances this resource declares (Terraform `count` or `for_each`, default 1)."""
        each = self.attrs.get("for_each")
        if each is not None:
            if isinstance(each, (dict, list)):
                return len(each)
            raise PricingError(
                f"{self.address}: for_each {each!r} is not a literal collection; cannot price it"
            )
        value = self.attrs.get("count", 1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PricingError(
                f"{self.address}: count {value!r} is not a literal integer; cannot price it"
            )
        return value

    def references(self) -> frozenset[tuple[str, str]]:
        """`(type, logical_id)` of every resource its attributes reference."""
        return self._references

    @cached_property
    def _references(self) -> frozenset[tuple[str, str]]:
        """The references, found once per resource (rules ask for them often)."""
        text = json.dumps({k: v for k, v in self.attrs.items() if k != "//"})
        return frozenset(_REFERENCE.findall(text))

    def blocks(self, name: str) -> list[Mapping[str, Any]]:
        """A nested block as a list (synthesized JSON writes one block as a dict)."""
        value = self.attrs.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return [v for v in value if isinstance(v, Mapping)]
        return [value] if isinstance(value, Mapping) else []


@dataclass(frozen=True)
class StackView:
    """The resources of a synthesized document, by type."""

    document: Mapping[str, Any]

    @cached_property
    def by_type(self) -> dict[str, list[Resource]]:
        """Resources grouped by Terraform type, sorted by logical id."""
        out: dict[str, list[Resource]] = {}
        for kind, items in sorted(self.document.get("resource", {}).items()):
            out[kind] = [Resource(kind, lid, attrs) for lid, attrs in sorted(items.items())]
        return out

    def of_type(self, kind: str) -> list[Resource]:
        """All resources of one type."""
        return self.by_type.get(kind, [])

    def get(self, kind: str, logical_id: str) -> Resource | None:
        """One resource by type and logical id."""
        return next((r for r in self.of_type(kind) if r.logical_id == logical_id), None)

    def referenced(self, resource: Resource, kind: str) -> list[Resource]:
        """Resources of `kind` that `resource` references, directly or through an alias."""
        found: dict[str, Resource] = {}
        for ref_kind, ref_id in resource.references():
            target = self.get(ref_kind, ref_id)
            if target is None:
                continue
            if ref_kind == kind:
                found[target.logical_id] = target
            elif ref_kind == "aws_lambda_alias" and kind == "aws_lambda_function":
                for inner in self.referenced(target, kind):
                    found[inner.logical_id] = inner
        return list(found.values())


def references_in(value: Any) -> list[tuple[str, str]]:
    """`(type, logical_id)` references inside any JSON value."""
    return _REFERENCE.findall(json.dumps(value))


def resource_hours(resource: Resource) -> float:
    """Resource-hours per month (count x 730)."""
    return resource.count * HOURS_PER_MONTH


def int_attr(resource: Resource, key: str, default: int) -> int:
    """An integer attribute, its provider default when unset, or an error if not literal."""
    value = resource.attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PricingError(f"{resource.address}: {key} {value!r} is not a literal integer")
    return value


def str_attr(resource: Resource, key: str) -> str:
    """A required literal string attribute."""
    value = resource.attrs.get(key)
    if not isinstance(value, str) or "${" in value:
        raise PricingError(f"{resource.address}: {key} {value!r} is not a literal string")
    return value
