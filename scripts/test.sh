#!/usr/bin/env bash
# Set up (idempotent) and run the test suite. The first run builds the tiny tier (cached; ≈7 min on
# a CPU with native bf16, ≈15-20 min without).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest -q "$@"
