#!/usr/bin/env bash
# Builds the browser package: pkg/zoo_prune_web.js + pkg/zoo_prune_web_bg.wasm, which www/ imports.
# Installs what it needs when missing: the wasm32 target and wasm-bindgen-cli (the exact version of
# the wasm-bindgen crate in Cargo.toml). No wasm-opt: Debian's binaryen breaks wasm-bindgen's output.
#
# Env: CARGO_BUILD_JOBS (cargo's own), CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."

WB_VERSION=0.2.130   # = the `wasm-bindgen = "=0.2.130"` pin in Cargo.toml
TARGET=wasm32-unknown-unknown
PROFILE=wasm-release

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
export RUSTFLAGS="${RUSTFLAGS:-} --cfg getrandom_backend=\"wasm_js\" --cfg web_sys_unstable_apis"

start=$(date +%s)
# --no-default-features: the page library only (no scenes, training, evaluation or tooling)
cargo build --lib --no-default-features --target "$TARGET" --profile "$PROFILE"
WASM="${CARGO_TARGET_DIR:-target}/$TARGET/$PROFILE/zoo_prune_web.wasm"

rm -rf pkg
wasm-bindgen --target web --out-dir pkg "$WASM"

raw=$(stat -c %s pkg/zoo_prune_web_bg.wasm)
gz=$(gzip -9 -c pkg/zoo_prune_web_bg.wasm | wc -c)
echo "build-web: pkg/zoo_prune_web_bg.wasm $raw bytes ($((raw / 1024)) KiB), gzip -9 $gz bytes ($((gz / 1024)) KiB); $(( $(date +%s) - start )) s"
