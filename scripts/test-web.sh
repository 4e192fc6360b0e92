#!/usr/bin/env bash
# The browser smoke test: builds the web package, installs the npm deps and Debian's Chromium when
# missing, and runs tests/e2e/smoke.mjs (headless Chromium, WebGPU on SwiftShader here).
# The test computes its expected answer with the native CLI (cargo run --release).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-web.sh
fi

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "test-web: installing Debian's chromium"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
export CHROMIUM

node tests/e2e/smoke.mjs
