#!/usr/bin/env bash
# Create .venv and install paymig with its pinned dependencies. Idempotent: it
# reinstalls only when pyproject.toml or constraints.txt changed. It says what it is
# doing and how far it got; on failure, one line names what failed and the log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2; exit 2; }
stamp_src="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/python && -f .venv/.paymig-stamp && "$(cat .venv/.paymig-stamp)" == "$stamp_src" ]]; then
  echo "setup: .venv is up to date (pinned dependencies unchanged)"
  exit 0
fi

log=".venv-setup.log"
started=$SECONDS
echo "setup: creating .venv and installing paymig with its dependencies (pinned in constraints.txt)"
echo "setup: about 2 minutes on a fresh machine (packages come from PyPI); log: ${log}"
if ! "$PY" -m venv .venv >"$log" 2>&1; then
  echo "setup: failed to create the virtual environment with $PY (see ${log})" >&2; exit 1
fi

# pip writes one "Collecting" line per package it resolves; count them as progress.
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
  -c constraints.txt -e '.[dev,rehearse]' >>"$log" 2>&1 &
pip_pid=$!
trap 'kill "$pip_pid" 2>/dev/null || true' INT TERM
while kill -0 "$pip_pid" 2>/dev/null; do
  sleep 10
  kill -0 "$pip_pid" 2>/dev/null || break
  collected="$(grep -c '^Collecting ' "$log" || true)"
  if grep -q '^Installing collected packages' "$log"; then
    echo "setup: ... installing the ${collected} collected packages ($((SECONDS - started)) s)"
  else
    echo "setup: ... ${collected} packages collected so far ($((SECONDS - started)) s)"
  fi
done
if ! wait "$pip_pid"; then
  reason="$(grep -m1 -E '^ERROR:' "$log" || echo 'pip install failed')"
  echo "setup: installing the pinned dependencies failed: ${reason} (full log: ${log})" >&2
  exit 1
fi
trap - INT TERM
echo "$stamp_src" > .venv/.paymig-stamp
installed="$(grep -c '^Collecting ' "$log" || true)"
echo "setup: .venv ready in $((SECONDS - started)) s: paymig and ${installed} pinned packages"
