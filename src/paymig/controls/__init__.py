"""The PCI DSS 4.0 control map (`docs/pci-controls.md`), generated from the synthesized stack.

:mod:`~paymig.controls.catalogue` lists the requirements; each builds claims from the stack
(:mod:`~paymig.controls.evidence`, :mod:`~paymig.controls.claims_protect`,
:mod:`~paymig.controls.claims_accounts`) that must hold for every resource they name, and
cites tests that :mod:`~paymig.controls.tests_index` finds by parsing `tests/`.
:mod:`~paymig.controls.render` writes the Markdown through a Jinja2 template.
"""
