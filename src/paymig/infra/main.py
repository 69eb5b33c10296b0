"""Entry point for the standard CDKTF CLI (`cdktf synth`, `cdktf deploy`).

`cdktf.json` runs ``python -m paymig.infra.main``. This is an edge, like the paymig CLI:
it reads the environment name from ``PAYMIG_ENV`` (default ``prod``) and the output
folder from ``CDKTF_OUTDIR``, which the CDKTF CLI sets.
"""

from __future__ import annotations

import os
import sys

from paymig.config import load_config, resolve_config_path
from paymig.errors import PaymigError


def main() -> int:
    """Synthesize the selected environment's stack into the CDKTF output folder."""
    try:
        config = load_config(resolve_config_path(os.environ.get("PAYMIG_ENV", "prod"), None))
    except PaymigError as exc:
        print(f"paymig: {exc}", file=sys.stderr)
        return exc.exit_code
    # Imported only now: loading jsii takes seconds, and a bad config should fail at once.
    from cdktf import App

    from paymig.infra.stack import PaymentMigrationStack

    app = App()
    PaymentMigrationStack(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
