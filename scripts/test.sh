#!/usr/bin/env bash
# Set up (if needed) and run the test suite (all of it: ~48 min on 2 cores). Pass pytest options through; tiers by marker
# (tests/conftest.py): -m unit (~2.5 min, no Ray: a Ray start fails the test), -m "not slow" (+ tests marked ray or
# training, 12-14 min), everything (+ the slow end-to-end runs). --reverse runs the selection in reverse order.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONWARNINGS=ignore RAY_DEDUP_LOGS=1
exec .venv/bin/python -m pytest -q --durations=15 "$@"
