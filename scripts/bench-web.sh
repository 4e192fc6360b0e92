#!/usr/bin/env bash
# The browser benchmark: the page in headless Chromium against the native CLI in the same run, on a
# SmolVLM-256M-shaped checkpoint (the published config + tokenizer, random bf16 weights made by the
# bench bin: no torch needed). Run by hand; CI does not.
#
#   scripts/bench-web.sh [--webgpu] [--grid N] [--image FILE] [--tokens N] [--threads N] [--native-threads N] [--runs N] [--out FILE.json]
#
# With a torch venv (BENCH_VENV, default .venv-bench, made by scripts/torch-venv.sh) it also runs the
# peer, ONNX Runtime Web, on the same encoder + connector exported by scripts/export_onnx.py (to
# $MODEL/vision.onnx; onnxruntime-web installed into node_modules on demand, not a dependency of the
# project); without one it says so and skips the peer.
#
# --webgpu also measures the page on WebGPU (on a software adapter such as SwiftShader: tens of
# minutes per tile). Env: BENCH_WEB_MODEL (default target/bench-web-256m; a missing folder is
# written, with SmolVLM-500M's decoder sizes when its name contains 500m), SKIP_BUILD=1 (use pkg/
# and target/release as they are), CHROMIUM.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${BENCH_WEB_MODEL:-target/bench-web-256m}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-web.sh
  cargo build --release --bin zoo-prune-web --bin bench
fi
if [ ! -f "$MODEL/model.safetensors" ]; then
  case "$MODEL" in
    *500m*) target/release/bench write-checkpoint "$MODEL" --500m ;;
    *) target/release/bench write-checkpoint "$MODEL" ;;
  esac
fi
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
PEER=()
VENV="${BENCH_VENV:-.venv-bench}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, transformers" 2>/dev/null; then
  if [ ! -f "$MODEL/vision.onnx" ]; then
    "$VENV/bin/python" -m pip install --quiet onnx onnxruntime 2>/dev/null || true
    "$VENV/bin/python" scripts/export_onnx.py --model "$MODEL" --out "$MODEL/vision.onnx"
  fi
  [ -f node_modules/onnxruntime-web/package.json ] || npm install --no-save --no-audit --no-fund onnxruntime-web@1.31.1
  PEER=(--peer "$MODEL/vision.onnx")
else
  echo "bench-web: no torch venv at $VENV (scripts/torch-venv.sh makes one): the peer, ONNX Runtime Web, is not run" >&2
fi
exec node scripts/bench-web.mjs --model "$MODEL" --cli target/release/zoo-prune-web "${PEER[@]}" "$@"
