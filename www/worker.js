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
// The messages exchanged with the page, and what both sides share: protocol.js. The model files
// (server, local files, hub + cache): worker-files.js; the backend and wasm build choice:
// worker-backend.js; the Evaluate panel's runs: worker-evaluate.js.

import { loadPkg, pickBuild, hasWebgpu, whyNoThreads, Build } from './wasm-pkg.js';
import { ToWorker, FromWorker, Backend, rankingKey, budgetCount } from './protocol.js';
import { post, status } from './worker-post.js';
import { modelFiles } from './worker-files.js';
import { chooseBackend, startThreaded } from './worker-backend.js';
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
  if (!useWebgpu && chosen !== Build.THREADS && !build && whyNoThreads()) threadsFailed = whyNoThreads(); // the status line says "one thread" before it
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
      threadsFailed = `threads could not start (${e.message || e})`;
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
  const tFiles = performance.now(); // the wasm module and its threads are up
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
  const tWeights = performance.now();
  model = await pkg.WebModel.load(config, head, safetensors.length, read, tokenizer, preprocessor, generation, useWebgpu, maxTensorBytes);
  const tDone = performance.now();
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
    loadMs: tDone - t0,
    // where the load's time went: the wasm module + thread pool, the files (download or cache), the
    // model built from them (weights converted, tokenizer parsed)
    loadPhases: { wasm: tFiles - t0, files: tWeights - tFiles, model: tDone - tWeights },
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
        await runEvaluation(model, msg, () => !evalStops.has(msg.id) && loadWaiting === 0 && newest === asked);
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
