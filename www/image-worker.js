// Checks an image with the model's own decoder (the same library as worker.js, its own small
// instance of the plain build: 1.4 MB gzip, no WebGPU, no threads, which a decode does not need,
// where the SIMD build with wgpu is 5.1 MB) before the page lets it replace the current image: a file the browser can show but
// the decoder refuses (a truncated PNG) must not cost the previous image. A Worker of its own so
// that a check never waits behind a long encode or answer in the model's Worker.
//
// Page -> here: {id, image (ArrayBuffer)}
// here -> Page: {id, ok: true, width, height} | {id, ok: false, message} | {id, ok: null, message}
//   (ok: null = the check itself failed, e.g. the wasm module did not load: the page goes on
//   without it)

import { loadPkg, Build } from './wasm-pkg.js';

let ready = null; // resolves to the package's module once its wasm is instantiated

self.onmessage = async ({ data: { id, image } }) => {
  let pkg;
  try {
    ready = ready || loadPkg(Build.PLAIN).then(async ({ mod }) => {
      await mod.default();
      return mod;
    });
    pkg = await ready;
  } catch (e) {
    ready = null;
    self.postMessage({ id, ok: null, message: `the image check could not start: ${e.message || e}` });
    return;
  }
  try {
    self.postMessage({ id, ok: true, ...pkg.check_image(new Uint8Array(image)) });
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) {
      // the instance is dead: say so, and let the page start a new Worker for the next image
      self.postMessage({ id, ok: null, dead: true, message: `the image check crashed: ${e.message}` });
      return;
    }
    self.postMessage({ id, ok: false, message: String(e.message || e) });
  }
};
