#!/usr/bin/env bash
# The main job: setup, then synthesize the production stack and validate it with Terraform.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/paymig check --env prod "$@"
