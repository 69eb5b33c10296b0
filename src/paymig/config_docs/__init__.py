"""Generate `docs/configuration.md`, the configuration reference, from the config model.

The model is the single source: field descriptions, types and defaults are read from
:class:`~paymig.config.PaymigConfig` (:mod:`paymig.config_docs.reference`), types are
named as a person reads them (:mod:`paymig.config_docs.labels`), and the prose around the
tables is a Jinja2 template (``templates/configuration.md.j2``). A test regenerates the
file and fails when the committed one is stale; refresh it from the repository root with
``python -m paymig.config_docs --write``.
"""

from __future__ import annotations

from paymig.config_docs.reference import OUTPUT, render

__all__ = ["OUTPUT", "render"]
