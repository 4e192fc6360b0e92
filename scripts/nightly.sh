# Sourced by setup.sh and build-web.sh: the toolchain of the threaded wasm build (pkg/threads/).
# -Z build-std (std rebuilt with atomics, which wasm threads need) exists only on nightly; pinned so
# that a fresh machine builds what was tested (rustc 1.97.0-nightly e50aa6fba 2026-05-19).
NIGHTLY=nightly-2026-05-20

ensure_nightly() {
  local target=wasm32-unknown-unknown components targets
  # read into variables first: `rustup ... | grep -q` under pipefail can fail when grep stops early
  components=$(rustup component list --installed --toolchain "$NIGHTLY" 2>/dev/null || true)
  targets=$(rustup target list --installed --toolchain "$NIGHTLY" 2>/dev/null || true)
  if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
    || ! grep -q '^rust-src' <<<"$components" || ! grep -qx "$target" <<<"$targets"; then
    echo "installing $NIGHTLY with rust-src and $target (the threaded wasm build's toolchain)"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src --target "$target"
  fi
}
