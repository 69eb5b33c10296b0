#!/usr/bin/env bash
# Create .venv and install paymig with its pinned dependencies. Idempotent: it
# reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2; exit 2; }
stamp_src="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f .venv/.paymig-stamp && "$(cat .venv/.paymig-stamp)" == "$stamp_src" ]]; then
  exit 0
fi
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,rehearse]' \
  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
echo "$stamp_src" > .venv/.paymig-stamp
echo "setup: .venv ready"
