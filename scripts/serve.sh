#!/usr/bin/env bash
# Builds the web package, then serves the repo root (www/, pkg/ and the model files under
# tests/fixtures/) on http://127.0.0.1:${PORT:-8080}/www/ . Only 127.0.0.1: nothing else can reach it,
# and the page fetches nothing from anywhere else. Every response carries COOP/COEP, which make the
# page cross-origin isolated: what the threaded wasm build needs (SharedArrayBuffer). A static host
# that cannot send them gets them from www/coi-sw.js, a service worker.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-web.sh
fi
echo
echo "serving $(pwd) -- open http://127.0.0.1:$PORT/www/ (Ctrl-C stops)"
exec python3 - "$PORT" <<'PY'
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
