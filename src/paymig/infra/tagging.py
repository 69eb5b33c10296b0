"""An aspect that applies the configured tags to every taggable resource."""

from __future__ import annotations

from typing import Any

import jsii
from cdktf import IAspect, TerraformResource
from constructs import IConstruct


@jsii.implements(IAspect)
class TagEverything:
    """Merge fixed tags into the ``tags`` of every resource that has them.

    A resource's own tags win over the defaults, so a construct can still set `Name`.
    """

    def __init__(self, tags: dict[str, str]) -> None:
        """Remember the tags to apply."""
        self.tags = dict(tags)

    def visit(self, node: IConstruct) -> None:
        """Called by cdktf for every construct in the tree before synthesis."""
        if not isinstance(node, TerraformResource) or not hasattr(node, "tags_input"):
            return
        own: Any = node.tags_input
        merged = {**self.tags, **(own or {})}
        node.tags = merged  # type: ignore[attr-defined]
