#!/usr/bin/env bash
# The browser tests: builds the web package, installs the npm deps, Debian's Chromium and Debian's
# wabt (wasm-validate: the plain build's no-SIMD check) when missing, and runs tests/e2e/*.test.mjs
# with node's test runner (headless Chromium, WebGPU on SwiftShader here): two files at a time, each
# with a browser of its own (ZPW_WEB_JOBS, default 2), each check a test point of its own. Node's spec reporter closes
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
# has its own timeout). Two files at once: one file keeps the 2 cores about 63 % busy (page loads,
# servers, waits); measured 2026-12-03 on this 2-core machine, the whole suite took 775 s one file at
# a time and 599 s two at a time, the same 226 checks passing. The one timed check (stress: a
# second image encoded within one tile's time plus its own) is bounded by the tile time measured in
# the same page, so contention moves both sides.
node --test --test-concurrency="${ZPW_WEB_JOBS:-2}" --test-reporter=spec "$@"
