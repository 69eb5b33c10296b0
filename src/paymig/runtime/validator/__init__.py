"""The data-consistency validator: prove that source and target hold the same rows.

Use :class:`Validator` with :class:`Settings`; :func:`resolve_scope` lists the tables a
set of scope rules selects. See :mod:`paymig.runtime.validator.engine` for how a pass
works, :mod:`paymig.runtime.validator.passes` for its plan and checkpoints, and
:mod:`paymig.runtime.validator.job` for the job that runs it on AWS.
"""

from paymig.runtime.validator.checkpoint import FileCheckpoint
from paymig.runtime.validator.engine import (
    Settings,
    Validator,
    ValidatorError,
    resolve_scope,
)
from paymig.runtime.validator.hooks import Checkpoint, Progress
from paymig.runtime.validator.passes import PassPlan, RangeResult
from paymig.runtime.validator.report import KeyList, Report, TableReport

__all__ = [
    "Checkpoint",
    "FileCheckpoint",
    "KeyList",
    "PassPlan",
    "Progress",
    "RangeResult",
    "Report",
    "Settings",
    "TableReport",
    "Validator",
    "ValidatorError",
    "resolve_scope",
]
