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
// Page -> Worker: {type:'load', base, preferWebgpu}
//                 {type:'prepare', id, input}          encode if stale, rank if stale
//                 {type:'ask', id, input, ratio, maxNewTokens}
//                 {type:'stop'}
//   input = {imageVersion, image (ArrayBuffer), question, maxGrid, method, params, budget}
// Worker -> Page: {type:'status', text}
//                 {type:'loaded', backend, adapter, fallbackReason, info, loadMs}
//                 {type:'encoded', id, imageVersion, maxGrid, encoding}
//                 {type:'ranked', id, key, input (without the image), ranking}   (key: see rankingKey)
//                 {type:'prepared', id}
//                 {type:'piece', id, text}
//                 {type:'done', id, stopped, timings}
//                 {type:'error', id?, during, message}
//                 {type:'fatal', message}     (the wasm instance is dead: the page starts a new Worker)

import init, { WebModel, take_panic_message } from '../pkg/zoo_prune_web.js';

let model = null;
let wasmDead = false;
// One model call at a time: wasm-bindgen refuses a second call on an object that is busy.
let queue = Promise.resolve();
let stopRequested = false;
let currentAsk = 0;
// What the wasm side holds now.
let encodedKey = null; // `${imageVersion}|${maxGrid}`
let encodedQuestion = null;
let encoding = null; // the parsed JSON of WebModel.encode
let rankKey = null; // `${encodedKey}|${method}|${params}|${budget}`

const post = (msg) => self.postMessage(msg);
const status = (text) => post({ type: 'status', text });

function errorText(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    let panic = null;
    try { panic = take_panic_message(); } catch (_) { /* instance unusable */ }
    wasmDead = true;
    return `internal error (the model code crashed: ${panic || e.message}); the worker will be restarted`;
  }
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return String(e);
}

function report(during, e, id) {
  const message = errorText(e);
  if (e && typeof e === 'object' && typeof e.during === 'string') during = e.during;
  if (wasmDead) post({ type: 'fatal', message: `${during}: ${message}` });
  else post({ type: 'error', id, during, message });
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

// Asks for a WebGPU adapter before Rust does, to say why the CPU is used when it is, and which
// adapter WebGPU runs on (SwiftShader is Chromium's CPU implementation of WebGPU).
async function webgpuAdapter() {
  if (!('gpu' in navigator) || !navigator.gpu) return { reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { reason: 'WebGPU has no adapter here (requestAdapter() returned null)' };
    const i = adapter.info || {};
    const name = [i.vendor, i.architecture || i.device || i.description].filter(Boolean).join(' ') || 'unknown adapter';
    const fallback = adapter.isFallbackAdapter || i.isFallbackAdapter;
    return { desc: `${name}${fallback ? ', a software (CPU) adapter' : ''}` };
  } catch (e) {
    return { reason: `WebGPU adapter request failed: ${e.message}` };
  }
}

async function load({ base, preferWebgpu }) {
  const t0 = performance.now();
  status('loading the wasm module…');
  await init();
  status(`fetching the model files from ${base}…`);
  const url = (name) => new URL(name, base).href;
  const [config, safetensors, tokenizer, preprocessor, generation] = await Promise.all([
    fetchBytes(url('config.json'), true),
    fetchBytes(url('model.safetensors'), true),
    fetchBytes(url('tokenizer.json'), true),
    fetchBytes(url('preprocessor_config.json'), false),
    fetchBytes(url('generation_config.json'), false),
  ]);
  let useWebgpu = preferWebgpu;
  let jsFallback = null;
  let adapter = null;
  if (useWebgpu) {
    const a = await webgpuAdapter();
    jsFallback = a.reason || null;
    adapter = a.desc || null;
    if (jsFallback) useWebgpu = false;
  }
  status(`loading the model (${(safetensors.length / 1e6).toFixed(1)} MB) on ${useWebgpu ? 'WebGPU' : 'the CPU'}…`);
  model = await WebModel.load(config, safetensors, tokenizer, preprocessor, generation, useWebgpu);
  post({
    type: 'loaded',
    backend: model.backend(),
    adapter,
    fallbackReason: jsFallback || model.fallback_reason() || null,
    info: JSON.parse(model.info()),
    loadMs: performance.now() - t0,
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
    encoding = await step('encoding the image',
      async () => JSON.parse(await model.encode(new Uint8Array(image), question, maxGrid)));
    encodedKey = eKey;
    encodedQuestion = question;
    post({ type: 'encoded', id, imageVersion, maxGrid, encoding });
  } else if (question !== encodedQuestion) {
    // throws on an empty question; then nothing changed
    await step('reading the question', () => model.set_question(question));
    encodedQuestion = question;
  }
  const paramsJson = JSON.stringify(params || {});
  const rKey = rankingKey(input);
  if (rKey !== rankKey || !model.has_ranking()) {
    rankKey = null;
    status(`ranking the visual tokens (${method}, ${budget})…`);
    const ranking = await step('ranking the visual tokens',
      async () => JSON.parse(await model.rank(method, paramsJson, budget)));
    rankKey = rKey;
    post({ type: 'ranked', id, key: rankingKey(input), input: { imageVersion, maxGrid, method, params, budget }, ranking });
  }
}

// What a ranking was computed for; app.js builds the same string to tell a current ranking.
function rankingKey({ imageVersion, maxGrid, method, params, budget }) {
  return `${imageVersion}|${maxGrid}|${method}|${JSON.stringify(params || {})}|${budget}`;
}

// Tokens kept for a keep ratio: the library's prune::budget (f64 round, at least one).
function budgetCount(n, ratio) {
  return Math.min(n, Math.max(1, Math.round(n * ratio)));
}

async function ask({ id, input, ratio, maxNewTokens }) {
  stopRequested = false;
  await prepare(id, input);
  const k = budgetCount(encoding.visual_tokens, ratio);
  status(`answering with ${k} of ${encoding.visual_tokens} visual tokens…`);
  await step('starting the answer', () => model.answer(k, maxNewTokens));
  for (;;) {
    if (stopRequested || id !== currentAsk) {
      model.stop();
      post({ type: 'done', id, stopped: true, timings: JSON.parse(model.timings()) });
      return;
    }
    const piece = await model.next_piece();
    if (piece === undefined || piece === null) break;
    post({ type: 'piece', id, text: piece });
  }
  post({ type: 'done', id, stopped: false, timings: JSON.parse(model.timings()) });
}

function enqueue(during, fn, id) {
  queue = queue.then(async () => {
    if (wasmDead) return;
    try {
      await fn();
    } catch (e) {
      report(during, e, id);
    }
  });
}

self.onmessage = (ev) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'load':
      enqueue('loading the model', () => load(msg));
      break;
    case 'prepare':
      enqueue('ranking the visual tokens', async () => {
        await prepare(msg.id, msg.input);
        post({ type: 'prepared', id: msg.id });
      }, msg.id);
      break;
    case 'ask':
      currentAsk = msg.id; // a newer question ends the one being answered
      enqueue('answering', () => ask(msg), msg.id);
      break;
    case 'stop':
      stopRequested = true;
      break;
    default:
      post({ type: 'error', during: 'worker', message: `unknown message ${JSON.stringify(msg.type)}` });
  }
};

self.addEventListener('unhandledrejection', (ev) => report('worker', ev.reason));
