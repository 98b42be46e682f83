#!/usr/bin/env bash
# Set up (idempotent) and run the test suite. The first run builds the tiny tier (≈7 min, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest -q "$@"
