#!/usr/bin/env bash
# Builds the web package (the plain build first, the others while serving), serves the repo root (www/, pkg/ and the model files under
# tests/fixtures/) on http://127.0.0.1:${PORT:-8080}/www/ . Only 127.0.0.1: nothing else can reach it,
# and the page fetches nothing from anywhere else. Every response carries COOP/COEP, which make the
# page cross-origin isolated: what the threaded wasm build needs (SharedArrayBuffer). A static host
# that cannot send them gets them from www/coi-sw.js, a service worker.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"

# The first run on a fresh machine builds for many minutes (plain ~3.5, SIMD ~16, threaded ~9 from
# cold): the plain build is made first, the page is served as soon as it exists (every browser can
# run it, and the image check always loads it), and the SIMD and threaded builds follow while the
# page is up (any older SIMD / threaded build is set aside first); www/wasm-pkg.js loads the best
# build whose files exist at the time the model loads (reload the page after "all builds ready").
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  ZPW_WASM=plain scripts/build-web.sh
fi
python3 - "$PORT" <<'PY' &
import http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()
Handler.extensions_map[".wasm"] = "application/wasm"
Handler.extensions_map[".js"] = "text/javascript"
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
trap 'exit 130' INT TERM
sleep 0.5
kill -0 $SERVER 2>/dev/null || { echo "serve: the server did not start (port $PORT in use?)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # a SIMD or threaded build left from an older checkout may not match www/ any more: set aside
  # until rebuilt (a few seconds when nothing changed), so the page never loads a stale module
  find pkg -maxdepth 1 -type f -delete
  rm -rf pkg/threads
fi
echo
echo "serving $(pwd) -- open http://127.0.0.1:$PORT/www/ (Ctrl-C stops)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "serve: building the SIMD and threaded packages now; until they exist the page runs the plain build"
  if ZPW_WASM=simd scripts/build-web.sh && ZPW_WASM=threads scripts/build-web.sh; then
    echo "serve: all builds ready (reload the page to use the SIMD / threaded build)"
  else
    echo "serve: a build failed (above); the page keeps running the plain build" >&2
  fi
fi
wait $SERVER
