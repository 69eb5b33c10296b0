#!/usr/bin/env bash
# The whole test suite: setup, lint, format, types, then pytest with branch coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src
.venv/bin/pytest --cov=paymig --cov-branch --cov-report=term --cov-fail-under=90 "$@"
