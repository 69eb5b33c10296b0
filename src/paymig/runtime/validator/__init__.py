"""The data-consistency validator: prove that source and target hold the same rows.

Use :class:`Validator` with :class:`Settings`; :func:`resolve_scope` lists the tables a
set of scope rules selects. See :mod:`paymig.runtime.validator.engine` for how it works.
"""

from paymig.runtime.validator.engine import (
    Progress,
    Settings,
    Validator,
    ValidatorError,
    resolve_scope,
)
from paymig.runtime.validator.report import KeyList, Report, TableReport

__all__ = [
    "KeyList",
    "Progress",
    "Report",
    "Settings",
    "TableReport",
    "Validator",
    "ValidatorError",
    "resolve_scope",
]
