#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the wasm page (so the wasm32 build stays
# green), runs the Rust tests (parity with HF transformers on flex and on wgpu/lavapipe), then the
# browser tests in headless Chromium. Prints a line per phase with its seconds as it ends, then a
# table of the phases and the counts of Rust tests and browser checks, and last one line
# "total: N passed, M failed".
#
# Everything here is built with Cargo.toml's `ci` profile (release's settings, the GPU stack and
# parsers at opt-level 1; see there why the numbers are the same): the native tests, the CLI the
# browser suite compares with (target/ci/zoo-prune-web) and the three wasm builds (ZPW_PROFILE=ci
# in scripts/build-web.sh: the same target features, cargo features and link arguments as the
# shipping builds). The browser suite checks what the code computes and which build runs, not how
# small or fast the shipping module is; scripts/serve.sh and the benchmarks build the shipping
# profiles.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZPW_PROFILE=ci
export ZPW_CLI="${CARGO_TARGET_DIR:-$(pwd)/target}/ci/zoo-prune-web"
LOG_DIR="${ZPW_TEST_LOGS:-target/test-logs}"
mkdir -p "$LOG_DIR"

PHASES=()
T_ALL=$(date +%s)
# phase NAME CMD...: runs CMD, prints and records NAME's seconds (also when it fails; then stops)
phase() {
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  echo "== test.sh: $name"
  "$@" || rc=$?
  local secs=$(( $(date +%s) - start ))
  PHASES+=("$(printf '%-34s %6d s%s' "$name" "$secs" "$([ $rc = 0 ] || echo "  FAILED (exit $rc)")")")
  echo "== test.sh: $name: ${secs} s$([ $rc = 0 ] || echo ", FAILED (exit $rc)")"
  if [ $rc != 0 ]; then summary; exit $rc; fi
}

RUST_PASSED=0 RUST_FAILED=0 WEB_PASSED=0 WEB_FAILED=0
summary() {
  echo
  echo "== test.sh: phases (machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores)"
  printf '%s\n' "${PHASES[@]}"
  printf '%-34s %6d s\n' "all" "$(( $(date +%s) - T_ALL ))"
  echo "Rust tests: $RUST_PASSED passed, $RUST_FAILED failed; browser checks: $WEB_PASSED passed, $WEB_FAILED failed"
  echo "total: $((RUST_PASSED + WEB_PASSED)) passed, $((RUST_FAILED + WEB_FAILED)) failed"
}

rust_tests() {
  local rc=0
  cargo test --profile ci --no-fail-fast 2>&1 | tee "$LOG_DIR/rust.log" || rc=$?
  # one "test result:" line per test binary (the library's unit tests, tests/main.rs,
  # tests/device_limits.rs); a binary that crashed prints none: then at least one failure
  RUST_PASSED=$(grep -o 'test result: [A-Za-z]*\. [0-9]* passed' "$LOG_DIR/rust.log" | awk '{s += $4} END {print s + 0}')
  RUST_FAILED=$(grep -o '[0-9]* failed;' "$LOG_DIR/rust.log" | awk '{s += $1} END {print s + 0}')
  if [ $rc != 0 ] && [ "$RUST_FAILED" = 0 ]; then RUST_FAILED=1; fi
  return $rc
}

web_tests() {
  local rc=0
  SKIP_BUILD=1 NO_COLOR=1 bash scripts/test-web.sh 2>&1 | tee "$LOG_DIR/web.log" || rc=$?
  # each check prints "ok   - name" or "FAIL - name", and a section stopped by an error
  # "FAIL - section ..." (tests/e2e/lib.mjs); node's own closing lines count the sections as tests
  # too. A run that failed without such a line (a file that did not load) counts one failure.
  WEB_PASSED=$(grep -c '^ok   - ' "$LOG_DIR/web.log" || true)
  WEB_FAILED=$(grep -c '^FAIL - ' "$LOG_DIR/web.log" || true)
  if [ $rc != 0 ] && [ "$WEB_FAILED" = 0 ]; then WEB_FAILED=1; fi
  return $rc
}

phase "setup (apt, toolchains, tools)" bash scripts/setup.sh
phase "wasm build: plain" env ZPW_WASM=plain bash scripts/build-web.sh
phase "wasm build: simd" env ZPW_WASM=simd bash scripts/build-web.sh
phase "wasm build: threads" env ZPW_WASM=threads bash scripts/build-web.sh
phase "native test build" cargo test --profile ci --no-run --timings
phase "Rust tests" rust_tests
phase "browser suite" web_tests
summary
