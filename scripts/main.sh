#!/usr/bin/env bash
# The main job: setup, then `paymig rehearse`: the whole migration rehearsed on this machine
# (stack applied to a local AWS emulator, two PostgreSQL servers, live load, an injected
# fault, an automatic rollback) with a report in rehearsal/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/paymig rehearse "$@"
