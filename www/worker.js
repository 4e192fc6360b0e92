// All model work happens here, in a module Worker: fetching the model files, loading it on WebGPU
// (or the CPU fallback), encoding the image, ranking its visual tokens, and answering. The page
// only draws what this Worker posts.
//
// The Worker keeps what it computed and redoes only what is stale: the image is encoded again only
// when the image (the page's imageVersion) or the tiling changes, the question is swapped in
// without re-encoding, and the tokens are ranked again only when the method, its parameters, the
// budget mode or the encoding change (or the question, for the methods that read it: the wasm side
// drops such a ranking itself). A keep-ratio change never reaches this Worker before "Ask".
//
// The messages exchanged with the page, and what both sides share: protocol.js.

import { loadPkg, pickBuild, hasWebgpu, Build } from './wasm-pkg.js';
import {
  ToWorker, FromWorker, SourceKind, Backend, rankingKey, budgetCount, MODEL_CACHE, MODEL_FILES, REQUIRED_FILES, HUB_MANIFEST,
} from './protocol.js';
import { runEvaluation, modelFingerprint } from './worker-evaluate.js';

// The wasm package's exports (wasm-pkg.js picks the build this browser runs) and which build it is.
let pkg = null;
let wasmBuild = null;
let model = null;
let wasmDead = false;
let wasmExports = null; // what init() returned (its memory tells an out-of-memory abort)
// One model call at a time: wasm-bindgen refuses a second call on an object that is busy.
let queue = Promise.resolve();
let stopRequested = false;
let currentAsk = 0;
// The id of the newest prepare or ask received: an older one still queued is skipped (ten images
// chosen in a row encode only the last).
let newest = 0;
// What the wasm side holds now.
let encodedKey = null; // `${imageVersion}|${maxGrid}`
// The image and tiling the newest prepare or ask wants, and whether a model load waits: an encode
// of anything else stops after its current tile (it yields to this Worker's messages per tile).
let wantedKey = null;
let loadWaiting = 0;
const INTERRUPTED = 'interrupted:';
let tileDelayMs = 0; // tests only (?tiledelay=): each tile's yield waits this long
let encodedQuestion = null;
let encoding = null; // the parsed JSON of WebModel.encode
let rankKey = null; // rankingKey of the ranking held (protocol.js)
let promptMethods = []; // the model's info.prompt_methods: the methods whose ranking reads the question
const evalStops = new Set(); // ids of the Evaluate runs the page stopped

const post = (msg) => self.postMessage(msg);
// The wasm instance's memory: it only grows, so its size is the peak so far (a load's, an encode's).
const wasmMemory = () => (wasmExports && wasmExports.memory ? wasmExports.memory.buffer.byteLength : 0);

// The GPUDevice that burn's wgpu backend creates is not handed to JavaScript: catch it when it is
// requested, to hear of its loss (GPUDevice.lost: a driver reset, the GPU taken away) and of
// out-of-memory errors, and say so instead of waiting for the next call to fail.
let gpuError = null; // the last uncaptured GPU error, added to a later crash's message
const gpuDevices = []; // the devices seen (the e2e test loses one on purpose through this)
if (typeof GPUAdapter !== 'undefined' && GPUAdapter.prototype.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevices.push(device);
    device.lost.then((info) => {
      if (wasmDead) return;
      wasmDead = true;
      post({ type: FromWorker.FATAL, message: `GPUDevice.lost, reason ${info.reason || 'unknown'}${info.message ? `: ${info.message}` : ''}` });
    });
    device.addEventListener('uncapturederror', (ev) => {
      const oom = typeof GPUOutOfMemoryError !== 'undefined' && ev.error instanceof GPUOutOfMemoryError;
      gpuError = `${oom ? 'GPU out of memory' : 'GPU error'}: ${ev.error && ev.error.message}`;
      if (oom) status(`${gpuError}; the next step will probably fail`);
    });
    return device;
  };
}
self.__zpwGpuDevices = gpuDevices;
// The wasm memory of the instance in use (the e2e suite grows it to its limit to run the next
// request out of memory for real: errorText() must then say so).
self.__zpwWasmMemory = () => (wasmExports && wasmExports.memory) || null;
const status = (text) => post({ type: FromWorker.STATUS, text });

