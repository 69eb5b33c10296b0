"""The setup function's handler as the rehearsal runs it: its own code, without pgaudit.

:func:`paymig.lambdas.db_setup.handler` runs :func:`~paymig.lambdas.db_setup.set_up`,
whose first and last statements create the pgaudit extension and set the master's
audit level: the local PostgreSQL standing in for Aurora has no pgaudit, so the
rehearsal calls the same function with ``aurora_server=False``. Everything else (the
master secret, the CA from SSM, verify-full, the generated passwords, the roles and
grants, the login checks, the secrets written) is the function's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymig.lambdas.db_setup import set_up


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Set the local Aurora stand-in up as the setup check sets Aurora up."""
    del event, context
    return set_up(aurora_server=False)
