"""The synthesized stack (``cdk.tf.json``) read as a graph of resources and references.

Terraform JSON writes a reference to another resource as an interpolation such as
``${aws_security_group.app_sg_1A2B.id}``. :class:`StackGraph` finds those references in
every value, so a rule can ask what a resource points at, what points at it, and
whether one resource is ordered before another (``depends_on`` or a reference,
followed transitively, through ``locals`` too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

#: ``${type.name.attr...}`` for managed resources, ``${data.type.name...}`` for data
#: sources and ``${local.name}`` for locals. One interpolation may hold several.
_REFERENCE = re.compile(
    r"(?P<data>data\.)?(?P<type>aws_[a-z0-9_]+|terraform_data)\.(?P<name>[A-Za-z0-9_-]+)"
    r"(?:\.(?P<attr>[A-Za-z0-9_]+))?"
)
_LOCAL = re.compile(r"\blocal\.(?P<name>[A-Za-z0-9_-]+)")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True, order=True)
class Address:
    """A resource's address in the document: its type and logical id."""

    type: str
    name: str

    def __str__(self) -> str:
        """Terraform's own spelling, ``type.name``."""
        return f"{self.type}.{self.name}"


@dataclass(frozen=True)
class Reference:
    """One reference found in a value: the resource and the attribute named."""

    address: Address
    attribute: str | None


def references_in(value: Any) -> list[Reference]:
    """Every managed-resource reference inside a JSON value (strings, lists, maps)."""
    found: list[Reference] = []
    for text in _strings(value):
        for expression in _INTERPOLATION.findall(text):
            for match in _REFERENCE.finditer(expression):
                if match.group("data"):
                    continue
                address = Address(match.group("type"), match.group("name"))
                found.append(Reference(address, match.group("attr")))
    return found


def locals_in(value: Any) -> set[str]:
    """Names of the ``local.*`` values a JSON value refers to."""
    names: set[str] = set()
    for text in _strings(value):
        for expression in _INTERPOLATION.findall(text):
            names.update(m.group("name") for m in _LOCAL.finditer(expression))
    return names


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "//":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def ref(address: Address, attribute: str = "id") -> str:
    """The interpolation Terraform uses for ``address.attribute``."""
    return f"${{{address.type}.{address.name}.{attribute}}}"


class StackGraph:
    """Resources of one synthesized stack, their references and their ordering."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        """Index the document's resources; the document itself is never modified."""
        self.document = document
        self.resources: dict[Address, Mapping[str, Any]] = {
            Address(kind, name): body
            for kind, items in document.get("resource", {}).items()
            for name, body in items.items()
        }
        self._locals: Mapping[str, Any] = document.get("locals", {})

    # ---------------------------------------------------------------- lookups

    def of_type(self, kind: str) -> dict[Address, Mapping[str, Any]]:
        """Every resource of one Terraform type."""
        return {a: body for a, body in self.resources.items() if a.type == kind}

    def get(self, address: Address) -> Mapping[str, Any]:
        """A resource's body (a KeyError names a dangling reference)."""
        return self.resources[address]

    def path(self, address: Address) -> str:
        """The construct path of a resource, which is what people recognise."""
        body = self.resources.get(address, {})
        meta = body.get("//", {}).get("metadata", {})
        return str(meta.get("path", address))

    def target(self, value: Any, kind: str | None = None) -> Address | None:
        """The single resource a value refers to (optionally of one type), if any."""
        found = [r.address for r in references_in(value) if kind is None or r.address.type == kind]
        return found[0] if len(set(found)) == 1 else None

    def targets(self, value: Any, kind: str | None = None) -> list[Address]:
        """Every resource a value refers to, in order, without repeats."""
        seen: dict[Address, None] = {}
        for reference in references_in(value):
            if kind is None or reference.address.type == kind:
                seen.setdefault(reference.address, None)
        return list(seen)

    def referrers(self, address: Address, kind: str, field: str) -> list[Address]:
        """Resources of ``kind`` whose ``field`` refers to ``address``."""
        return [
            a for a, body in self.of_type(kind).items() if address in self.targets(body.get(field))
        ]

    # ---------------------------------------------------------------- ordering

    def direct_dependencies(self, address: Address) -> set[Address]:
        """What Terraform orders before ``address``: references, locals and depends_on."""
        body = self.resources[address]
        deps = {r.address for r in references_in(body)}
        for name in locals_in(body):
            deps |= self._local_dependencies(name, set())
        for item in body.get("depends_on", []):
            for reference in references_in(f"${{{item}}}"):
                deps.add(reference.address)
        deps.discard(address)
        return {d for d in deps if d in self.resources}

    def _local_dependencies(self, name: str, seen: set[str]) -> set[Address]:
        if name in seen or name not in self._locals:
            return set()
        seen.add(name)
        value = self._locals[name]
        deps = {r.address for r in references_in(value)}
        for inner in locals_in(value):
            deps |= self._local_dependencies(inner, seen)
        return deps

    @cached_property
    def _closures(self) -> dict[Address, frozenset[Address]]:
        closures: dict[Address, frozenset[Address]] = {}
        for address in self.resources:
            closures[address] = frozenset(self._closure(address))
        return closures

    def _closure(self, start: Address) -> set[Address]:
        seen: set[Address] = set()
        stack = [start]
        while stack:
            for dep in self.direct_dependencies(stack.pop()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen

    def depends_on(self, later: Address, earlier: Address) -> bool:
        """Whether Terraform always creates ``earlier`` before ``later``."""
        return earlier in self._closures.get(later, frozenset())


def parse_policy(value: Any) -> dict[str, Any] | None:
    """An IAM/key/topic policy stored as JSON text, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The statements of a policy document, always as a list."""
    if not policy:
        return []
    items = policy.get("Statement", [])
    return [items] if isinstance(items, Mapping) else list(items)


def as_list(value: Any) -> list[Any]:
    """A policy field (string or list) as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def first_block(value: Any) -> Mapping[str, Any]:
    """A nested block, which Terraform JSON may write as an object or a one-item list."""
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def unique(items: Iterable[Address]) -> list[Address]:
    """Addresses in first-seen order without repeats."""
    return list(dict.fromkeys(items))
