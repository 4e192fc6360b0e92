// Cross-origin isolation for the threaded wasm build (wasm-pkg.js), before any Worker starts.
// Served with COOP/COEP (scripts/serve.sh), the page is isolated already and this does nothing.
// Elsewhere it registers coi-sw.js, which adds the headers, and reloads once so that the page comes
// through it; if the page still is not isolated after that (a browser that ignores the worker's
// headers, private modes without service workers), the page runs with one thread: no loop.
// ?test=1&coi=0 (tests only) skips it, to check the one-thread fallback.

const RELOADED = 'zoo-prune-web:coi-reloaded';

export async function ensureIsolated() {
  const params = new URLSearchParams(location.search);
  if (self.crossOriginIsolated || !self.isSecureContext || !('serviceWorker' in navigator)) return;
  if (params.get('test') === '1' && params.get('coi') === '0') return;
  try {
    const reg = await navigator.serviceWorker.register(new URL('coi-sw.js', import.meta.url));
    if (sessionStorage.getItem(RELOADED)) return; // reloaded once already and still not isolated
    // Active already but not in control: a hard reload (which bypasses service workers); a plain
    // reload comes through it. Else wait for it to claim this page as it activates.
    if (!navigator.serviceWorker.controller && !reg.active) {
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
        setTimeout(resolve, 5000);
      });
    }
    if (!navigator.serviceWorker.controller && !reg.active) return;
    sessionStorage.setItem(RELOADED, '1');
    location.reload();
    await new Promise(() => {}); // nothing else starts on a page that is going away
  } catch (e) {
    console.warn(`cross-origin isolation through a service worker failed (${e.message}); the CPU path runs on one thread`);
  }
}
