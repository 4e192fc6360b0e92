#!/usr/bin/env bash
# Builds the web package, then serves the repo root (www/, pkg/ and the model files under
# tests/fixtures/) on http://127.0.0.1:${PORT:-8080}/www/ . Only 127.0.0.1: nothing else can reach it,
# and the page fetches nothing from anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8080}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/build-web.sh
fi
echo
echo "serving $(pwd) -- open http://127.0.0.1:$PORT/www/ (Ctrl-C stops)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory .
