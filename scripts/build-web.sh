#!/usr/bin/env bash
# Builds the browser package in two builds, which www/wasm-pkg.js chooses from at run time:
#   pkg/        WebAssembly SIMD (+simd128: gemm's and burn-flex's vector kernels), opt-level 3
#               (profile wasm-fast): what every current browser runs;
#   pkg/plain/  no SIMD, opt-level "z" (profile wasm-release): for a browser without SIMD.
# ZPW_WASM=simd or ZPW_WASM=plain builds only that one (the other is left as it is).
# Installs what it needs when missing: the wasm32 target and wasm-bindgen-cli (the exact version of
# the wasm-bindgen crate in Cargo.toml). No wasm-opt: Debian's binaryen breaks wasm-bindgen's output.
#
# Env: CARGO_BUILD_JOBS (cargo's own), CARGO_TARGET_DIR (default target/), ZPW_WASM.
set -euo pipefail
cd "$(dirname "$0")/.."

WB_VERSION=0.2.130   # = the `wasm-bindgen = "=0.2.130"` pin in Cargo.toml
TARGET=wasm32-unknown-unknown

if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "build-web: adding the $TARGET target"
  rustup target add "$TARGET"
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "build-web: installing wasm-bindgen-cli $WB_VERSION (a few minutes)"
  # no --locked: its lock file pins a yanked crate
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# getrandom >= 0.3.4 picks the Web Crypto backend from its wasm_js feature alone; the cfg is kept
# for older getrandom versions in the tree and is what burn's web examples use.
BASE_FLAGS="${RUSTFLAGS:-} --cfg getrandom_backend=\"wasm_js\" --cfg web_sys_unstable_apis"

# build NAME PROFILE OUT_DIR EXTRA_RUSTFLAGS [cargo args...]
build() {
  local name=$1 profile=$2 out=$3 flags=$4
  shift 4
  local start
  start=$(date +%s)
  # --no-default-features: the page library only (no scenes, training, evaluation or tooling)
  RUSTFLAGS="$BASE_FLAGS $flags" cargo build --lib --no-default-features --target "$TARGET" --profile "$profile" "$@"
  local wasm="${CARGO_TARGET_DIR:-target}/$TARGET/$profile/zoo_prune_web.wasm"
  rm -rf "$out.new"
  wasm-bindgen --target web --out-dir "$out.new" "$wasm"
  local raw gz
  raw=$(stat -c %s "$out.new/zoo_prune_web_bg.wasm")
  gz=$(gzip -9 -c "$out.new/zoo_prune_web_bg.wasm" | wc -c)
  echo "build-web: $name build: zoo_prune_web_bg.wasm $raw bytes ($((raw / 1024)) KiB), gzip -9 $gz bytes ($((gz / 1024)) KiB); $(( $(date +%s) - start )) s"
}

WHICH="${ZPW_WASM:-both}"
mkdir -p pkg
if [ "$WHICH" = both ] || [ "$WHICH" = plain ]; then
  build plain wasm-release pkg/plain ""
fi
if [ "$WHICH" = both ] || [ "$WHICH" = simd ]; then
  build simd wasm-fast pkg/simd "-C target-feature=+simd128" --features wasm-simd
fi
# pkg/ holds the SIMD build at its top and the plain one in pkg/plain/
if [ -d pkg/plain.new ]; then rm -rf pkg/plain && mv pkg/plain.new pkg/plain; fi
if [ -d pkg/simd.new ]; then
  find pkg -maxdepth 1 -type f -delete
  mv pkg/simd.new/* pkg/ && rmdir pkg/simd.new
fi
