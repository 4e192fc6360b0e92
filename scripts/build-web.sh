#!/usr/bin/env bash
# Builds the browser package in three builds, which www/wasm-pkg.js chooses from at run time:
#   pkg/          WebAssembly SIMD (+simd128: gemm's and burn-flex's vector kernels), opt-level 3
#                 (profile wasm-fast), one thread, WebGPU and the CPU: what every current browser runs;
#   pkg/threads/  the same with threads and relaxed SIMD (profile wasm-threads = wasm-fast): std rebuilt with atomics on a pinned nightly (build-std),
#                 burn's CPU kernels on a rayon pool of Web Workers (wasm-bindgen-rayon); the CPU
#                 only (no wgpu: threads only serve the CPU path); for cross-origin isolated pages;
#   pkg/plain/    no SIMD, opt-level "z" (profile wasm-release), one thread, the CPU only (a browser
#                 without SIMD has no WebGPU either).
# ZPW_WASM=simd, threads or plain builds only that one (the others are left as they are).
# Installs what it needs when missing: the wasm32 target, the pinned nightly with rust-src and its
# wasm32 target, wasm-bindgen-cli (the exact version of the wasm-bindgen crate in Cargo.toml), and
# Debian's wabt (the plain build is validated without SIMD; scripts/strip-simd.py says why).
# No wasm-opt: Debian's binaryen breaks wasm-bindgen's output.
#
# ZPW_PROFILE=ci (scripts/test.sh) builds the same three with the profile the native tests use
# (Cargo.toml's `ci`: no LTO, 16 codegen units, opt-level 3 for this crate and the CPU kernels, 1 for
# the GPU stack and parsers): the same code, target features, cargo features and link arguments in
# a fraction of the time, sharing build scripts and proc macros with the native build
# (target/ci/); larger and slower modules, so never what serve.sh or a benchmark runs.
#
# Env: CARGO_BUILD_JOBS (cargo's own), CARGO_TARGET_DIR (default target/), ZPW_WASM, ZPW_PROFILE
# (ship, the default, or ci).
set -euo pipefail
cd "$(dirname "$0")/.."

WB_VERSION=0.2.130   # = the `wasm-bindgen = "=0.2.130"` pin in Cargo.toml
TARGET=wasm32-unknown-unknown
. scripts/nightly.sh   # NIGHTLY, ensure_nightly: the threaded build's pinned toolchain

if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "build-web: adding the $TARGET target"
  rustup target add "$TARGET"
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "build-web: installing wasm-bindgen-cli $WB_VERSION (a few minutes)"
  # no --locked: its lock file pins a yanked crate
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

if [ "${ZPW_WASM:-all}" = all ] || [ "${ZPW_WASM:-all}" = plain ]; then
  if ! command -v wasm-validate >/dev/null; then
    # the plain build is checked to hold no SIMD instruction (Debian's wabt)
    echo "build-web: installing Debian's wabt (wasm-validate)"
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wabt >/dev/null
  fi
fi

# getrandom >= 0.3.4 picks the Web Crypto backend from its wasm_js feature alone; the cfg is kept
# for older getrandom versions in the tree and is what burn's web examples use.
BASE_FLAGS="${RUSTFLAGS:-} --cfg getrandom_backend=\"wasm_js\" --cfg web_sys_unstable_apis"

