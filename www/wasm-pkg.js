// Which build of the wasm package runs here (imported by both Workers). scripts/build-web.sh makes
// three:
//   pkg/          WebAssembly SIMD (128-bit vector kernels in gemm and burn's CPU backend, built
//                 for speed), one thread, WebGPU and the CPU: what every current browser runs;
//   pkg/threads/  SIMD, relaxed SIMD and threads (std rebuilt with atomics, burn's CPU kernels on a
//                 rayon pool of Web Workers; the products' fused multiply-add, src/cpu/gemm.rs),
//                 the CPU only: the CPU path on a cross-origin isolated page, which
//                 is what SharedArrayBuffer needs (serve.sh sends the headers; on a static host
//                 coi.js adds them through a service worker);
//   pkg/plain/    no SIMD, one thread, the CPU only, built for size: a browser without SIMD (such
//                 a browser has no WebGPU either).
// A module that holds one SIMD instruction fails to compile without SIMD, so the choice is made
// before loading, by validating a tiny module that uses one.

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): wasm-feature-detect's probe
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

export const Build = Object.freeze({ SIMD: 'simd', THREADS: 'simd+threads', PLAIN: 'plain' });

const PATHS = {
  [Build.SIMD]: '../pkg/zoo_prune_web.js',
  [Build.THREADS]: '../pkg/threads/zoo_prune_web.js',
  [Build.PLAIN]: '../pkg/plain/zoo_prune_web.js',
};

// (module (func (result v128) i32.const 0 i8x16.splat i32.const 0 i8x16.splat i32.const 0
// i8x16.splat f32x4.relaxed_madd)), made with wabt's wat2wasm --enable-relaxed-simd
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 0, 253, 15, 65, 0,
  253, 15, 65, 0, 253, 15, 253, 133, 2, 11]);

export const hasSimd = () => typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
export const hasRelaxedSimd = () => hasSimd() && WebAssembly.validate(RELAXED_PROBE);

// Why this browser cannot run the threaded build, in words for the status line (null: it can).
// Threads need a shared wasm memory, which browsers give only to a cross-origin isolated page; the
// threaded build also holds relaxed SIMD instructions (a browser without them runs the SIMD build).
export function whyNoThreads() {
  if (!hasSimd()) return 'this browser has no wasm SIMD';
  if (!hasRelaxedSimd()) return 'this browser has no wasm relaxed SIMD, which the threaded build needs';
  if (self.crossOriginIsolated !== true) return 'the page is not cross-origin isolated, which threads need';
  if (typeof SharedArrayBuffer !== 'function') return 'this browser has no SharedArrayBuffer, which threads need';
  return null;
}
export const canThread = () => whyNoThreads() === null;

// The build to run: `wanted` ('plain', 'simd' or 'threads': tests only) if this browser can run it,
// else the fastest it can for `cpu` (the model runs on burn's CPU backend, where threads help;
// WebGPU needs pkg/). The caller runs a build without WebGPU (plain, threads) on the CPU.
export function pickBuild({ cpu, wanted } = {}) {
  if (!hasSimd() || wanted === Build.PLAIN) return Build.PLAIN;
  if (wanted === Build.SIMD) return Build.SIMD;
  if (wanted === 'threads') return canThread() ? Build.THREADS : Build.SIMD;
  return cpu && canThread() ? Build.THREADS : Build.SIMD;
}

// Whether `build` has burn's WebGPU backend (the plain and threaded builds are CPU-only).
export const hasWebgpu = (build) => build === Build.SIMD;

// What to load instead when a build's files are not there: on a first `scripts/serve.sh` the page
// is served as soon as the plain build exists and the SIMD and threaded ones are built after it.
// (The threaded build's caller falls back to the one-thread builds itself.)
const FALLBACK = {
  [Build.THREADS]: [],
  [Build.SIMD]: [Build.PLAIN],
  [Build.PLAIN]: [],
};

// The package's module for `build` (pickBuild's answer, or undefined: the best one-thread build),
// or, when its files cannot be loaded, the next build that can: {build, mod, missing}, `missing`
// naming each build tried before (empty when `build` itself loaded). Throws when none loads.
export async function loadPkg(build) {
  const b = build || (hasSimd() ? Build.SIMD : Build.PLAIN);
  const missing = [];
  for (const c of [b, ...FALLBACK[b]]) {
    try {
      return { build: c, mod: await import(PATHS[c]), missing };
    } catch (e) {
      missing.push(`the ${c} build (${PATHS[c].replace('../', '')}) could not be loaded: ${e.message || e}`);
    }
  }
  throw new Error(`no wasm build could be loaded: ${missing.join('; ')}`);
}
