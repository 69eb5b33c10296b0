"""Every botocore session of a test process reads AWS's service models from one loader.

The tests build a fresh boto3 session for each controller shell, CLI run and Lambda call
(so hooks and credentials stay local), and each fresh session parsed the JSON service
models again: about 30 ms per client, a third of the cutover and controller tests' time.
The models are read-only data, so one caching loader serves every session; credentials,
region, endpoints and event hooks stay per session and per client as before. The product
is untouched: a paymig command builds one session, as on an operator's machine.
"""

from __future__ import annotations

from typing import Any

import botocore.loaders
import botocore.session


class _UniquePaths(list[str]):
    """Search paths that ignore a repeat: boto3 appends its own folder per session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def share_one_loader() -> None:
    """Make each new botocore session use the process's one caching model loader."""
    loader = botocore.loaders.create_loader()
    loader._search_paths = _UniquePaths(loader.search_paths)

    def register(session: Any) -> None:
        session._components.register_component("data_loader", loader)

    botocore.session.Session._register_data_loader = register
