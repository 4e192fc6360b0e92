// A service worker with one job: make the page cross-origin isolated on a static host that cannot
// send headers (GitHub Pages and the like). Threads in wasm need SharedArrayBuffer, which browsers
// give only to a page served with Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp; this worker adds both to every same-origin response
// (the page, its scripts, the wasm, local model files). Cross-origin requests (hub downloads) are
// left to the browser: they are CORS fetches, which require-corp admits. coi.js registers it.
// scripts/serve.sh sends the headers itself, and then this worker is never registered.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (new URL(req.url).origin !== self.location.origin) return;
  if (req.cache === 'only-if-cached' && req.mode !== 'same-origin') return;
  event.respondWith(fetch(req).then((res) => {
    if (res.status === 0 || res.type === 'opaque') return res;
    const headers = new Headers(res.headers);
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }));
});
