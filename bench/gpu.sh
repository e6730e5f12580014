#!/usr/bin/env bash
# deflow GPU benchmark: the tfjs bench on WebGPU (and wasm as a CPU baseline) and the
# PyTorch reference on CUDA, then the tfjs/PyTorch ratios.
#
#   bash bench/gpu.sh [--quick] [--only names] [--no-wasm]
#
# Run from the repository root (or anywhere: it cd's there) on a machine with an NVIDIA
# GPU. It needs no network when Deno, the npm packages (node_modules/ or the Deno cache)
# and PyTorch with CUDA are already there; otherwise it tries to install what is missing:
#   - Deno: $DENO, `deno` on PATH, /usr/local/bin/deno, ~/.deno/bin/deno, or
#     `npm install deno` into .ci/deno-npm (the npm package ships the binary);
#   - PyTorch: $PYTHON (default python3) must import torch with CUDA; if not, it tries
#     `pip install torch` into a venv under .ci/venv (needs the network).
# WebGPU in Deno on a headless Linux box needs the Vulkan driver of the GPU
# (libnvidia-gl / nvidia vulkan ICD); the script prints the adapter tfjs sees and stops
# with a message when only a software adapter is found (unless ALLOW_SOFTWARE=1).
# Results: out/bench/compare.json (interleaved rounds, see bench/compare.ts) and the table.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
OUT=${OUT_DIR:-$ROOT/out/bench}
mkdir -p "$OUT"
QUICK=""
ONLY=()
BACKENDS="webgpu,wasm"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK="--quick" ;;
    --only) ONLY=(--only "$2"); shift ;;
    --no-wasm) BACKENDS="webgpu" ;;
    *) echo "gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "gpu.sh: $*" >&2; }

# --- GPU present?
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
else
  log "nvidia-smi not found: no NVIDIA GPU/driver visible; PyTorch will be asked anyway"
fi

# --- Deno
find_deno() {
  for c in "${DENO:-}" "$(command -v deno 2>/dev/null)" /usr/local/bin/deno "$HOME/.deno/bin/deno" \
    "$ROOT/.ci/deno-npm/node_modules/deno/bin/deno" \
    "$ROOT/.ci/deno-npm/node_modules/.bin/deno"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
DENO_BIN=$(find_deno)
if [ -z "$DENO_BIN" ]; then
  if command -v npm >/dev/null 2>&1; then
    log "installing Deno from npm into .ci/deno-npm"
    mkdir -p "$ROOT/.ci/deno-npm"
    (cd "$ROOT/.ci/deno-npm" && npm install --no-audit --no-fund deno >&2) || log "npm install deno failed"
    DENO_BIN=$(find_deno)
  fi
fi
if [ -z "$DENO_BIN" ]; then
  log "no Deno found and none could be installed; set DENO=/path/to/deno"
  exit 1
fi
log "deno: $DENO_BIN ($("$DENO_BIN" --version | head -1))"

# --- Python + torch with CUDA
PY=${PYTHON:-python3}
torch_ok() { "$1" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 3)" 2>/dev/null; }
if ! torch_ok "$PY"; then
  for c in /usr/bin/python3 "$ROOT/.ci/venv/bin/python"; do
    if [ -x "$c" ] && torch_ok "$c"; then PY=$c; break; fi
  done
fi
TORCH_DEVICE=cuda
if ! torch_ok "$PY"; then
  log "no python with CUDA torch; trying pip install torch into .ci/venv"
  if python3 -m venv "$ROOT/.ci/venv" >&2 && "$ROOT/.ci/venv/bin/pip" install -q torch >&2; then
    PY=$ROOT/.ci/venv/bin/python
  fi
  if ! torch_ok "$PY"; then
    log "PyTorch with CUDA unavailable: the reference runs on CPU instead (ratios then mix devices)"
    TORCH_DEVICE=cpu
    if ! "$PY" -c "import torch" 2>/dev/null; then PY=/usr/bin/python3; fi
  fi
fi
log "python: $PY (torch device $TORCH_DEVICE)"

# --- WebGPU adapter check
ADAPTER=$("$DENO_BIN" eval '
const a = await navigator.gpu?.requestAdapter();
if (!a) { console.log("none"); } else {
  const i = a.info ?? {};
  console.log(`${i.vendor ?? "?"} ${i.architecture ?? ""} ${i.description ?? ""} fallback=${a.isFallbackAdapter ?? i.isFallbackAdapter ?? "?"}`);
}' 2>&1 | tail -1)
log "WebGPU adapter: $ADAPTER"
if [ "$ADAPTER" = "none" ] || echo "$ADAPTER" | grep -qiE 'llvmpipe|swiftshader|lavapipe|fallback=true'; then
  if [ "${ALLOW_SOFTWARE:-0}" != "1" ]; then
    log "only a software (or no) WebGPU adapter: install the NVIDIA Vulkan driver, or set ALLOW_SOFTWARE=1"
    BACKENDS="wasm"
  fi
fi

# --- run
set -x
"$DENO_BIN" run -A bench/compare.ts $QUICK "${ONLY[@]}" --backend "$BACKENDS" \
  --device "$TORCH_DEVICE" --python "$PY" --outdir "$OUT"
RC=$?
set +x
log "results in $OUT (exit $RC)"
exit $RC
