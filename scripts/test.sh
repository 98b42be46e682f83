#!/usr/bin/env bash
# Set up (idempotent), check lint and formatting (ruff, configured in pyproject.toml), and run the
# test suite. The first run builds the tiny tier (cached; ≈7-9 min on a CPU with native bf16,
# ≈15-20 min without) and the static draft (≈4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m ruff check .
python3 -m ruff format --check .
exec python3 -m pytest -q "$@"
