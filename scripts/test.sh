#!/usr/bin/env bash
# The whole test suite: setup, lint, format, types, then pytest with branch coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src
# Three workers on the two cores (tests wait on servers much of the time; measured in
# benchmarks/README.md), each module's tests on one worker (module fixtures start once);
# PAYMIG_TEST_WORKERS=0 runs everything in this process.
.venv/bin/pytest -n "${PAYMIG_TEST_WORKERS:-3}" --dist loadscope \
  --cov=paymig --cov-branch --cov-report=term --cov-fail-under=90 "$@"