# build NAME TOOLCHAIN(default: rustup's default) PROFILE OUT_DIR EXTRA_RUSTFLAGS LINK_ARGS [cargo args...]
# LINK_ARGS go to this crate's own compile only (cargo rustc), where the module is linked (an entry
# starting with + is a target feature for this crate alone): the
# dependencies are built alike with or without them.
build() {
  local name=$1 toolchain=$2 profile=$3 out=$4 flags=$5 link=$6
  shift 6
  local start
  start=$(date +%s)
  local tc=()
  if [ "$toolchain" != default ]; then tc=("+$toolchain"); fi
  local extra=()
  for a in $link; do
    case "$a" in
      # a target feature for this crate only (its dependencies are built without it)
      +*) extra+=(-C "target-feature=$a") ;;
      *) extra+=(-C "link-arg=$a") ;;
    esac
  done
  # --no-default-features: the page library only (no scenes, training, evaluation or tooling)
  RUSTFLAGS="$BASE_FLAGS $flags" cargo "${tc[@]}" rustc --lib --crate-type cdylib --no-default-features --target "$TARGET" --profile "$profile" "$@" \
    -- "${extra[@]}"
  local wasm="${CARGO_TARGET_DIR:-target}/$TARGET/$profile/zoo_prune_web.wasm"
  rm -rf "$out.new"
  wasm-bindgen --target web --out-dir "$out.new" "$wasm"
  if [ "$name" = plain ]; then
    # gemm compiles its simd128 kernels into every wasm32 build (unused here): stubbed out, so that
    # a browser without SIMD can compile the module (scripts/strip-simd.py says why and how)
    python3 scripts/strip-simd.py "$out.new/zoo_prune_web_bg.wasm"
    wasm-validate --disable-simd "$out.new/zoo_prune_web_bg.wasm"
  fi
  local raw gz
  raw=$(stat -c %s "$out.new/zoo_prune_web_bg.wasm")
  gz=$(gzip -9 -c "$out.new/zoo_prune_web_bg.wasm" | wc -c)
  echo "build-web: $name build (profile $profile): zoo_prune_web_bg.wasm $raw bytes ($((raw / 1024)) KiB), gzip -9 $gz bytes ($((gz / 1024)) KiB); $(( $(date +%s) - start )) s"
}

case "${ZPW_PROFILE:-ship}" in
  ship) P_PLAIN=wasm-release P_SIMD=wasm-fast P_THREADS=wasm-threads ;;
  ci) P_PLAIN=ci-plain P_SIMD=ci P_THREADS=ci ;;
  *) echo "build-web: ZPW_PROFILE must be ship or ci, not ${ZPW_PROFILE}" >&2; exit 2 ;;
esac

WHICH="${ZPW_WASM:-all}"
if [ "$WHICH" = all ] || [ "$WHICH" = threads ]; then ensure_nightly; fi

mkdir -p pkg
if [ "$WHICH" = all ] || [ "$WHICH" = plain ]; then
  build plain default "$P_PLAIN" pkg/plain "" ""
fi
if [ "$WHICH" = all ] || [ "$WHICH" = simd ]; then
  build simd default "$P_SIMD" pkg/simd "-C target-feature=+simd128" "" --features wasm-simd,webgpu
fi
if [ "$WHICH" = all ] || [ "$WHICH" = threads ]; then
  # atomics + bulk-memory + mutable-globals: what a shared memory and std's threads need. Linked
  # as wasm-bindgen's threads support expects: a shared memory, imported (each thread instantiates
  # the module on the same memory), that may grow to 4 GiB (SmolVLM-500M on the CPU needs 2.2 GB),
  # and the TLS symbols through which wasm-bindgen gives each thread its own statics.
  # +relaxed-simd, for this crate only: src/cpu/gemm.rs's fused multiply-add (www/wasm-pkg.js runs
  # this build only where the browser validates relaxed SIMD: Chrome 114+, Firefox 153 ESR checked;
  # else the SIMD build). Not for the dependencies: macerator's relaxed-SIMD path does not compile.
  build threads "$NIGHTLY" "$P_THREADS" pkg/threads \
    "-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 -C link-arg=--max-memory=4294967296" \
    "+relaxed-simd --shared-memory --import-memory --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base" \
    --features wasm-simd,wasm-threads -Z build-std=panic_abort,std
fi
# pkg/ holds the SIMD build at its top, the others in pkg/threads/ and pkg/plain/
if [ -d pkg/plain.new ]; then rm -rf pkg/plain && mv pkg/plain.new pkg/plain; fi
if [ -d pkg/threads.new ]; then rm -rf pkg/threads && mv pkg/threads.new pkg/threads; fi
if [ -d pkg/simd.new ]; then
  find pkg -maxdepth 1 -type f -delete
  mv pkg/simd.new/* pkg/ && rmdir pkg/simd.new
fi
