"""Synthesize a stack to disk and summarise what it holds."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import App

from paymig.config import PaymigConfig
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
