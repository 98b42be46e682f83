#!/usr/bin/env bash
# Stage SGLang 0.5.17 onto the GPU host, which has no network and takes at most 64 MiB per call.
# Not run yet (no GPU in the session that wrote it): sizes are from shared/docs/SGLANG.md and
# `pip download` here; the package list is a first guess that `probe` on the host refines.
#
# Why 0.5.17: it pins torch 2.11.0, the GPU image's torch, so torch is never carried; every
# wheel installs with --no-deps. The triton attention backend and the pytorch sampling backend
# (--attention-backend triton --sampling-backend pytorch) are meant to avoid flashinfer's 447 MB
# cubin package; sglang-kernel (383 MB) is still needed by `import sglang.srt` (untested whether
# its sm90 library alone suffices: SGLANG.md).
#
#   here:      bash scripts/sglang_gpu_stage.sh plan            # download, split, group into batches
#   each call: run(command="bash scripts/sglang_gpu_stage.sh receive stage/batch-NN", carry=["stage/batch-NN"])
#   then:      run(command="bash scripts/sglang_gpu_stage.sh install && bash scripts/sglang_gpu_stage.sh probe")
#
# `receive` moves a batch into .sglang-stage/ on the host (ignored, kept while the machine stays
# warm: back-to-back calls); `install` joins split files, checks sha256 against the manifest and
# installs only what the host's Python does not already have, into .sglang-venv
# (--system-site-packages, so the image's torch 2.11 and CUDA libraries are used as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAGE=${SGLANG_STAGE_DIR:-stage}          # on this machine (ignored by git: never commit wheels)
HOST_STAGE=.sglang-stage                  # on the GPU host
VENV=.sglang-venv
PART_MB=60                                # < 64 MiB per call, with room for the working tree
# "name==version import-name" or "name - import-name" (pins from sglang 0.5.17's METADATA; - = none)
PACKAGES="
sglang==0.5.17 sglang
sglang-kernel==0.4.5 sgl_kernel
flashinfer-python==0.6.15.post1 flashinfer
apache-tvm-ffi==0.1.11 tvm_ffi
xgrammar==0.2.1 xgrammar
llguidance - llguidance
outlines==0.1.11 outlines
interegular - interegular
partial_json_parser - partial_json_parser
openai==2.6.1 openai
openai-harmony==0.0.4 openai_harmony
pybase64 - pybase64
msgspec - msgspec
pyzmq - zmq
orjson - orjson
setproctitle - setproctitle
uvloop - uvloop
uvicorn - uvicorn
fastapi - fastapi
python-multipart - multipart
prometheus-client - prometheus_client
aiohttp - aiohttp
einops - einops
compressed-tensors - compressed_tensors
torchao==0.17.0 torchao
blobfile==3.0.0 blobfile
easydict - easydict
gguf - gguf
sentencepiece - sentencepiece
tiktoken - tiktoken
nvidia-ml-py - pynvml
cuda-python - cuda
ninja - ninja
xxhash - xxhash
zstandard - zstandard
"

pkgs() { echo "$PACKAGES" | awk 'NF==2 {print $1, $2} NF==3 {print $1, $3}'; }  # -> "spec import-name"

plan() {
  rm -rf "$STAGE" && mkdir -p "$STAGE/wheels"
  pkgs | while read -r spec _; do
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d "$STAGE/wheels" "$spec" || echo "WARN: could not download $spec" >&2
  done
  (cd "$STAGE/wheels" && sha256sum *.whl > ../MANIFEST.sha256)
  # split what is too big for one call; group files into batches of <= PART_MB
  mkdir -p "$STAGE/parts"
  for f in "$STAGE"/wheels/*.whl; do
    if [ "$(stat -c %s "$f")" -gt $((PART_MB * 1048576)) ]; then
      split -b "${PART_MB}M" -d -a 3 "$f" "$STAGE/parts/$(basename "$f").part-"
    else
      cp "$f" "$STAGE/parts/"
    fi
  done
  local n=0 size=0 limit=$((PART_MB * 1048576))
  mkdir -p "$(printf '%s/batch-%02d' "$STAGE" $n)"
  for f in $(ls -S "$STAGE"/parts/*); do
    s=$(stat -c %s "$f")
    if [ $((size + s)) -gt "$limit" ] && [ "$size" -gt 0 ]; then n=$((n + 1)); size=0; mkdir -p "$(printf '%s/batch-%02d' "$STAGE" $n)"; fi
    mv "$f" "$(printf '%s/batch-%02d' "$STAGE" $n)/"; size=$((size + s))
  done
  cp "$STAGE/MANIFEST.sha256" "$STAGE/batch-00/"
  rm -rf "$STAGE/wheels" "$STAGE/parts"
  du -sh "$STAGE"/batch-* ; echo "$((n + 1)) batches: one run() call each, carry=[\"$STAGE/batch-NN\"]"
}

receive() {
  mkdir -p "$HOST_STAGE" && mv "$1"/* "$HOST_STAGE"/ && ls "$HOST_STAGE" | wc -l
}

install() {
  cd "$HOST_STAGE"
  for first in *.part-000; do
    [ -e "$first" ] || continue
    whl=${first%.part-000}; cat "$whl".part-* > "$whl" && rm "$whl".part-*
  done
  sha256sum -c MANIFEST.sha256
  cd - >/dev/null
  [ -d "$VENV" ] || $PY -m venv --system-site-packages "$VENV"
  local todo=()
  while read -r spec mod; do
    if "$VENV/bin/python" -c "import $mod" 2>/dev/null && [ "$mod" != sglang ]; then continue; fi  # the image has it
    todo+=("$HOST_STAGE/$(ls "$HOST_STAGE" | grep -i "^$(echo "${spec%%==*}" | tr - _)-" | head -1)")
  done < <(pkgs)
  "$VENV/bin/pip" install -q --no-deps --no-index "${todo[@]}"
  "$VENV/bin/python" -c "import torch, sglang; print('sglang', sglang.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
}

probe() {
  # what `import sglang.srt.entrypoints.engine` still misses on the host, one module at a time
  "$VENV/bin/python" - <<'PYEOF'
import importlib, traceback
for mod in ("sglang", "sglang.srt.entrypoints.engine", "sglang.srt.models.llama_eagle3", "sgl_kernel"):
    try:
        importlib.import_module(mod); print("ok     ", mod)
    except Exception as exc:
        print("MISSING", mod, "->", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
PYEOF
}

case "${1:-}" in
  plan) plan ;;
  receive) receive "$2" ;;
  install) install ;;
  probe) probe ;;
  *) echo "usage: $0 plan | receive BATCH_DIR | install | probe" >&2; exit 2 ;;
esac
