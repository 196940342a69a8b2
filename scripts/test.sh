#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Pass pytest options through, e.g. -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONWARNINGS=ignore RAY_DEDUP_LOGS=1
exec .venv/bin/python -m pytest -q --durations=15 "$@"
