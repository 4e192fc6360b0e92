// Which build of the wasm package this browser runs (imported by both Workers): the one with
// WebAssembly SIMD (pkg/: 128-bit vector kernels in gemm and burn's CPU backend, built for speed)
// wherever SIMD validates, which is every current browser; else the plain build (pkg/plain/, no
// SIMD, built for size). A module that holds one SIMD instruction fails to compile without SIMD,
// so the choice is made before loading, by validating a tiny module that uses one.

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): wasm-feature-detect's probe
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

export const Build = Object.freeze({ SIMD: 'simd', PLAIN: 'plain' });

export const hasSimd = () => typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);

// The package's module for `wanted` (a Build, or undefined: the best this browser runs).
export async function loadPkg(wanted) {
  const build = wanted === Build.PLAIN || !hasSimd() ? Build.PLAIN : Build.SIMD;
  const mod = await import(build === Build.SIMD ? '../pkg/zoo_prune_web.js' : '../pkg/plain/zoo_prune_web.js');
  return { build, mod };
}
