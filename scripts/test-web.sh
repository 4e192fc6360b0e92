#!/usr/bin/env bash
# The browser tests: builds the web package, installs the npm deps, Debian's Chromium and Debian's
# wabt (wasm-validate: the plain build's no-SIMD check) when missing, and runs tests/e2e/*.test.mjs
# with node's test runner (headless Chromium, WebGPU on SwiftShader here): one file at a time (one
# browser on the machine at once), each check a test point of its own. Node's spec reporter closes
# with "ℹ pass N" / "ℹ fail N", which scripts/test.sh reads. The tests compute their expected
# answers with the native CLI (ZPW_CLI, else cargo build --release --bin zoo-prune-web).
# SKIP_BUILD=1: use pkg/ as it is. Extra arguments replace the list of test files.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-web.sh
fi

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "test-web: installing Debian's chromium"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi
export CHROMIUM

if ! command -v wasm-validate >/dev/null; then
  echo "test-web: installing Debian's wabt (wasm-validate)"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y wabt
fi

if [ $# -eq 0 ]; then set -- tests/e2e/*.test.mjs; fi
# --test-reporter=spec: without a terminal node 20 would print TAP. No --test-timeout: node's
# default is none, and a section loading a model takes minutes on two cores (each wait in the tests
# has its own timeout).
node --test --test-concurrency=1 --test-reporter=spec "$@"
