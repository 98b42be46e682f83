#!/usr/bin/env bash
# Fetch SGLang's source from its PyPI wheels (no dependencies installed, nothing imported: ≈1 MB
# kept per version under the aurora cache) and run the CPU contract tests against it.
# The test suite fetches the same files itself (a session fixture); this is the explicit route.
#   bash scripts/sglang_contract.sh            # 0.5.8.post1, 0.5.17, 0.5.23
#   bash scripts/sglang_contract.sh 0.5.17     # one version (the tests still want all three)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m aurora_sim.sglang.wheel fetch "$@"
exec $PY -m pytest -q tests/test_sglang_contract.py tests/test_sglang_export.py tests/test_sglang_meta.py tests/test_sglang_engine.py
