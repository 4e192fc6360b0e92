#!/usr/bin/env bash
# The browser benchmark: the page in headless Chromium against the native CLI in the same run, on a
# SmolVLM-256M-shaped checkpoint (the published config + tokenizer, random bf16 weights made by the
# bench bin: no torch needed). Run by hand; CI does not.
#
#   scripts/bench-web.sh [--webgpu] [--grid N] [--tokens N] [--threads N] [--native-threads N] [--out FILE.json]
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
exec node scripts/bench-web.mjs --model "$MODEL" --cli target/release/zoo-prune-web "$@"
