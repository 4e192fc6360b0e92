// The model Worker's choice of backend and wasm build: the WebGPU adapter and what it is, the
// Backend control against it, and the threaded build's pool of Workers.

import { loadPkg, Build } from './wasm-pkg.js';
import { Backend } from './protocol.js';

// Asks for a WebGPU adapter before Rust does: which adapter WebGPU would run on, whether it is a
// software one (SwiftShader is Chromium's CPU implementation of WebGPU: a fallback adapter), its
// f16 support and the two limits that decide whether a model's tensors fit in its buffers.
// Returns {gpu} or {reason} (why there is no WebGPU).
async function webgpuAdapter() {
  if (!('gpu' in navigator) || !navigator.gpu) return { reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { reason: 'WebGPU has no adapter here (requestAdapter() returned null)' };
    const i = adapter.info || {};
    const name = [i.vendor, i.architecture || i.device || i.description].filter(Boolean).join(' ') || 'unknown adapter';
    return {
      gpu: {
        name,
        fallback: Boolean(adapter.isFallbackAdapter || i.isFallbackAdapter),
        shaderF16: adapter.features.has('shader-f16'),
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    };
  } catch (e) {
    return { reason: `WebGPU adapter request failed: ${e.message}` };
  }
}

// The Backend control's choice against what the browser has: {useWebgpu, gpu, reason}, reason
// saying why the CPU is used when it is.
export async function chooseBackend(choice) {
  if (choice === Backend.CPU) return { useWebgpu: false, gpu: null, reason: 'Backend: CPU chosen' };
  const a = await webgpuAdapter();
  if (a.reason) return { useWebgpu: false, gpu: null, reason: a.reason };
  if (choice === Backend.AUTO && a.gpu.fallback) {
    return {
      useWebgpu: false,
      gpu: a.gpu,
      reason: `Auto: the WebGPU adapter (${a.gpu.name}) is a software one that runs on the CPU, where burn's CPU ` +
        'backend is far faster; choose Backend: WebGPU to use it anyway',
    };
  }
  return { useWebgpu: true, gpu: a.gpu, reason: null };
}

// How long the threaded build's pool may take to start before the one-thread build is used instead
// (wasm-bindgen-rayon waits for each pool Worker's "ready" and never hears of one that fails).
const POOL_TIMEOUT_MS = 30_000;

// The threaded build, its pool of `n` Workers started; throws when any part fails or times out.
export async function startThreaded(n) {
  const loaded = await loadPkg(Build.THREADS);
  const exports = await loaded.mod.default();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from its ${n} Workers in ${POOL_TIMEOUT_MS / 1000} s`)), POOL_TIMEOUT_MS);
  });
  try {
    await Promise.race([loaded.mod.initThreadPool(n), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return { mod: loaded.mod, exports };
}

