// What the page and the model Worker (worker.js) share: the messages they exchange, the key that
// tells a current ranking, the keep-ratio budget, and the model files with their cache. One copy,
// imported by both sides, so that they cannot drift apart.
//
// Page -> Worker: {type: LOAD, source, backend, maxTensorBytes?, build?, threads?, tileDelayMs?}   backend: a Backend value;
//                   maxTensorBytes: lowers the adapter's largest buffer (tests); build: a wasm-pkg.js
//                   Build to run (tests); threads: the threaded build's pool size (tests)
//                   source = {kind: URL, base} | {kind: HUB, hub, name (owner/model)} | {kind: FILES, files: {name: File}}
//                 {type: TILING, width, height}    the grid and tokens of every tiling choice
//                 {type: PREPARE, id, input}       encode if stale, rank if stale
//                 {type: ASK, id, input, ratio, maxNewTokens, positions}   positions: 'renumber' | 'keep'
//                 {type: COMPARE, id, key, compareKey, method, params}   another method against the
//                   current ranking (key); compareKey adds the method and, where it reads it, the question
//                 {type: STOP}
//                 {type: EVALUATE, id, scenes, base, maxGrid, specs, positions, ratios, rule, maxNewTokens, suffix, start}
//                   the Evaluate panel's run: scenes [{file, question, answer, kind, index}] of eval.json
//                   from `start` on, each fetched from base + file and tiled at most maxGrid x maxGrid
//                   (0: the model's own tiling); the question + suffix is asked
//                 {type: EVAL_STOP, id}
//   input = {imageVersion, image (ArrayBuffer), question, maxGrid, method, params, budget}
// Worker -> Page: {type: STATUS, text}
//                 {type: PROGRESS, file, loaded, total, fromCache, absent, done}   (model files)
//                 {type: LOADED, backend, choice, adapter, gpu, fallbackReason, splits, revision, wasmBytes, wasmBuild, threads, info, loadMs, loadPhases, fingerprint}
//                   gpu: the WebGPU adapter (see worker.js webgpuAdapter) or null; splits: the
//                   tensors held in blocks to fit its buffers; revision: {repo, sha} of a hub model;
//                   wasmBuild: wasm-pkg.js's Build; threads: the CPU backend's thread count;
//                   fingerprint: SHA-256 (hex) of the model's files (see worker.js modelFingerprint)
//                 {type: TILING, width, height, choices}
//                 {type: ENCODE_PROGRESS, id, done, total, tileMs}   after each encoded tile
//                                 (tileMs: this encode's mean time a tile so far)
//                 {type: ENCODED, id, imageVersion, maxGrid, encoding}
//                 {type: RANKED, id, key, input (without the image), ranking}   (key: see rankingKey)
//                 {type: PREPARED, id, skipped?}   (skipped: a newer request came first)
//                 {type: COMPARED, id, key, compareKey, comparison}
//                 {type: PIECE, id, text}
//                 {type: DONE, id, stopped, timings, wasmBytes}   wasmBytes: the wasm memory's size (its peak so far)
//                 {type: EVAL_SCENE, id, scene (its place in scenes), tokens, answers, right, ms}
//                   answers[row][ratio] (rows: specs x positions), right likewise; ms: the scene's time
//                 {type: EVAL_PROGRESS, id, scene, done, total}   answers of the current scene so far
//                 {type: EVAL_DONE, id, stopped}
//                 {type: ERROR, id?, during, message}
//                 {type: FATAL, message}     (the wasm instance is dead: the page offers a reload)

export const ToWorker = Object.freeze({
  LOAD: 'load',
  TILING: 'tiling',
  PREPARE: 'prepare',
  ASK: 'ask',
  COMPARE: 'compare',
  STOP: 'stop',
  EVALUATE: 'evaluate',
  EVAL_STOP: 'eval-stop',
});

export const FromWorker = Object.freeze({
  STATUS: 'status',
  PROGRESS: 'progress',
  LOADED: 'loaded',
  TILING: 'tiling',
  ENCODE_PROGRESS: 'encode-progress',
  ENCODED: 'encoded',
  RANKED: 'ranked',
  PREPARED: 'prepared',
  COMPARED: 'compared',
  PIECE: 'piece',
  DONE: 'done',
  EVAL_SCENE: 'eval-scene',
  EVAL_PROGRESS: 'eval-progress',
  EVAL_DONE: 'eval-done',
  ERROR: 'error',
  FATAL: 'fatal',
});

// The Backend control: Auto takes WebGPU on a hardware adapter and burn's CPU backend on a software
// one (SwiftShader, a fallback adapter: the CPU backend is 100x faster there) or without WebGPU.
export const Backend = Object.freeze({ AUTO: 'auto', WEBGPU: 'webgpu', CPU: 'cpu' });

// Where a LOAD message's model comes from: a folder of this server, the hub, or the person's files.
export const SourceKind = Object.freeze({ URL: 'url', HUB: 'hub', FILES: 'files' });

// What a ranking was computed for: the Worker tags each ranking with it, the page builds it from
// its controls to tell whether the stored ranking is the current one. The question is part of it
// only for the methods that read it (the model's info.prompt_methods: prompt-aware, fastv, cdpruner).
export function rankingKey({ imageVersion, maxGrid, method, params, budget, question }, promptMethods = []) {
  const q = promptMethods.includes(method) ? question : '';
  return `${imageVersion}|${maxGrid}|${method}|${JSON.stringify(params || {})}|${budget}|${q}`;
}

// What a comparison was computed for: the ranking it was compared with, the other method, and
// the question when that method reads it.
export function compareKey(rankKey, method, question, promptMethods = []) {
  return `${rankKey}|${method}|${promptMethods.includes(method) ? question : ''}`;
}

// Tokens kept for a keep ratio: the library's prune::budget (f64 round, at least one).
export function budgetCount(n, ratio) {
  return Math.min(n, Math.max(1, Math.round(n * ratio)));
}

// The Cache API store of downloaded model files: worker.js writes it, the page lists and clears it.
// v2: hub files are kept under the commit they were downloaded at (.../resolve/<sha>/<file>), with
// a manifest per model (HUB_MANIFEST: the commit and each file's size, as the hub announced them).
export const MODEL_CACHE = 'zoo-prune-web-models-v2';
export const OLD_MODEL_CACHES = ['zoo-prune-web-models-v1'];
export const HUB_MANIFEST = 'zoo-prune-web-manifest.json';
// A model folder's files, in download order (the small ones first, each with its own progress bar).
export const MODEL_FILES = ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json', 'model.safetensors'];
// Without these a model cannot load; the other two have defaults.
export const REQUIRED_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];
