"""`python -m paymig.config_docs [--write | --check]`, run from the repository root.

Without an argument it prints the reference; `--write` updates `docs/configuration.md`;
`--check` exits 1 when the committed file differs from a fresh rendering.
"""

from __future__ import annotations

import sys
from pathlib import Path

from paymig.config_docs.reference import OUTPUT, render

USAGE = "usage: python -m paymig.config_docs [--write | --check]"


def main(argv: list[str], root: Path) -> int:
    """Run the command line `argv` (without the program name) against the repository `root`."""
    target = root / OUTPUT
    if not argv:
        sys.stdout.write(render())
        return 0
    if argv == ["--write"]:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(), encoding="utf-8")
        return 0
    if argv == ["--check"]:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == render():
            return 0
        print(f"{OUTPUT} is stale: run `python -m paymig.config_docs --write`", file=sys.stderr)
        return 1
    print(f"paymig.config_docs: unknown arguments {' '.join(argv)!r}; {USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], Path.cwd()))