function errorText(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    let panic = null;
    try { panic = pkg ? pkg.take_panic_message() : null; } catch (_) { /* instance unusable */ }
    wasmDead = true;
    // an allocation failure aborts without a panic message: the memory's size tells
    const mem = wasmMemory();
    const full = !panic && mem > 3.5 * 2 ** 30 ? `; out of memory: the wasm memory had grown to ${(mem / 2 ** 30).toFixed(2)} GiB of its 4 GiB` : '';
    return `internal error (the model code crashed: ${panic || e.message}${full}${gpuError ? `; last ${gpuError}` : ''})`;
  }
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return String(e);
}

function report(during, e, id) {
  const message = errorText(e);
  if (e && typeof e === 'object' && typeof e.during === 'string') during = e.during;
  if (wasmDead) post({ type: FromWorker.FATAL, message: `${during}: ${message}` });
  else post({ type: FromWorker.ERROR, id, during, message });
}

const progress = (file, loaded, total, extra = {}) => post({ type: FromWorker.PROGRESS, file, loaded, total, ...extra });

// Fetches one file, reporting its bytes as they arrive (content-length gives the total). A
// missing optional file (404) is undefined.
async function download(url, file, required) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot download ${file} from ${url}: ${e.message} (offline, or the server refused)`);
  }
  if (!res.ok) {
    if (!required && res.status === 404) {
      progress(file, 0, 0, { absent: true, done: true });
      return undefined;
    }
    throw new Error(`cannot download ${file}: HTTP ${res.status} from ${url}`);
  }
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    progress(file, b.length, b.length, { done: true });
    return b;
  }
  const reader = res.body.getReader();
  // With a known size the bytes go straight into one buffer (a 1 GB file is not held twice);
  // chunks are kept only when the size is unknown or turns out wrong (a compressed transfer).
  let buf = total ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  let last = 0;
  progress(file, 0, total);
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      throw new Error(`the download of ${file} broke off after ${loaded} bytes: ${e.message}`);
    }
    if (r.done) break;
    if (buf && loaded + r.value.length <= buf.length) {
      buf.set(r.value, loaded);
    } else {
      if (buf) {
        chunks.push(buf.subarray(0, loaded));
        buf = null;
      }
      chunks.push(r.value);
    }
    loaded += r.value.length;
    const now = performance.now();
    if (now - last > 100) {
      last = now;
      progress(file, loaded, total > loaded ? total : 0);
    }
  }
  // a compressed transfer counts more bytes than content-length: only a shortfall is an error
  if (total && loaded < total) throw new Error(`the download of ${file} is incomplete: ${loaded} of ${total} bytes`);
  if (buf) {
    progress(file, loaded, loaded, { done: true });
    return buf;
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  progress(file, loaded, loaded, { done: true });
  return out;
}

// The commit a hub model is downloaded at and each file's size, as the hub announced them
// (GET api/models/<owner/model>/revision/main?blobs=true: `sha`, and `siblings` with sizes). Kept in
// the model cache beside the files: a Retry, a later visit (even offline) and every file of a
// model come from that one commit until the cache is cleared. Returns {sha, sizes, key, cache}.
async function hubManifest(source) {
  let cache = null;
  try {
    cache = await caches.open(MODEL_CACHE);
  } catch (e) {
    cache = null; // no Cache API here (or it failed): download every time
  }
  const key = new URL(`${source.name}/${HUB_MANIFEST}`, source.hub).href;
  if (cache) {
    try {
      const hit = await cache.match(key);
      const m = hit ? await hit.json() : null;
      if (m && typeof m.sha === 'string' && m.sizes) return { ...m, key, cache };
    } catch (e) {
      // an unreadable manifest: ask the hub again
    }
  }
  const api = new URL(`api/models/${source.name}/revision/main?blobs=true`, source.hub).href;
  status(`asking the hub for the current commit of ${source.name}…`);
  let res;
  try {
    res = await fetch(api);
  } catch (e) {
    throw new Error(`cannot ask the hub which commit of ${source.name} to download (${api}): ${e.message} (offline, or the server refused)`);
  }
  if (!res.ok) throw new Error(`cannot ask the hub which commit of ${source.name} to download: HTTP ${res.status} from ${api}`);
  let info;
  try {
    info = await res.json();
  } catch (e) {
    throw new Error(`the hub's answer about ${source.name} is not JSON (${api})`);
  }
  if (!info || !/^[0-9a-f]{40}$/.test(info.sha || '')) throw new Error(`the hub's answer about ${source.name} names no commit (${api})`);
  const sizes = {};
  for (const f of info.siblings || []) {
    if (f && typeof f.rfilename === 'string') sizes[f.rfilename] = (f.lfs && f.lfs.size) || f.size || null;
  }
  const m = { repo: source.name, sha: info.sha, sizes };
  if (cache) {
    try {
      await cache.put(key, new Response(JSON.stringify(m), { headers: { 'content-type': 'application/json' } }));
    } catch (e) {
      // not kept: the next visit asks again
    }
  }
  return { ...m, key, cache };
}

