"""Synthesize a stack to disk, summarise what it holds, or read a synthesized document.

Importing this module does not load jsii: the CDKTF app and the stack are imported inside
:func:`build_stack`, so a command that only reads a `cdk.tf.json` (:func:`read_document`,
e.g. `paymig cost --from-json`) skips the 10-20 s jsii start-up.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paymig.config import PaymigConfig
from paymig.errors import PaymigError

if TYPE_CHECKING:
    from cdktf import App

    from paymig.infra.stack import PaymentMigrationStack


@dataclass(frozen=True)
class SynthResult:
    """Where a synthesized stack was written and what it contains."""

    stack_dir: Path
    document: dict[str, Any]

    @property
    def json_path(self) -> Path:
        """Path of the stack's `cdk.tf.json`."""
        return self.stack_dir / "cdk.tf.json"

    def resources_by_type(self) -> dict[str, int]:
        """Number of resources of each Terraform type, sorted by type."""
        counts = Counter(
            {kind: len(items) for kind, items in self.document.get("resource", {}).items()}
        )
        return dict(sorted(counts.items()))


def build_stack(config: PaymigConfig, outdir: Path) -> tuple[App, PaymentMigrationStack]:
    """Build (but do not synthesize) the app and stack for one environment."""
    from cdktf import App

    from paymig.infra.stack import PaymentMigrationStack

    app = App(outdir=str(outdir), skip_validation=False)
    stack = PaymentMigrationStack(app, config)
    return app, stack


def synthesize(config: PaymigConfig, outdir: Path) -> SynthResult:
    """Synthesize into `outdir`, replacing only this stack's folder, atomically.

    The stack is first written to a temporary folder beside `outdir`; only a complete
    synthesis replaces `outdir/stacks/<stack>`, so a failure never leaves a half-written
    output behind.
    """
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".paymig-synth-", dir=outdir.parent))
    try:
        app, _ = build_stack(config, staging)
        app.synth()
        built = staging / "stacks" / config.stack_name
        final = outdir / "stacks" / config.stack_name
        final.parent.mkdir(parents=True, exist_ok=True)
        for name in ("manifest.json", "constructs.json"):
            if (staging / name).exists():
                shutil.copy2(staging / name, outdir / name)
        backup = final.with_name(final.name + ".old")
        if final.exists():
            final.rename(backup)
        built.rename(final)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    document = json.loads((final / "cdk.tf.json").read_text(encoding="utf-8"))
    return SynthResult(stack_dir=final, document=document)


def synthesized_document(config: PaymigConfig) -> dict[str, Any]:
    """Synthesize the environment into a temporary folder and return its document."""
    with tempfile.TemporaryDirectory(prefix="paymig-synth-") as tmp:
        document: dict[str, Any] = synthesize(config, Path(tmp) / "cdktf.out").document
    return document


def read_document(path: Path) -> dict[str, Any]:
    """Read a synthesized `cdk.tf.json` (`--from-json`), with one clear line on any problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PaymigError(f"--from-json {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PaymigError(f"--from-json {path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PaymigError(f"--from-json {path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resource", {}), dict):
        raise PaymigError(f"--from-json {path}: not a synthesized Terraform document")
    return data
