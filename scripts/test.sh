#!/usr/bin/env bash
# Set up (idempotent), check lint and formatting (ruff, configured in pyproject.toml), and run the
# test suite. The tiny tier and its static drafts ship with the package (aurora_sim/reference/);
# the first run builds only the corpora, the smollm2 tier and the tests' own short builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m ruff check .
python3 -m ruff format --check .
exec python3 -m pytest -q "$@"
