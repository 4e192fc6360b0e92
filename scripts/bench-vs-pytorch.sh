#!/usr/bin/env bash
# burn against HF transformers on PyTorch, same SmolVLM-256M-shaped random checkpoint, same thread
# count, every stage side by side (src/bin/bench/stages.rs prints the table).
#
#   scripts/bench-vs-pytorch.sh [bench stages options, e.g. --threads 2 --runs 5 --backends flex,wgpu]
#
# Sets up on demand (none of it is needed by CI or the tests):
#   - a Python venv with torch + transformers (a ~3 GB download) at $BENCH_VENV (default .venv-bench;
#     point it at an existing one to skip the install);
#   - the checkpoint at $BENCH_MODEL (default target/bench-smolvlm256m), made by
#     tests/fixtures/make_fixtures.py --smolvlm256m (random bf16 weights, 513 MB), which both sides
#     load unchanged.
# Env: BENCH_TORCH_DEVICE=cuda runs the PyTorch side on the GPU (for a GPU machine; pair it with
# --backends wgpu).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BENCH_VENV:-.venv-bench}"
MODEL="${BENCH_MODEL:-target/bench-smolvlm256m}"
PY="$VENV/bin/python"

. scripts/torch-venv.sh
ensure_torch_venv "$VENV"

if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "bench-vs-pytorch: writing the random SmolVLM-256M-shaped checkpoint to $MODEL"
  "$PY" tests/fixtures/make_fixtures.py --smolvlm256m "$MODEL"
fi

cargo build --release --bin bench
exec target/release/bench stages --model "$MODEL" --torch "$PY" --torch-device "${BENCH_TORCH_DEVICE:-cpu}" "$@"