// A hub file from the browser's cache, else downloaded and then cached (only once complete), its
// length checked against what the hub announced (`size`, when it did).
async function hubFile(url, file, required, size, cache) {
  const wrong = (n) => size && n !== size;
  if (cache) {
    try {
      const hit = await cache.match(url);
      if (hit) {
        const b = new Uint8Array(await hit.arrayBuffer());
        if (!wrong(b.length)) {
          progress(file, b.length, b.length, { fromCache: true, done: true });
          return b;
        }
        await cache.delete(url); // a damaged copy: download it again
      }
    } catch (e) {
      // the cache failed: download
    }
  }
  const bytes = await download(url, file, required);
  if (bytes && wrong(bytes.length)) {
    const err = new Error(`${file} is ${bytes.length} bytes but the hub announced ${size} for this commit: a damaged transfer, ` +
      'or the file changed on the hub; it was not kept, and Retry asks the hub again');
    err.manifestStale = true;
    throw err;
  }
  if (bytes && cache) {
    try {
      await cache.put(url, new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
    } catch (e) {
      status(`${file} could not be kept in the browser cache (${e.message}); the next visit downloads it again`);
    }
  }
  return bytes;
}

async function fetchBytes(url, required) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${e.message}`);
  }
  if (!res.ok) {
    if (!required && res.status === 404) return undefined;
    throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

// The model's files as bytes, and for a hub model the commit they come from ({repo, sha}).
// `onConfig(bytes)` runs once config.json is in, before the weights are fetched (it may throw:
// nothing more is downloaded).
async function modelFiles(source, onConfig) {
  const got = {};
  let revision = null;
  const configDone = () => {
    if (!got['config.json']) throw new Error('config.json is missing');
    onConfig(got['config.json']);
  };
  if (source.kind === SourceKind.HUB) {
    // file by file (the small ones first), each with its own progress bar, all at one commit
    const m = await hubManifest(source);
    revision = { repo: source.name, sha: m.sha };
    try {
      for (const file of MODEL_FILES) {
        const required = REQUIRED_FILES.includes(file);
        if (!(file in m.sizes) && Object.keys(m.sizes).length) {
          if (required) throw new Error(`${source.name} at commit ${m.sha.slice(0, 7)} has no ${file}`);
          progress(file, 0, 0, { absent: true, done: true });
          continue;
        }
        status(`downloading ${file} of ${source.name} at commit ${m.sha.slice(0, 7)}…`);
        got[file] = await hubFile(new URL(`${source.name}/resolve/${m.sha}/${file}`, source.hub).href, file, required, m.sizes[file], m.cache);
        if (file === 'config.json') configDone();
      }
    } catch (e) {
      if (e.manifestStale && m.cache) await m.cache.delete(m.key).catch(() => {});
      throw e;
    }
  } else if (source.kind === SourceKind.FILES) {
    for (const file of MODEL_FILES) {
      const f = source.files[file];
      if (!f) continue;
      status(`reading ${file}…`);
      try {
        got[file] = new Uint8Array(await f.arrayBuffer());
      } catch (e) {
        throw new Error(`cannot read the local file ${file}: ${e.message}`);
      }
      progress(file, got[file].length, got[file].length, { done: true });
      if (file === 'config.json') configDone();
    }
  } else {
    status(`fetching the model files from ${source.base}…`);
    const url = (name) => new URL(name, source.base).href;
    got['config.json'] = await fetchBytes(url('config.json'), true);
    configDone();
    const rest = MODEL_FILES.filter((f) => f !== 'config.json');
    const all = await Promise.all(rest.map((file) => fetchBytes(url(file), REQUIRED_FILES.includes(file))));
    rest.forEach((file, i) => { got[file] = all[i]; });
  }
  for (const file of REQUIRED_FILES) {
    if (!got[file]) throw new Error(`${file} is missing`);
  }
  return { files: got, revision };
}

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
async function chooseBackend(choice) {
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
async function startThreaded(n) {
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

async function load({ source, backend, maxTensorBytes: lowered, build, threads: wantedThreads, tileDelayMs: delay }) {
  const t0 = performance.now();
  tileDelayMs = Number(delay) || 0;
  const choice = Object.values(Backend).includes(backend) ? backend : Backend.AUTO;
  let { useWebgpu, gpu, reason } = await chooseBackend(choice);
  status('loading the wasm module…');
  let chosen = pickBuild({ cpu: !useWebgpu, wanted: build });
  if (useWebgpu && !hasWebgpu(chosen)) {
    // only where WebGPU exists but the browser lacks SIMD (or a test asks for such a build)
    useWebgpu = false;
    reason = `the ${chosen} wasm build has no WebGPU`;
  }
  let threadsFailed = null;
  let threads = 1; // the rayon pool's size (1: a one-thread build)
  if (chosen === Build.THREADS) {
    // rayon's pool: one Web Worker per core (this Worker waits while they work); ?threads=0 (tests
    // only) asks for none, which the pool refuses: the failure path below
    const n = wantedThreads === 0 ? 0 : Math.max(1, Math.min(64, wantedThreads || navigator.hardwareConcurrency || 1));
    status(`starting ${n} threads…`);
    try {
      const t = await startThreaded(n);
      pkg = t.mod;
      wasmExports = t.exports;
      wasmBuild = Build.THREADS;
      threads = n;
    } catch (e) {
      // the module, its shared memory or the pool's Workers could not start: the one-thread SIMD
      // build instead, and say so
      threadsFailed = `threads could not start (${e.message || e}), so one thread`;
      chosen = Build.SIMD;
    }
  }
  let buildMissing = null;
  if (chosen !== Build.THREADS) {
    const loaded = await loadPkg(chosen);
    pkg = loaded.mod;
    wasmBuild = loaded.build;
    wasmExports = await pkg.default();
    if (loaded.build !== chosen) {
      // a build not there yet (a first scripts/serve.sh builds the plain one first): the next one
      buildMissing = `${loaded.missing.join('; ')}, so the ${loaded.build} build`;
      if (useWebgpu && !hasWebgpu(loaded.build)) {
        useWebgpu = false;
        reason = `the ${loaded.build} wasm build has no WebGPU`;
      }
    }
  }
  // a WebGPU device caps each buffer at this: larger tensors are split, or the model cannot run
  const maxTensorBytes = useWebgpu ? Math.min(gpu.maxStorageBufferBindingSize, gpu.maxBufferSize, lowered || Infinity) : undefined;
  let splits = [];
  const { files: f, revision } = await modelFiles(source, (config) => {
    // before the weights are downloaded: throws naming the tensor and the limit when one cannot fit
    if (maxTensorBytes) splits = pkg.check_fit(config, maxTensorBytes);
  });
  const [config, safetensors, tokenizer, preprocessor, generation] = [
    f['config.json'], f['model.safetensors'], f['tokenizer.json'], f['preprocessor_config.json'], f['generation_config.json'],
  ];
  status(`loading the model (${(safetensors.length / 1e6).toFixed(1)} MB) on ${useWebgpu ? 'WebGPU' : 'the CPU'}…`);
  // The weights stay in this Worker's JS memory: wasm reads each tensor's bytes as it converts it
  // (a copy of the whole file in the wasm memory would add its size to the page's peak).
  const headerLen = safetensors.length >= 8 ? Number(new DataView(safetensors.buffer, safetensors.byteOffset, 8).getBigUint64(0, true)) : 0;
  const head = safetensors.subarray(0, Math.min(safetensors.length, 8 + Math.min(headerLen, 100e6)));
  const read = (offset, length) => safetensors.subarray(offset, offset + length);
  // the model's identity for the Evaluate panel's stored results (WebCrypto works beside the load)
  const fingerprint = modelFingerprint(config, tokenizer, preprocessor, safetensors);
  model = await pkg.WebModel.load(config, head, safetensors.length, read, tokenizer, preprocessor, generation, useWebgpu, maxTensorBytes);
  const info = model.info();
  promptMethods = info.prompt_methods || [];
  post({
    type: FromWorker.LOADED,
    backend: model.backend(),
    choice,
    adapter: gpu ? `${gpu.name}${gpu.fallback ? ', a software (CPU) adapter' : ''}` : null,
    gpu,
    fallbackReason: [reason || model.fallback_reason(), threadsFailed, buildMissing].filter(Boolean).join('; ') || null,
    splits: model.backend() === 'webgpu' ? splits : [],
    revision,
    wasmBytes: wasmMemory(),
    wasmBuild,
    threads,
    info,
    loadMs: performance.now() - t0,
    fingerprint: await fingerprint,
  });
}

// Runs one step, naming it in the error it may throw ("Error while encoding the image: …").
async function step(during, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e && typeof e === 'object' && !(e instanceof WebAssembly.RuntimeError) && !e.during) e.during = during;
    throw e;
  }
}

// Brings the wasm side to `input`: encodes, swaps the question, ranks, each only when stale.
async function prepare(id, input) {
  if (!model) throw new Error('the model is not loaded yet');
  const { imageVersion, image, question, maxGrid, method, params, budget } = input;
  if (!image) throw new Error('choose an image first');
  const eKey = `${imageVersion}|${maxGrid}`;
  if (eKey !== encodedKey || !model.has_encoding()) {
    encodedKey = null;
    rankKey = null;
    status('encoding the image…');
    const t0 = performance.now();
    encoding = await step('encoding the image',
      () => model.encode(new Uint8Array(image), question, maxGrid, async (done, total) => {
        post({ type: FromWorker.ENCODE_PROGRESS, id, done, total, tileMs: (performance.now() - t0) / done });
        // read the messages that came meanwhile (a macrotask): go on only if nobody wants
        // another image, tiling or model
        await new Promise((resolve) => setTimeout(resolve, tileDelayMs));
        return wantedKey === eKey && loadWaiting === 0;
      }));
    encodedKey = eKey;
    encodedQuestion = question;
    post({ type: FromWorker.ENCODED, id, imageVersion, maxGrid, encoding });
  } else if (question !== encodedQuestion) {
    // throws on an empty question; then nothing changed
    await step('reading the question', () => model.set_question(question));
    encodedQuestion = question;
  }
  const rKey = rankingKey(input, promptMethods);
  if (rKey !== rankKey || !model.has_ranking()) {
    rankKey = null;
    status(`ranking the visual tokens (${method}, ${budget})…`);
    const ranking = await step('ranking the visual tokens',
      () => model.rank(method, params || {}, budget));
    rankKey = rKey;
    post({ type: FromWorker.RANKED, id, key: rKey, input: { imageVersion, maxGrid, method, params, budget, question }, ranking });
  }
}

async function ask({ id, input, ratio, maxNewTokens, positions }) {
  stopRequested = false;
  await prepare(id, input);
  const k = budgetCount(encoding.visual_tokens, ratio);
  status(`answering with ${k} of ${encoding.visual_tokens} visual tokens…`);
  await step('starting the answer', () => model.answer(k, maxNewTokens, positions || 'renumber'));
  for (;;) {
    if (stopRequested || id !== currentAsk) {
      model.stop();
      post({ type: FromWorker.DONE, id, stopped: true, timings: model.timings(), wasmBytes: wasmMemory() });
      return;
    }
    const piece = await model.next_piece();
    if (piece === undefined || piece === null) break;
    post({ type: FromWorker.PIECE, id, text: piece });
  }
  post({ type: FromWorker.DONE, id, stopped: false, timings: model.timings(), wasmBytes: wasmMemory() });
}

// An encode that a newer request stopped (`WebModel.encode`'s "interrupted:" error): no failure.
const interrupted = (e) => String((e && e.message) || e).startsWith(INTERRUPTED);

function enqueue(during, fn, id, onInterrupt) {
  queue = queue.then(async () => {
    if (wasmDead) return;
    try {
      await fn();
    } catch (e) {
      if (interrupted(e) && !wasmDead) {
        encodedKey = null;
        rankKey = null;
        if (onInterrupt) onInterrupt();
        return;
      }
      report(during, e, id);
    }
  });
}

// What a prepare or ask message wants encoded.
const wantKey = (input) => input && `${input.imageVersion}|${input.maxGrid}`;

self.onmessage = (ev) => {
  const msg = ev.data;
  switch (msg.type) {
    case ToWorker.LOAD:
      loadWaiting += 1;
      enqueue('loading the model', () => {
        loadWaiting -= 1;
        return load(msg);
      });
      break;
    case ToWorker.TILING:
      enqueue('reading the tiling choices', async () => {
        if (!model) return;
        const choices = model.tiling(msg.width, msg.height);
        post({ type: FromWorker.TILING, width: msg.width, height: msg.height, choices });
      });
      break;
    case ToWorker.PREPARE:
      newest = Math.max(newest, msg.id);
      if (msg.id === newest) wantedKey = wantKey(msg.input);
      enqueue('ranking the visual tokens', async () => {
        if (msg.id < newest) {
          post({ type: FromWorker.PREPARED, id: msg.id, skipped: true });
          return;
        }
        await prepare(msg.id, msg.input);
        post({ type: FromWorker.PREPARED, id: msg.id });
      }, msg.id, () => post({ type: FromWorker.PREPARED, id: msg.id, skipped: true }));
      break;
    case ToWorker.ASK:
      newest = Math.max(newest, msg.id);
      currentAsk = msg.id; // a newer question ends the one being answered
      wantedKey = wantKey(msg.input);
      enqueue('answering', () => ask(msg), msg.id,
        () => post({ type: FromWorker.DONE, id: msg.id, stopped: true, timings: null, wasmBytes: wasmMemory() }));
      break;
    case ToWorker.COMPARE:
      enqueue('comparing two methods', async () => {
        // only against the ranking the page still shows: a newer one brings its own request
        if (!model || msg.key !== rankKey || !model.has_ranking()) return;
        let comparison;
        try {
          comparison = await model.compare(msg.method, msg.params || {});
        } catch (e) {
          // a dead instance is everybody's news (reported without an id); a refused comparison
          // is only the agreement line's
          if (e instanceof WebAssembly.RuntimeError) throw e;
          comparison = { method: msg.method, error: String((e && e.message) || e) };
        }
        post({ type: FromWorker.COMPARED, id: msg.id, key: msg.key, compareKey: msg.compareKey, comparison });
      });
      break;
    case ToWorker.STOP:
      stopRequested = true;
      break;
    case ToWorker.EVALUATE: {
      // a run goes on until the page stops it, loads another model, or asks the model something
      // (a new image, method or question: the page stays responsive; Run resumes where it stopped)
      const asked = newest;
      enqueue('evaluating', async () => {
        if (!model) throw new Error('the model is not loaded yet');
        await runEvaluation(model, msg, post, () => !evalStops.has(msg.id) && loadWaiting === 0 && newest === asked);
      }, msg.id);
      break;
    }
    case ToWorker.EVAL_STOP:
      evalStops.add(msg.id);
      break;
    default:
      post({ type: FromWorker.ERROR, during: 'worker', message: `unknown message ${JSON.stringify(msg.type)}` });
  }
};

self.addEventListener('unhandledrejection', (ev) => report('worker', ev.reason));
// A trap outside our calls: cubecl's uncaptured-GPU-error handler panics inside the device's
// event callback (e.g. "wgpu error: Out of Memory"). The instance is then dead: say so at once.
self.addEventListener('error', (ev) => {
  if (!(ev.error instanceof WebAssembly.RuntimeError) || wasmDead) return;
  ev.preventDefault();
  report('running on the GPU', ev.error);
});
