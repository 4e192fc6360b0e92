#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine (idempotent):
# lavapipe (Vulkan on the CPU, for native wgpu tests), Chromium (browser tests), wabt (wasm-validate), the wasm target,
# the pinned nightly with rust-src and its wasm target (the threaded wasm build: scripts/nightly.sh)
# and wasm-bindgen-cli 0.2.130 (must equal the wasm-bindgen crate version in Cargo.lock).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

need_apt=()
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
dpkg -s libvulkan1 >/dev/null 2>&1 || need_apt+=(libvulkan1)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# wasm-validate: the plain wasm build must validate without SIMD (scripts/build-web.sh, e2e)
command -v wasm-validate >/dev/null 2>&1 || need_apt+=(wabt)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

. "$(dirname "$0")/nightly.sh"
ensure_nightly

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "0.2.130" ]; then
  echo "setup: cargo install wasm-bindgen-cli 0.2.130 (about 3 minutes)"
  cargo install wasm-bindgen-cli --version 0.2.130
fi
