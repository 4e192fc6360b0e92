#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the wasm page (so the wasm32 build stays
# green), runs the Rust tests (parity with HF transformers on flex and on wgpu/lavapipe), then the
# browser tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-web.sh
cargo test --release
SKIP_BUILD=1 bash scripts/test-web.sh
