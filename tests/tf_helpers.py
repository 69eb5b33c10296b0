"""Read a synthesized stack (cdk.tf.json) as data."""

from __future__ import annotations

import json
import re
from typing import Any

REF = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}$")


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """All resources of one type, by logical id."""
    found: dict[str, dict[str, Any]] = doc.get("resource", {}).get(kind, {})
    return found


def only(doc: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """The single resource of a type."""
    items = resources(doc, kind)
    assert len(items) == 1, f"expected one {kind}, found {sorted(items)}"
    return next(iter(items.items()))


def path_of(resource: dict[str, Any]) -> str:
    """The construct path of a resource (e.g. `paymig-prod/network/vpc`)."""
    path: str = resource["//"]["metadata"]["path"]
    return path


def by_path(doc: dict[str, Any], kind: str, suffix: str) -> tuple[str, dict[str, Any]]:
    """The resource of a type whose construct path ends with `suffix`."""
    matches = [(k, r) for k, r in resources(doc, kind).items() if path_of(r).endswith(suffix)]
    assert len(matches) == 1, f"{kind} ending {suffix}: {[path_of(r) for _, r in matches]}"
    return matches[0]


def ref(kind: str, logical_id: str, attribute: str = "id") -> str:
    """The interpolation Terraform uses to reference a resource attribute."""
    return f"${{{kind}.{logical_id}.{attribute}}}"


def policy(text: str) -> dict[str, Any]:
    """Parse a policy document stored as JSON text."""
    parsed: dict[str, Any] = json.loads(text)
    return parsed
