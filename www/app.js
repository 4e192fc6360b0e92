// The page thread: draws and forwards. All model work runs in worker.js.
//
// Pruning: the Worker returns a ranking (the full order in which visual tokens are kept, each
// token's score and the greedy picks); the overlay, the keep-ratio slider and classroom mode only
// read that stored ranking, so moving the slider never talks to the Worker. "Ask" sends the
// current method, parameters, budget mode, seed and ratio.

// The project's own model, trained on synthetic scenes (src/bin/train.rs), and held-out scenes
// for it (written by `evaluate --samples`: PNGs + scenes.json with each scene's question and answer).
const BUILTIN_MODEL = '../assets/builtin-model/';
const BUILTIN_LABEL = 'assets/builtin-model (built-in)';
const SCENES_DIR = '../assets/scenes/';
const HUB_DEFAULT = 'https://huggingface.co/HuggingFaceTB/';
const MODEL_CACHE = 'zoo-prune-web-models-v1'; // worker.js writes it, the page lists and clears it
// The largest side an image keeps: bigger ones are downscaled while decoding (createImageBitmap).
const MAX_SIDE = 2048;
const SAMPLES = [
  { url: '../tests/fixtures/photo.png', name: 'photo.png', label: 'cat (tiny, 96×64)', question: 'What colour is the cat?' },
  { url: '../assets/samples/astronaut.jpg', name: 'astronaut.jpg', label: 'astronaut', question: 'What is the person wearing?' },
  { url: '../assets/samples/coffee.jpg', name: 'coffee.jpg', label: 'coffee', question: 'What is in the cup?' },
  { url: '../assets/samples/chelsea.jpg', name: 'chelsea.jpg', label: 'cat', question: 'What colour is the cat?' },
  { url: '../assets/samples/rocket.jpg', name: 'rocket.jpg', label: 'rocket', question: 'What is happening in this photo?' },
];
const SWEEP = [1, 0.5, 0.25, 0.1];
// Controls mirrored in the URL (history.replaceState), read once on load.
const URL_KEYS = ['method', 'keep', 'grid', 'q', 'budget', 'seed', 'overlay'];

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'),
  note: $('model-note'),
  preview: $('preview'),
  encodeProgressBox: $('encode-progress-box'),
  encodeProgress: $('encode-progress'),
  encodeProgressText: $('encode-progress-text'),
  imageName: $('image-name'),
  file: $('image-file'),
  dropZone: $('drop-zone'),
  samples: $('samples'),
  scenes: $('scenes'),
  scenesTitle: $('scenes-title'),
  question: $('question'),
  maxTokens: $('max-tokens'),
  grid: $('grid'),
  tilingNote: $('tiling-note'),
  ask: $('ask'),
  stop: $('stop'),
  sweep: $('sweep'),
  error: $('error'),
  answer: $('answer'),
  timings: $('timings'),
  info: $('info'),
  method: $('method'),
  budget: $('budget'),
  seed: $('seed'),
  params: $('method-params'),
  paramsBody: $('method-params-body'),
  paramsLegend: $('method-params-legend'),
  paramsReset: $('params-reset'),
  ratio: $('keep-ratio'),
  ratioNum: $('keep-ratio-num'),
  overlay: $('overlay'),
  overlayMode: $('overlay-mode'),
  orderNumbers: $('order-numbers'),
  legend: $('overlay-legend'),
  exportPng: $('export-png'),
  globalView: $('global-view'),
  overlayGlobal: $('overlay-global'),
  globalCaption: $('global-caption'),
  keepLabel: $('keep-label'),
  warnings: $('rank-warnings'),
  classReset: $('class-reset'),
  classNext: $('class-next'),
  classPlay: $('class-play'),
  classOff: $('class-off'),
  classStep: $('class-step'),
  compareRows: $('compare-rows'),
  clearTable: $('clear-table'),
  modelPanel: $('model-panel'),
  modelSummary: $('model-summary'),
  modelDrop: $('model-drop'),
  modelFiles: $('model-files'),
  builtinLoad: $('builtin-load'),
  clearCache: $('clear-cache'),
  cacheInfo: $('cache-info'),
  download: $('download'),
  downloadTitle: $('download-title'),
  downloadFiles: $('download-files'),
  downloadRetry: $('download-retry'),
  downloadCancel: $('download-cancel'),
  reloadBox: $('reload-box'),
  reloadText: $('reload-text'),
  reloadModel: $('reload-model'),
};

const params0 = new URLSearchParams(location.search);

// ?hub=/path/ (tests only) replaces the Hugging Face hub with a folder of this same server.
function hubBase() {
  const param = params0.get('hub');
  if (!param) return HUB_DEFAULT;
  const base = new URL(param.endsWith('/') ? param : `${param}/`, location.href);
  if (base.origin !== location.origin) throw new Error(`?hub= must point to this server (${location.origin}), not ${base.origin}`);
  return base.href;
}

// ?model=relative/path/ loads another HF model folder from this same server.
function initialSource() {
  const param = params0.get('model');
  const base = new URL(param ? (param.endsWith('/') ? param : `${param}/`) : BUILTIN_MODEL, location.href);
  if (base.origin !== location.origin) {
    throw new Error(`the model must come from this server (${location.origin}), not ${base.origin}`);
  }
  return { kind: 'url', base: base.href, builtin: !param, label: param || BUILTIN_LABEL };
}

const state = {
  worker: null,
  source: null, // what the active worker loaded (for "Reload model")
  loading: null, // {worker, source}: a replacement model loading beside the active one
  ready: false,
  dead: false, // the active worker's wasm instance crashed
  answering: false,
  askId: 0,
  image: null, // ArrayBuffer of the chosen file (downscaled when it was huge)
  imageName: '',
  imageVersion: 0, // bumped on every new image: the Worker re-encodes when it changes
  imageSize: null, // {width, height} of what the Worker gets
  seq: 0, // id of the latest request to the Worker (prepare or ask)
  encoding: null, // {imageVersion, maxGrid, ...WebModel.encode's JSON}
  ranking: null, // {key, ...WebModel.rank's JSON}
  rankPos: null, // rankPos[token] = its place in ranking.order
  scoreRange: null, // [min, max] of the ranking's finite scores, or null
  failed: false, // the latest request to the Worker failed
  posts: 0, // messages sent to the Worker (the e2e test checks the slider sends none)
  encodes: 0, // images the Worker encoded (the e2e test checks that skipped images are not)
  ranks: 0, // rankings the Worker computed (the e2e test checks that superseded ones are skipped)
  previewUrl: null,
  backend: '',
  adapter: null,
  info: null,
  loadMs: 0,
  tiling: null, // {width, height, choices} from the Worker
  paramValues: {}, // method -> {param: string value typed by the person}
  classStep: null, // classroom mode: picks shown (null: off)
  classTimer: null,
  sweep: null, // ratios still to ask
  rows: 0,
  lastAsk: null, // {ratio, question} of the answer in progress
  intake: 0, // bumped for every image given: an older one still being read is dropped
  checker: null, // the image-check Worker (image-worker.js), started on the first image
  checks: new Map(), // id -> resolve of a pending image check
  checkId: 0, // id of the latest image check
};

// Encoding runs tile by tile in the Worker; each finished tile moves the bar.
function showEncodeProgress(done, total) {
  el.encodeProgressBox.hidden = done >= total;
  el.encodeProgress.max = total;
  el.encodeProgress.value = done;
  el.encodeProgressText.textContent = `encoding the image: tile ${done} of ${total}`;
  // what the latest encoding reported (the e2e test reads it)
  const p = state.encodeProgress && state.encodeProgress.open ? state.encodeProgress : { calls: 0, open: true };
  Object.assign(p, { done, total, calls: p.calls + 1 });
  state.encodeProgress = p;
}

function setStatus(text, kind) {
  el.status.textContent = text;
  if (kind) el.status.dataset.state = kind;
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = '';
}

function updateButtons() {
  const can = state.ready && !state.answering && !state.dead;
  el.ask.disabled = !can;
  el.sweep.disabled = !can;
  el.stop.disabled = !state.answering;
}

const bytesText = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} B`);

function readyLine() {
  const b = state.backend === 'webgpu' ? `WebGPU${state.adapter ? ` (${state.adapter})` : ''}` : state.backend;
  const size = state.info ? ` (${(state.info.params / 1e6).toFixed(state.info.params < 1e7 ? 2 : 0)} M parameters, ${bytesText(state.info.safetensors_bytes)})` : '';
  return `Ready · backend: ${b} · model: ${state.source.label}${size} · loaded in ${(state.loadMs / 1000).toFixed(1)} s`;
}

const fmt = (x, digits = 0) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));

function showTimings(t, stopped) {
  const parts = [
    `${t.tiles} tile${t.tiles === 1 ? '' : 's'}, ${t.prompt_tokens} prompt tokens (${t.kept_tokens} of ${t.visual_tokens} visual` +
      `${t.method ? `, ${t.method}` : ''})`,
    `preprocess ${fmt(t.preprocess_ms, 1)} ms`,
    `encode ${fmt(t.encode_ms)} ms`,
    `rank ${fmt(t.rank_ms, 1)} ms`,
    `first token ${fmt(t.first_token_ms)} ms`,
    `${t.tokens} token${t.tokens === 1 ? '' : 's'} at ${fmt(t.tokens_per_s, 1)} tok/s`,
    `KV cache ${t.kv_cache_bytes ? bytesText(t.kv_cache_bytes) : '–'}`,
    `total ${fmt(t.total_ms)} ms`,
  ];
  el.timings.textContent = parts.join(' · ') + (stopped ? ' · stopped' : '');
}

// What a failure message says about the device: a lost GPU, or memory running out.
function failureKind(text) {
  if (/GPUDevice\.lost|device[^.]{0,40}\blost\b|\blost[^.]{0,20}device|DeviceLost/i.test(text)) return 'device-lost';
  if (/out of memory|OutOfMemory|memory allocation of \d+ bytes failed|capacity overflow|Out ?of ?Memory/i.test(text)) return 'oom';
  return 'crash';
}

function explainFailure(kind, message) {
  if (kind === 'device-lost') {
    return `The GPU device was lost (${message}). This happens when the GPU driver resets, the GPU is needed elsewhere or the tab ` +
      'was in the background for long. The comparison table is kept; reload the model to go on.';
  }
  if (kind === 'oom') {
    return `Out of memory (${message}). The model, the image's tiles or the answer did not fit in this browser's memory. ` +
      'Reload the model, then choose fewer tiles, a lower keep ratio or a smaller model.';
  }
  return `The model code crashed (${message}). The comparison table is kept; reload the model to go on.`;
}

function onWorkerMessage(m) {
  switch (m.type) {
    case 'status':
      if (!state.ready || state.answering) setStatus(m.text, state.ready ? 'answering' : 'loading');
      break;
    case 'progress':
      showProgress(m);
      break;
    case 'loaded': {
      state.ready = true;
      state.dead = false;
      state.backend = m.backend;
      state.adapter = m.adapter;
      state.loadMs = m.loadMs;
      state.info = m.info;
      state.encoding = null;
      state.ranking = null;
      state.tiling = null;
      el.reloadBox.hidden = true;
      let line = readyLine();
      if (m.backend !== 'webgpu' && m.fallbackReason) line += ` (CPU fallback: ${m.fallbackReason})`;
      setStatus(line, 'ready');
      el.modelSummary.textContent = state.source.label;
      el.info.textContent = JSON.stringify(m.info, null, 2);
      fillMethods(m.info.methods || []);
      buildParams();
      updateButtons();
      requestTiling();
      prepare();
      break;
    }
    case 'tiling':
      if (m.width !== state.imageSize?.width || m.height !== state.imageSize?.height) return;
      state.tiling = m;
      showTiling();
      break;
    case 'encode-progress':
      if (m.id === state.seq) showEncodeProgress(m.done, m.total);
      break;
    case 'encoded':
      state.encodes += 1;
      document.body.dataset.encodes = String(state.encodes);
      el.encodeProgressBox.hidden = true;
      if (state.encodeProgress) state.encodeProgress.open = false;
      state.encoding = { ...m.encoding, imageVersion: m.imageVersion, maxGrid: m.maxGrid };
      state.ranking = null;
      showTiling();
      drawOverlay();
      break;
    case 'ranked': {
      state.ranks += 1;
      document.body.dataset.ranks = String(state.ranks);
      state.ranking = { ...m.ranking, key: m.key, input: m.input };
      state.rankPos = new Array(m.ranking.order.length);
      m.ranking.order.forEach((t, i) => { state.rankPos[t] = i; });
      const finite = m.ranking.scores.filter((v) => v !== null && Number.isFinite(v));
      state.scoreRange = finite.length ? [Math.min(...finite), Math.max(...finite)] : null;
      if (state.classStep !== null) state.classStep = Math.min(state.classStep, m.ranking.order.length);
      showWarnings(state.ranking);
      drawOverlay();
      break;
    }
    case 'prepared':
      drawOverlay();
      break;
    case 'piece':
      if (m.id !== state.askId) return;
      el.answer.dataset.state = 'answering';
      el.answer.textContent += m.text;
      break;
    case 'done':
      if (m.id !== state.askId) return;
      state.answering = false;
      // #answer holds exactly the streamed text; an empty answer is described by CSS, not added to it.
      el.answer.dataset.state = m.stopped ? 'stopped' : el.answer.textContent ? 'done' : 'done-empty';
      showTimings(m.timings, m.stopped);
      addRow(m.timings, el.answer.textContent, m.stopped);
      setStatus(readyLine(), 'ready');
      updateButtons();
      if (m.stopped) state.sweep = null;
      if (state.sweep && state.sweep.length) {
        askNow(state.sweep.shift());
      } else {
        state.sweep = null;
        // controls changed while answering: rank for them now
        if (el.overlay.dataset.state === 'stale') prepare();
      }
      break;
    case 'error': {
      // errors of superseded requests are not news
      if (m.id !== undefined && m.id !== state.seq) return;
      el.encodeProgressBox.hidden = true;
      state.failed = true;
      state.sweep = null;
      const kind = failureKind(m.message);
      showError(kind === 'oom' ? `Error while ${m.during}: ${explainFailure('oom', m.message)}` : `Error while ${m.during}: ${m.message}`);
      if (kind === 'device-lost' || /poisoned/i.test(m.message)) {
        // cubecl's errors on a lost (poisoned) device: nothing works on it any more
        el.reloadText.textContent = explainFailure('device-lost', m.message);
        el.reloadBox.dataset.kind = 'device-lost';
        el.reloadBox.hidden = false;
      }
      drawOverlay();
      if (!state.ready) {
        setStatus(`The model could not be loaded: ${m.message}`, 'failed');
      } else if (m.id === state.askId) {
        state.answering = false;
        el.answer.dataset.state = el.answer.textContent ? 'done' : 'empty';
        setStatus(readyLine(), 'ready');
      }
      updateButtons();
      break;
    }
    case 'fatal': {
      // the wasm instance is dead: say why, keep everything on screen, offer a reload
      el.encodeProgressBox.hidden = true;
      const kind = failureKind(m.message);
      if (state.worker) state.worker.terminate();
      state.worker = null;
      state.dead = true;
      state.ready = false;
      state.answering = false;
      state.sweep = null;
      stopPlay();
      el.reloadText.textContent = explainFailure(kind, m.message);
      el.reloadBox.dataset.kind = kind;
      el.reloadBox.hidden = false;
      el.reloadBox.scrollIntoView({ block: 'nearest' });
      if (el.answer.dataset.state === 'answering') el.answer.dataset.state = el.answer.textContent ? 'stopped' : 'empty';
      setStatus({ 'device-lost': 'The GPU device was lost: reload the model.', oom: 'Out of memory: reload the model.' }[kind]
        || 'The model stopped: reload it.', 'failed');
      updateButtons();
      break;
    }
    default:
      console.warn('unknown message from the worker', m);
  }
}

function fillMethods(names) {
  const want = el.method.value || 'zoo';
  el.method.textContent = '';
  for (const n of names) {
    const o = document.createElement('option');
    o.value = n;
    o.textContent = n;
    el.method.append(o);
  }
  el.method.value = names.includes(want) ? want : names[0];
}

// ---- workers: the active one, and a replacement model loading beside it

function newWorker(source) {
  const w = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  w.onmessage = (ev) => {
    if (w === state.worker) onWorkerMessage(ev.data);
    else if (state.loading && w === state.loading.worker) onLoaderMessage(ev.data);
  };
  w.onerror = (e) => {
    e.preventDefault();
    const msg = e.message || 'the worker script failed to start (was scripts/build-web.sh run so that pkg/ exists?)';
    if (state.loading && w === state.loading.worker) {
      downloadFailed(msg);
      return;
    }
    showError(`Worker error: ${msg}`);
    if (!state.ready) setStatus(`The model could not be loaded: ${msg}`, 'failed');
  };
  w.postMessage({ type: 'load', source, preferWebgpu: true });
  return w;
}

function showModelNote(source) {
  el.note.hidden = !source.builtin;
  el.note.textContent = source.builtin
    ? 'The built-in model is this project\'s own small SmolVLM-architecture model (1.2 M parameters, 5 MB), trained ' +
      'here on synthetic scenes of coloured shapes. It answers one-word questions about such scenes: pick one under ' +
      '"Scenes" (colour, shape, how many, is there, left or right, small or large, and what is next to what). ' +
      'Prune the tokens of the object a question is about and its answer goes wrong. On photos its answers are ' +
      'meaningless: load SmolVLM from the Model panel for those.'
    : '';
}

// Starts `source` as the active model (first load, or after a crash).
function startWorker(source) {
  if (state.worker) state.worker.terminate();
  state.ready = false;
  state.dead = false;
  state.answering = false;
  state.encoding = null;
  state.ranking = null;
  state.source = source;
  updateButtons();
  drawOverlay();
  showModelNote(source);
  setStatus(`Loading model ${source.label}…`, 'loading');
  state.worker = newWorker(source);
}

// Loads `source` in a new Worker while the current model stays usable; swaps when it is loaded.
function loadReplacement(source) {
  if (state.dead || !state.worker) {
    showDownload(source);
    el.downloadCancel.hidden = true; // it becomes the active model: nothing to fall back to
    startWorker(source);
    return;
  }
  if (state.loading) state.loading.worker.terminate();
  showDownload(source);
  state.loading = { source, worker: null };
  state.loading.worker = newWorker(source);
}

function onLoaderMessage(m) {
  switch (m.type) {
    case 'status':
      el.downloadTitle.textContent = `${state.loading.source.label}: ${m.text}`;
      break;
    case 'progress':
      showProgress(m);
      break;
    case 'loaded': {
      const { worker, source } = state.loading;
      state.loading = null;
      if (state.worker) state.worker.terminate();
      state.worker = worker;
      state.source = source;
      if (state.answering) el.answer.dataset.state = el.answer.textContent ? 'stopped' : 'empty';
      state.answering = false;
      state.sweep = null;
      showModelNote(source);
      el.downloadTitle.textContent = `${source.label}: loaded.`;
      el.download.dataset.state = 'done';
      el.downloadCancel.hidden = true;
      // ask the browser not to evict the downloaded weights under storage pressure (it may refuse)
      if (source.kind === 'hub' && navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
      onWorkerMessage(m);
      listCache();
      break;
    }
    case 'error':
    case 'fatal':
      downloadFailed(m.message);
      break;
    default:
      break;
  }
}

function downloadFailed(message) {
  const label = state.loading ? state.loading.source.label : 'the model';
  if (state.loading) state.loading.worker.terminate();
  el.downloadTitle.textContent = `${label} could not be loaded: ${message}. ` +
    `${state.ready ? 'The current model stays in use. ' : ''}Retry downloads only the files that are not cached yet.`;
  el.download.dataset.state = 'failed';
  el.downloadRetry.hidden = false;
  el.downloadCancel.hidden = true;
  state.retry = state.loading ? state.loading.source : null;
  state.loading = null;
  listCache();
}

function showDownload(source) {
  el.download.hidden = false;
  el.download.dataset.state = 'loading';
  el.downloadRetry.hidden = true;
  el.downloadCancel.hidden = false;
  el.downloadFiles.textContent = '';
  el.downloadTitle.textContent = `${source.label}: starting…`;
  el.modelPanel.open = true;
}

// {file, loaded, total, fromCache, absent}: one progress bar per file
function showProgress(m) {
  let li = el.downloadFiles.querySelector(`li[data-file="${CSS.escape(m.file)}"]`);
  if (!li) {
    li = document.createElement('li');
    li.dataset.file = m.file;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = m.file;
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute('aria-label', `${m.file} download`);
    const text = document.createElement('span');
    text.className = 'bytes';
    li.append(name, bar, text);
    el.downloadFiles.append(li);
  }
  const bar = li.querySelector('progress');
  const text = li.querySelector('.bytes');
  li.dataset.loaded = String(m.loaded);
  li.dataset.total = String(m.total || 0);
  li.dataset.from = m.absent ? 'absent' : m.fromCache ? 'cache' : 'network';
  if (m.absent) {
    bar.value = 1;
    text.textContent = 'not on the server (optional)';
  } else if (m.total) {
    bar.value = Math.min(1, m.loaded / m.total);
    text.textContent = `${bytesText(m.loaded)} of ${bytesText(m.total)}${m.fromCache ? ' (from the browser cache)' : ''}`;
  } else {
    bar.removeAttribute('value'); // size unknown: indeterminate
    text.textContent = `${bytesText(m.loaded)}`;
  }
  if (m.done) {
    bar.value = 1;
    li.dataset.done = '1';
  }
}

async function listCache() {
  if (!('caches' in self)) {
    el.cacheInfo.textContent = 'This browser has no Cache API here: downloaded models are not kept.';
    return;
  }
  try {
    const c = await caches.open(MODEL_CACHE);
    const keys = await c.keys();
    const models = new Set();
    let bytes = 0;
    for (const req of keys) {
      const m = /\/([^/]+)\/resolve\/main\//.exec(new URL(req.url).pathname);
      if (m) models.add(m[1]);
      const res = await c.match(req);
      bytes += Number(res && res.headers.get('content-length')) || 0;
    }
    let quota = '';
    try {
      const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : null;
      if (est && est.quota) quota = ` This browser lets this page store up to ${bytesText(est.quota)}.`;
    } catch (e) {
      // no estimate: say nothing about the quota
    }
    el.cacheInfo.textContent = (keys.length
      ? `Cached in this browser: ${[...models].join(', ') || `${keys.length} files`} (${bytesText(bytes)}).`
      : 'No models cached in this browser.') + quota;
    el.cacheInfo.dataset.files = String(keys.length);
  } catch (e) {
    el.cacheInfo.textContent = `The model cache cannot be read: ${e.message}`;
  }
}

el.clearCache.addEventListener('click', async () => {
  try {
    await caches.delete(MODEL_CACHE);
  } catch (e) {
    el.cacheInfo.textContent = `The model cache could not be cleared: ${e.message}`;
    return;
  }
  await listCache();
});

for (const b of document.querySelectorAll('.hub-load')) {
  b.addEventListener('click', () => {
    let hub;
    try {
      hub = hubBase();
    } catch (e) {
      showError(e.message);
      return;
    }
    loadReplacement({ kind: 'hub', hub, name: b.dataset.name, label: `${b.dataset.name} (Hugging Face hub)` });
  });
}
el.builtinLoad.addEventListener('click', () => {
  loadReplacement({ kind: 'url', base: new URL(BUILTIN_MODEL, location.href).href, builtin: true, label: BUILTIN_LABEL });
});
// Cancel: the loading Worker is ended; files already complete stay cached, a partial one is not kept.
el.downloadCancel.addEventListener('click', () => {
  if (!state.loading) return;
  const { worker, source } = state.loading;
  worker.terminate();
  state.loading = null;
  state.retry = source;
  el.download.dataset.state = 'cancelled';
  el.downloadCancel.hidden = true;
  el.downloadRetry.hidden = false;
  el.downloadTitle.textContent = `${source.label}: cancelled.${state.ready ? ' The current model stays in use.' : ''} ` +
    'Files already complete stay in the cache; Retry goes on from there.';
  listCache();
});
el.downloadRetry.addEventListener('click', () => {
  if (state.retry) loadReplacement(state.retry);
});
el.reloadModel.addEventListener('click', () => {
  el.reloadBox.hidden = true;
  clearError();
  startWorker(state.source);
});

const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json'];
const REQUIRED_FILES = MODEL_FILES.slice(0, 3);

function loadLocalFiles(fileList) {
  const files = {};
  for (const f of fileList) if (MODEL_FILES.includes(f.name)) files[f.name] = f;
  const missing = REQUIRED_FILES.filter((n) => !files[n]);
  if (missing.length) {
    const got = [...fileList].map((f) => f.name).join(', ') || 'nothing';
    el.download.hidden = false;
    el.download.dataset.state = 'failed';
    el.downloadRetry.hidden = true;
    el.downloadFiles.textContent = '';
    el.downloadTitle.textContent = `Not loaded: ${missing.join(', ')} missing (got ${got}). Choose all of a model folder's files ` +
      `at once: ${REQUIRED_FILES.join(', ')}, and optionally ${MODEL_FILES.slice(3).join(', ')}. The current model stays in use.`;
    return;
  }
  const big = files['model.safetensors'].size;
  loadReplacement({ kind: 'files', files, label: `local files (${bytesText(big)} of weights)` });
}
el.modelFiles.addEventListener('change', () => {
  if (el.modelFiles.files && el.modelFiles.files.length) loadLocalFiles(el.modelFiles.files);
  el.modelFiles.value = '';
});
el.modelDrop.addEventListener('dragover', (e) => { e.preventDefault(); el.modelDrop.classList.add('dragging'); });
el.modelDrop.addEventListener('dragleave', () => el.modelDrop.classList.remove('dragging'));
el.modelDrop.addEventListener('drop', (e) => {
  e.preventDefault();
  el.modelDrop.classList.remove('dragging');
  if (e.dataTransfer && e.dataTransfer.files.length) loadLocalFiles(e.dataTransfer.files);
});

// ---- images: file picker, drop, paste, samples

function isPngOrJpeg(bytes) {
  const b = new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength));
  return (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff);
}

// The EXIF orientation of a JPEG (1 = upright; 2..8 = mirrored / turned), read from its APP1 block.
// Browsers show such photos upright, but the model's decoder reads the stored pixels as they are.
function jpegOrientation(bytes) {
  try {
    const v = new DataView(bytes);
    if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return 1;
    let off = 2;
    while (off + 4 <= v.byteLength) {
      const marker = v.getUint16(off);
      if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) return 1; // image data: no EXIF before it
      const len = v.getUint16(off + 2);
      if (marker === 0xffe1 && v.getUint32(off + 4) === 0x45786966) { // "Exif"
        const tiff = off + 10;
        const little = v.getUint16(tiff) === 0x4949;
        const ifd = tiff + v.getUint32(tiff + 4, little);
        const n = v.getUint16(ifd, little);
        for (let i = 0; i < n; i++) {
          const e = ifd + 2 + i * 12;
          if (v.getUint16(e, little) === 0x0112) return v.getUint16(e + 8, little);
        }
        return 1;
      }
      off += 2 + len;
    }
  } catch (e) {
    // a truncated header: treat as upright
  }
  return 1;
}

// The image's size from its header (no full decode), or null when the browser cannot read it.
function probeSize(blob) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve({ width: img.naturalWidth, height: img.naturalHeight }); };
    img.onerror = () => { URL.revokeObjectURL(url); resolve(null); };
    img.src = url;
  });
}

// The model's own decoder on `bytes`, in image-worker.js: {ok: true, width, height},
// {ok: false, message} (it cannot read them), or {ok: null} (no check could be made).
function checkImage(bytes) {
  if (!state.checker) {
    state.checker = new Worker(new URL('image-worker.js', import.meta.url), { type: 'module' });
    const checker = state.checker;
    const settleAll = (r) => { for (const resolve of state.checks.values()) resolve(r); state.checks.clear(); };
    checker.onmessage = ({ data }) => {
      const resolve = state.checks.get(data.id);
      state.checks.delete(data.id);
      if (resolve) resolve(data);
      if (data.dead && state.checker === checker) {
        // its wasm instance crashed: the next image starts a new Worker; nothing waits on this one
        state.checker = null;
        checker.terminate();
        settleAll({ ok: null, message: data.message });
      }
    };
    checker.onerror = (e) => {
      e.preventDefault();
      if (state.checker === checker) state.checker = null;
      checker.terminate();
      settleAll({ ok: null, message: `the image check failed: ${e.message}` });
    };
  }
  const id = ++state.checkId;
  return new Promise((resolve) => {
    state.checks.set(id, resolve);
    const copy = bytes.slice(0);
    state.checker.postMessage({ id, image: copy }, [copy]);
  });
}

// Reads an image the person gave: checks that the browser can decode it, downscales it while
// decoding when its longest side is over MAX_SIDE, re-encodes it as PNG when it is neither PNG
// nor JPEG (the model's decoder reads those two), and has the model's decoder read it. An image
// that fails any of these changes nothing: the previous image, its overlay and ranking stay. When
// images come faster than they are read, only the last one given is taken.
async function takeImage(blob, name) {
  clearError();
  const intake = ++state.intake;
  const superseded = () => intake !== state.intake;
  document.body.dataset.intakeBusy = '1';
  try {
    return await readImage(blob, name, superseded);
  } finally {
    if (!superseded()) delete document.body.dataset.intakeBusy;
  }
}

async function readImage(blob, name, superseded) {
  const size = await probeSize(blob);
  if (superseded()) return false;
  let bytes = await blob.arrayBuffer();
  if (!size || !size.width || !size.height) {
    // the model's decoder tells the one cause the browser does not: an image too large to decode
    const c = await checkImage(bytes);
    if (superseded()) return false;
    const tooLarge = c.ok === false && /too large/.test(c.message);
    showError(`${name}: ${tooLarge ? c.message : 'the browser cannot read this file as an image (use PNG, JPEG or WebP)'}. The previous image is kept.`);
    return false;
  }
  let note = '';
  const long = Math.max(size.width, size.height);
  const turned = jpegOrientation(bytes) > 1;
  if (long > MAX_SIDE || !isPngOrJpeg(bytes) || turned) {
    const s = Math.min(1, MAX_SIDE / long);
    const w = Math.max(1, Math.round(size.width * s));
    const h = Math.max(1, Math.round(size.height * s));
    try {
      // resizeWidth/Height lets the decoder produce the small image directly
      const bmp = await createImageBitmap(blob, s < 1 ? { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' } : {});
      const c = document.createElement('canvas');
      c.width = bmp.width;
      c.height = bmp.height;
      c.getContext('2d').drawImage(bmp, 0, 0);
      bmp.close();
      const out = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
      if (!out) throw new Error('the browser could not re-encode it');
      bytes = await out.arrayBuffer();
      note = s < 1 ? `, downscaled from ${size.width}×${size.height} to ${w}×${h} before decoding it fully` : ', converted to PNG';
      if (turned) note += ', turned upright as its EXIF orientation says';
    } catch (e) {
      if (superseded()) return false;
      showError(`${name}: the image could not be decoded (${e.message}). The previous image is kept.`);
      return false;
    }
    if (superseded()) return false;
  }
  const c = await checkImage(bytes);
  if (superseded()) return false;
  if (c.ok === false) {
    showError(`${name}: the browser shows this file, but the model's decoder cannot read it (${c.message}). The previous image is kept.`);
    return false;
  }
  setImage(bytes, name, note);
  return true;
}

function setImage(bytes, name, note = '') {
  stopPlay();
  state.truth = null; // a scene's true answer belongs to that scene only (loadSample sets it again)
  state.image = bytes;
  state.imageName = name;
  state.imageVersion += 1;
  state.imageSize = null;
  state.tiling = null;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(new Blob([bytes]));
  el.imageName.textContent = `${name} (${bytes.byteLength} bytes${note})`;
  el.preview.src = state.previewUrl;
  showTiling();
  drawOverlay();
  prepare();
}

el.preview.addEventListener('error', () => {
  el.preview.classList.add('broken');
  drawOverlay();
  if (state.image) el.imageName.textContent = `${state.imageName}: the browser cannot show this file as an image`;
});
el.preview.addEventListener('load', () => {
  el.preview.classList.remove('broken');
  state.imageSize = { width: el.preview.naturalWidth, height: el.preview.naturalHeight };
  requestTiling();
  drawOverlay();
});

const sameQuestion = (a, b) => a.trim().toLowerCase().replace(/\s+/g, ' ') === b.trim().toLowerCase().replace(/\s+/g, ' ');

async function loadSample(s) {
  try {
    const res = await fetch(s.url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    if (await takeImage(await res.blob(), `sample: ${s.name}`)) state.truth = s.answer ? s : null;
  } catch (e) {
    showError(`The sample image ${s.name} could not be fetched: ${e.message}`);
  }
}

// A sample's question replaces the question box unless the person wrote one of their own.
function isSampleQuestion(q) {
  return !q.trim() || SAMPLES.some((x) => x.question === q) || SCENES.some((x) => sameQuestion(x.question, q));
}

// One button of a sample row: a thumbnail and a caption; a click brings the image and its question.
function sampleButton(s, { cls, key, title }) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.dataset[key] = s.name;
  b.title = title;
  const img = document.createElement('img');
  img.src = s.url;
  img.alt = '';
  const cap = document.createElement('span');
  cap.textContent = s.label;
  b.append(img, cap);
  b.addEventListener('click', () => {
    el.file.value = '';
    if (isSampleQuestion(el.question.value)) {
      el.question.value = s.question;
      onQuestionChange();
    }
    loadSample(s);
  });
  return b;
}

function buildSamples() {
  for (const s of SAMPLES) {
    el.samples.append(sampleButton(s, { cls: 'sample', key: 'sample', title: `${s.label}: ${s.question}` }));
  }
}

// Held-out scenes for the built-in model: one per question kind, each with its question and the
// generator's answer (shown in the comparison table's "true answer" column).
let SCENES = [];
async function buildScenes() {
  try {
    const res = await fetch(`${SCENES_DIR}scenes.json`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    SCENES = (await res.json()).map((x) => ({
      url: `${SCENES_DIR}${x.file}`, name: x.file, label: x.kind.replace(/_/g, ' '), question: x.question, answer: x.answer,
    }));
  } catch (e) {
    el.scenesTitle.textContent = `Scenes for the built-in model could not be loaded (${e.message}).`;
    return;
  }
  for (const s of SCENES) {
    el.scenes.append(sampleButton(s, { cls: 'sample scene', key: 'scene', title: `${s.question} (answer: ${s.answer})` }));
  }
}

el.file.addEventListener('change', async () => {
  const f = el.file.files && el.file.files[0];
  if (!f) return;
  await takeImage(f, f.name);
});


// the picture is focusable: Enter or Space there opens the file picker
el.dropZone.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    el.file.click();
  }
});
el.dropZone.addEventListener('dragover', (e) => {
  e.preventDefault();
  el.dropZone.classList.add('dragging');
});
el.dropZone.addEventListener('dragleave', () => el.dropZone.classList.remove('dragging'));
el.dropZone.addEventListener('drop', (e) => {
  e.preventDefault();
  el.dropZone.classList.remove('dragging');
  const f = e.dataTransfer && [...e.dataTransfer.files][0];
  if (!f) {
    showError('Nothing to read in what was dropped: drop an image file. The previous image is kept.');
    return;
  }
  takeImage(f, f.name);
});
document.addEventListener('paste', (e) => {
  const items = e.clipboardData ? [...e.clipboardData.items] : [];
  // an image first; any other file is tried too (and refused with a message when it is no image)
  const item = items.find((i) => i.kind === 'file' && i.type.startsWith('image/')) || items.find((i) => i.kind === 'file');
  if (!item) return; // text pasted into the question stays text
  e.preventDefault();
  const f = item.getAsFile();
  takeImage(f, f.name && f.name !== 'image.png' ? f.name : 'pasted image');
});

// ---- the Worker's input

function methodParams() {
  const out = { seed: Math.max(0, parseInt(el.seed.value, 10) || 0) };
  const vals = state.paramValues[el.method.value] || {};
  for (const [k, v] of Object.entries(vals)) {
    if (v === '' || v === null || v === undefined) continue;
    const spec = paramSpec(el.method.value, k);
    out[k] = spec && spec.kind === 'select' ? v : Number(v);
  }
  return out;
}

// The current controls (what a ranking is for), without the image's bytes.
function controls() {
  return {
    imageVersion: state.imageVersion,
    question: el.question.value,
    maxGrid: parseInt(el.grid.value, 10) || 0,
    method: el.method.value,
    params: methodParams(),
    budget: el.budget.value,
  };
}

// What the Worker should hold for the current controls: a copy of the image travels with them.
function currentInput() {
  return { ...controls(), image: state.image ? state.image.slice(0) : null };
}

// Same string as worker.js's rankingKey: tells whether the stored ranking is the current one. The
// question is part of it for the methods that read it (info.prompt_methods: prompt-aware, fastv).
function rankingKey({ imageVersion, maxGrid, method, params, budget, question }) {
  const q = (state.info?.prompt_methods || []).includes(method) ? question : '';
  return `${imageVersion}|${maxGrid}|${method}|${JSON.stringify(params || {})}|${budget}|${q}`;
}

function send(msg) {
  state.posts += 1;
  document.body.dataset.workerPosts = String(state.posts);
  state.worker.postMessage(msg);
}

// Encodes / ranks in the Worker when stale, so that the overlay shows the current method.
function prepare() {
  if (!state.ready || !state.image || state.answering || !state.worker) return;
  state.seq += 1;
  state.failed = false;
  drawOverlay();
  send({ type: 'prepare', id: state.seq, input: currentInput() });
}

function requestTiling() {
  if (!state.ready || !state.imageSize || !state.worker) return;
  send({ type: 'tiling', ...state.imageSize });
}

// Each tiling choice with the grid and visual tokens it gives this image (from the Worker).
function showTiling() {
  const t = state.tiling;
  const info = state.info;
  for (const o of el.grid.options) {
    const base = o.dataset.base || (o.dataset.base = o.textContent);
    const c = t && t.choices.find((x) => String(x.max_grid) === o.value);
    if (!c) {
      o.textContent = base;
      delete o.dataset.tokens;
      continue;
    }
    const grid = c.rows * c.cols > 0 ? `${c.rows}×${c.cols} tiles + global` : '1 tile';
    o.textContent = `${base}: ${grid}, ${c.visual_tokens} tokens`;
    o.dataset.tokens = String(c.visual_tokens);
  }
  el.tilingNote.textContent = info
    ? `Each ${info.image_size} px tile gives ${info.tokens_per_tile} visual tokens (${info.image_size} / ${info.patch_size} px patches,` +
      ` ${info.scale_factor}×${info.scale_factor} pixel shuffle); a split image adds the whole image as one more tile.`
    : '';
}

// ---- method parameters

const PARAM_HELP = {
  m: 'number of random directions',
  h: 'finite-difference step',
  fusion: 'how sensitivity and diversity combine',
  proxy: 'the map whose sensitivity is measured',
  core_share: 'share of each budget picked by relevance',
  layer: 'layer whose attention is read',
  deep_layer: 'LLM layer of the random drop (empty: 2/3 of the depth)',
  deep_keep: 'share kept at that layer',
};

function paramSpec(method, key) {
  const info = state.info;
  if (!info) return null;
  const text = info.text_layers;
  const vision = info.vision_layers;
  switch (key) {
    case 'm': return { kind: 'number', min: 1, step: 1, max: 4096 };
    case 'h': return { kind: 'number', min: 1e-6, step: 'any' };
    case 'fusion': return { kind: 'select', options: info.fusions };
    case 'proxy': return { kind: 'select', options: info.proxies };
    case 'core_share': case 'deep_keep': return { kind: 'number', min: 0, max: 1, step: 0.05 };
    case 'layer': return { kind: 'number', min: 0, max: (method === 'visionzip' ? vision : text) - 1, step: 1 };
    case 'deep_layer': return { kind: 'number', min: 0, max: text - 1, step: 1, optional: true };
    default: return null;
  }
}

function buildParams() {
  const method = el.method.value;
  const defaults = (state.info && state.info.method_defaults && state.info.method_defaults[method]) || {};
  const ORDER = ['m', 'h', 'fusion', 'proxy', 'core_share', 'layer', 'deep_layer', 'deep_keep'];
  const keys = ORDER.filter((k) => k in defaults && paramSpec(method, k));
  el.paramsBody.textContent = '';
  el.params.hidden = keys.length === 0;
  el.paramsLegend.textContent = `${method} parameters`;
  const vals = state.paramValues[method] || (state.paramValues[method] = {});
  for (const k of keys) {
    const spec = paramSpec(method, k);
    const label = document.createElement('label');
    label.title = PARAM_HELP[k] || k;
    label.append(`${k} `);
    let input;
    if (spec.kind === 'select') {
      input = document.createElement('select');
      for (const o of spec.options) {
        const opt = document.createElement('option');
        opt.value = o;
        opt.textContent = o;
        input.append(opt);
      }
      input.value = vals[k] ?? String(defaults[k]);
    } else {
      input = document.createElement('input');
      input.type = 'number';
      for (const a of ['min', 'max', 'step']) if (spec[a] !== undefined) input[a] = String(spec[a]);
      input.value = vals[k] ?? (defaults[k] === null ? '' : String(defaults[k]));
      if (spec.optional) input.placeholder = 'default';
    }
    input.id = `param-${k}`;
    input.dataset.param = k;
    input.setAttribute('aria-describedby', 'method-params-legend');
    input.addEventListener('change', () => {
      if (input.validity && input.validity.badInput) {
        showError(`${method} parameter ${k}: "${input.value}" is not a number. The previous ranking stays on screen.`);
        return;
      }
      clearError();
      vals[k] = input.value;
      prepare();
      saveUrl();
    });
    const help = document.createElement('small');
    help.textContent = PARAM_HELP[k] || '';
    label.append(input, help);
    el.paramsBody.append(label);
  }
}

el.paramsReset.addEventListener('click', () => {
  state.paramValues[el.method.value] = {};
  buildParams();
  clearError();
  prepare();
  saveUrl();
});

// ---- the overlay

function ratio() {
  const r = parseFloat(el.ratio.value);
  return Number.isFinite(r) ? Math.min(1, Math.max(0.01, r)) : 0.25;
}

// Tokens kept for a keep ratio: the library's prune::budget (f64 round, at least one).
function budgetCount(n, r) {
  return Math.min(n, Math.max(1, Math.round(n * r)));
}

// The area the <img> really shows its picture in (object-fit: contain), in CSS pixels.
function contentBox(img) {
  const W = img.clientWidth;
  const H = img.clientHeight;
  const s = Math.min(W / img.naturalWidth, H / img.naturalHeight);
  const w = img.naturalWidth * s;
  const h = img.naturalHeight * s;
  return { x: (W - w) / 2, y: (H - h) / 2, s };
}

// Colour ramp for the heatmap and the pick order: t in [0, 1], dark blue -> teal -> yellow.
function ramp(t, alpha) {
  const stops = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, j) => Math.round(v + f * (stops[i + 1][j] - v)));
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha})`;
}

// Draws tokens [from, to) of the encoding: in "kept" mode pruned ones dimmed, kept ones outlined;
// "heatmap" colours every token by its score, "order" by its place in the ranking. Returns how
// many of them are kept. Edges are snapped to device pixels so that neighbouring dimmed tokens
// leave no seams. `view` = {enc, rk, pos, k, mode, numbers, highlight, scoreRange}.
function drawTokens(ctx, box, from, to, view) {
  const { enc, pos, k, mode } = view;
  const rects = enc.token_rects;
  const dpr = view.dpr || window.devicePixelRatio || 1;
  const snap = (v) => Math.round(v * dpr) / dpr;
  const area = (i) => {
    const [x, y, w, h] = rects[i];
    const x0 = snap(box.x + x * box.s);
    const y0 = snap(box.y + y * box.s);
    return [x0, y0, snap(box.x + (x + w) * box.s) - x0, snap(box.y + (y + h) * box.s) - y0];
  };
  let kept = 0;
  const n = pos.length;
  if (mode === 'heatmap' && view.scoreRange) {
    const [lo, hi] = view.scoreRange;
    const scores = view.rk.scores;
    for (let i = from; i < to; i++) {
      const s = scores[i];
      ctx.fillStyle = s === null ? 'rgba(128,128,128,0.5)' : ramp(hi > lo ? (s - lo) / (hi - lo) : 1, 0.6);
      ctx.fillRect(...area(i));
    }
  } else if (mode === 'order') {
    for (let i = from; i < to; i++) {
      ctx.fillStyle = ramp(1 - pos[i] / Math.max(1, n - 1), pos[i] < k ? 0.55 : 0.8);
      ctx.fillRect(...area(i));
    }
  } else {
    ctx.fillStyle = 'rgba(10, 14, 20, 0.62)';
    for (let i = from; i < to; i++) {
      if (pos[i] >= k) ctx.fillRect(...area(i));
    }
  }
  ctx.strokeStyle = mode === 'kept' ? '#ffc400' : '#ffffff';
  ctx.lineWidth = Math.max(1, Math.min(2, box.s * 0.75));
  const inset = ctx.lineWidth / 2;
  for (let i = from; i < to; i++) {
    if (pos[i] >= k) continue;
    kept += 1;
    const [x, y, w, h] = area(i);
    ctx.strokeRect(x + inset, y + inset, w - 2 * inset, h - 2 * inset);
  }
  if (view.numbers) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let i = from; i < to; i++) {
      const [x, y, w, h] = area(i);
      const size = Math.min(w, h) * 0.45;
      if (size < 6) continue;
      ctx.font = `600 ${Math.min(16, size)}px system-ui, sans-serif`;
      ctx.lineWidth = 3;
      ctx.strokeStyle = 'rgba(0,0,0,0.7)';
      ctx.strokeText(String(pos[i] + 1), x + w / 2, y + h / 2);
      ctx.fillStyle = '#fff';
      ctx.fillText(String(pos[i] + 1), x + w / 2, y + h / 2);
    }
  }
  if (view.highlight !== null && view.highlight >= from && view.highlight < to) {
    const [x, y, w, h] = area(view.highlight);
    ctx.lineWidth = 3;
    ctx.strokeStyle = '#ff2d55';
    ctx.strokeRect(x + 1.5, y + 1.5, w - 3, h - 3);
  }
  return kept;
}

// The legend under the overlay: text, optionally a colour bar of the ramp between two labels.
function setLegend(before, bar, after = '') {
  el.legend.textContent = '';
  if (!bar) {
    el.legend.append(before);
    return;
  }
  const b = document.createElement('span');
  b.className = `ramp ${bar}`;
  b.setAttribute('aria-hidden', 'true');
  el.legend.append(before, b, after);
}

function overlayMode() {
  const m = el.overlayMode.value;
  if (m === 'heatmap' && !state.scoreRange) return 'kept';
  return m;
}

// Redraws the overlay from the stored ranking: no Worker call.
function drawOverlay() {
  const c = el.overlay;
  const ctx = c.getContext('2d');
  const img = el.preview;
  const dpr = window.devicePixelRatio || 1;
  // a canvas is only resized when its size changes (resizing reallocates it)
  const cw = Math.max(1, Math.round(img.clientWidth * dpr));
  const ch = Math.max(1, Math.round(img.clientHeight * dpr));
  if (c.width !== cw) c.width = cw;
  if (c.height !== ch) c.height = ch;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const enc = state.encoding;
  const rk = state.ranking;
  const usable = enc && rk && enc.imageVersion === state.imageVersion && rk.order.length === enc.visual_tokens
    && img.naturalWidth > 0 && !img.classList.contains('broken');
  const current = usable && rk.key === rankingKey(controls());
  c.dataset.state = !usable ? 'none' : current ? 'ranked' : 'stale';
  if (!usable) {
    delete c.dataset.kept;
    el.globalView.hidden = true;
    el.legend.textContent = '';
    el.keepLabel.textContent = !state.image || !state.ready || img.classList.contains('broken') ? ''
      : state.failed ? 'no ranking: see the error' : 'ranking the visual tokens…';
    showClassStep();
    return;
  }
  const n = enc.visual_tokens;
  const r = ratio();
  const classroom = state.classStep !== null;
  const k = classroom ? Math.min(state.classStep, n) : budgetCount(n, r);
  const mode = overlayMode();
  const view = {
    enc, rk, pos: state.rankPos, k, mode,
    numbers: el.orderNumbers.checked,
    highlight: classroom && state.classStep > 0 ? rk.order[state.classStep - 1] : null,
    scoreRange: state.scoreRange,
  };
  const keptGrid = drawTokens(ctx, contentBox(img), 0, enc.grid_tokens, view);
  // The global image (when split) covers the whole photo at a coarser grid: drawn on its own
  // thumbnail so that it does not hide the tiles' tokens.
  let keptGlobal = 0;
  if (enc.grid_tokens < n) {
    const g = el.overlayGlobal;
    const gw = 128;
    const gh = Math.max(1, Math.round((gw * img.naturalHeight) / img.naturalWidth));
    g.style.width = `${gw}px`;
    g.style.height = `${gh}px`;
    if (g.width !== Math.round(gw * dpr)) g.width = Math.round(gw * dpr);
    if (g.height !== Math.round(gh * dpr)) g.height = Math.round(gh * dpr);
    const gctx = g.getContext('2d');
    gctx.setTransform(1, 0, 0, 1, 0, 0);
    gctx.clearRect(0, 0, g.width, g.height);
    gctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    gctx.drawImage(img, 0, 0, gw, gh);
    keptGlobal = drawTokens(gctx, { x: 0, y: 0, s: gw / img.naturalWidth }, enc.grid_tokens, n, { ...view, numbers: false });
    el.globalCaption.textContent = `global image: ${keptGlobal} of ${n - enc.grid_tokens} coarse tokens kept`;
    el.globalView.hidden = false;
  } else {
    el.globalView.hidden = true;
  }
  const kept = keptGrid + keptGlobal;
  Object.assign(c.dataset, {
    kept: String(kept),
    total: String(n),
    ratio: String(r),
    method: rk.method,
    budget: rk.budget,
    seed: String(rk.input.params.seed),
    mode,
  });
  // the order (for tests and tools) is written once per ranking, not on every slider move
  if (c.dataset.orderOf !== rk.key || state.orderShown !== rk) {
    c.dataset.order = rk.order.join(',');
    c.dataset.orderOf = rk.key;
    state.orderShown = rk;
  }
  const split = enc.grid_tokens < n ? ` (${enc.rows}×${enc.cols} tiles + global image)` : '';
  const why = current ? '' : state.failed ? ' (not updated: see the error)' : ' (updating…)';
  el.keepLabel.textContent = `${rk.method}${why}: keeping ${kept} of ${n} visual tokens` +
    ` (${(100 * kept / n).toFixed(0)} %)${split}${classroom ? ' · classroom' : ''}`;
  if (mode === 'heatmap') {
    const [lo, hi] = state.scoreRange;
    setLegend(`${lo.toPrecision(3)} `, 'up', ` ${hi.toPrecision(3)}: ${rk.method}'s per-token score (dark = lowest, yellow = highest); kept tokens outlined.`);
  } else if (mode === 'order') {
    setLegend('first ', 'down', ` last: pick order (yellow = picked first, dark = last); kept tokens outlined${el.orderNumbers.checked ? ', numbers = place in the ranking' : ''}.`);
  } else {
    setLegend(el.overlayMode.value === 'heatmap'
      ? `${rk.method} gives no per-token score (its order comes from the selection alone): showing kept / pruned.`
      : 'Kept tokens outlined, pruned tokens dimmed.');
  }
  showClassStep();
}

function setRatio(v, from) {
  const r = Math.min(1, Math.max(0.01, Number.isFinite(v) ? v : 0.25));
  if (from !== el.ratio) el.ratio.value = String(r);
  if (from !== el.ratioNum) el.ratioNum.value = String(r);
  drawOverlay();
  saveUrl();
}

el.ratio.addEventListener('input', () => setRatio(parseFloat(el.ratio.value), el.ratio));
el.ratioNum.addEventListener('input', () => {
  const v = parseFloat(el.ratioNum.value);
  if (Number.isFinite(v) && v > 0) setRatio(v, el.ratioNum);
});
el.ratioNum.addEventListener('change', () => setRatio(parseFloat(el.ratioNum.value), null));
el.method.addEventListener('change', () => { clearError(); buildParams(); prepare(); saveUrl(); });
for (const c of [el.budget, el.seed, el.grid]) c.addEventListener('change', () => { clearError(); prepare(); saveUrl(); });
function onQuestionChange() { prepare(); saveUrl(); }
el.question.addEventListener('change', onQuestionChange);
// while typing, a question-dependent ranking is shown as stale (ranked again on change)
el.question.addEventListener('input', () => drawOverlay());
el.overlayMode.addEventListener('change', () => { drawOverlay(); saveUrl(); });
el.orderNumbers.addEventListener('change', () => drawOverlay());
window.addEventListener('resize', () => drawOverlay());

function showWarnings(rk) {
  const w = (rk && rk.warnings) || [];
  el.warnings.hidden = w.length === 0;
  el.warnings.textContent = w.map((x) => `⚠ ${x}`).join('\n');
}

// ---- classroom mode: the greedy selection one pick at a time

const num3 = (v) => (v === null || v === undefined ? 'n/a' : Number(v).toPrecision(3));

function showClassStep() {
  const on = state.classStep !== null;
  el.classOff.hidden = !on;
  el.classPlay.textContent = state.classTimer ? 'Pause' : 'Play';
  el.classStep.dataset.step = on ? String(state.classStep) : '';
  if (!on) {
    el.classStep.textContent = 'Step through the ranking of the current method: each pick shows its score and its distance to the tokens kept before it.';
    return;
  }
  const rk = state.ranking;
  const enc = state.encoding;
  if (!rk || !enc) {
    el.classStep.textContent = 'Waiting for a ranking…';
    return;
  }
  const n = rk.order.length;
  const s = state.classStep;
  if (s === 0) {
    el.classStep.textContent = `0 of ${n} picked. Next adds the token ${rk.method} picks first.`;
    return;
  }
  const st = rk.steps[s - 1];
  const t = st.token;
  const per = enc.tokens_per_tile;
  const tile = Math.floor(t / per);
  const where = enc.rows * enc.cols > 0 && tile >= enc.rows * enc.cols ? 'the global image' : `tile ${tile + 1}`;
  const scope = rk.budget === 'per-tile' ? ' (within its tile: the per-tile budget ranks each tile on its own)' : '';
  el.classStep.dataset.token = String(t);
  el.classStep.dataset.score = String(st.score);
  el.classStep.dataset.distance = String(st.distance);
  el.classStep.textContent = `Pick ${s} of ${n}: token ${t} (${where}) · score ${num3(st.score)} · weight ${num3(st.weight)}` +
    ` · distance to the kept set ${num3(st.distance)}${s === 1 ? ' (first pick)' : ''}${scope}`;
}

function classStart() {
  if (state.classStep === null) state.classStep = 0;
}
function stopPlay() {
  if (state.classTimer) clearInterval(state.classTimer);
  state.classTimer = null;
}
function classNext() {
  classStart();
  const n = state.ranking ? state.ranking.order.length : 0;
  if (state.classStep < n) state.classStep += 1;
  if (state.classStep >= n) stopPlay();
  drawOverlay();
}
el.classNext.addEventListener('click', () => { stopPlay(); classNext(); });
el.classReset.addEventListener('click', () => { stopPlay(); state.classStep = 0; drawOverlay(); });
el.classPlay.addEventListener('click', () => {
  if (state.classTimer) {
    stopPlay();
  } else {
    classStart();
    if (state.ranking && state.classStep >= state.ranking.order.length) state.classStep = 0;
    state.classTimer = setInterval(classNext, 350);
  }
  drawOverlay();
});
el.classOff.addEventListener('click', () => { stopPlay(); state.classStep = null; drawOverlay(); });

// ---- export

// The overlay over the photo at the photo's own size (at most 2048 px), as a PNG.
function overlayPng() {
  const img = el.preview;
  if (!state.ranking || !state.encoding || el.overlay.dataset.state === 'none') return null;
  const s = Math.min(1, 2048 / Math.max(img.naturalWidth, img.naturalHeight));
  const c = document.createElement('canvas');
  c.width = Math.round(img.naturalWidth * s);
  c.height = Math.round(img.naturalHeight * s);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0, c.width, c.height);
  drawOnto(ctx, s, state.encoding.grid_tokens);
  return c;
}

// Draws the current view's grid tokens onto a context whose scale is s canvas px per image px.
function drawOnto(ctx, s, to, k) {
  const enc = state.encoding;
  const n = enc.visual_tokens;
  const kk = k ?? (state.classStep !== null ? Math.min(state.classStep, n) : budgetCount(n, ratio()));
  // a plain canvas: one canvas pixel per device pixel
  drawTokens(ctx, { x: 0, y: 0, s }, 0, to, {
    enc, rk: state.ranking, pos: state.rankPos, k: kk, mode: k === undefined ? overlayMode() : 'kept',
    numbers: k === undefined && el.orderNumbers.checked, highlight: null, scoreRange: state.scoreRange, dpr: 1,
  });
}

el.exportPng.addEventListener('click', (e) => {
  const c = overlayPng();
  if (!c) {
    e.preventDefault();
    showError('Nothing to export yet: the overlay appears once the image is ranked.');
    return;
  }
  el.exportPng.href = c.toDataURL('image/png');
  el.exportPng.download = `overlay-${state.ranking.method}-${el.overlay.dataset.kept}of${state.encoding.visual_tokens}.png`;
});

// ---- comparison table

function thumbnail(k) {
  const img = el.preview;
  if (!state.encoding || !state.ranking || !img.naturalWidth) return null;
  const w = 112;
  const s = w / img.naturalWidth;
  const c = document.createElement('canvas');
  c.width = w;
  c.height = Math.max(1, Math.round(img.naturalHeight * s));
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0, c.width, c.height);
  drawOnto(ctx, s, state.encoding.grid_tokens, k);
  return c.toDataURL('image/png');
}

function addRow(t, answer, stopped) {
  state.rows += 1;
  const tr = document.createElement('tr');
  const cell = (text, cls) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
    return td;
  };
  cell(String(state.rows));
  const tdImg = cell('');
  const src = thumbnail(t.kept_tokens);
  if (src) {
    const im = document.createElement('img');
    im.src = src;
    im.alt = `overlay of the ${t.kept_tokens} kept tokens`;
    tdImg.append(im);
  }
  const method = t.method ? `${t.method} (${state.ranking ? state.ranking.budget : ''})` : 'none';
  cell(method);
  cell(`${t.kept_tokens} / ${t.visual_tokens}`, 'num');
  cell(t.first_token_ms === null ? '–' : `${fmt(t.first_token_ms)} ms`, 'num');
  cell(fmt(t.tokens_per_s, 1), 'num');
  cell(t.kv_cache_bytes ? bytesText(t.kv_cache_bytes) : '–', 'num');
  cell(`${answer}${stopped ? ' [stopped]' : ''}`, 'answer-cell');
  // a held-out scene asked its own question: the generator's answer, and whether this one matches
  const truth = state.truth && sameQuestion(state.truth.question, state.lastQuestion || '') ? state.truth.answer : null;
  const right = truth !== null && answer.trim().toLowerCase() === truth;
  const tdTruth = cell(truth === null ? '–' : `${truth} ${right ? '✓' : '✗'}`, truth === null ? '' : right ? 'right' : 'wrong');
  if (truth !== null) tdTruth.dataset.right = String(right);
  tr.dataset.kept = String(t.kept_tokens);
  tr.dataset.method = t.method || '';
  // what else decided this row, on hover: the question, the image, the parameters
  const rk = state.ranking;
  tr.title = `${state.lastQuestion || ''} · ${state.imageName} · ${t.tiles} tiles` +
    `${rk ? ` · ${JSON.stringify(rk.params)}` : ''}`;
  el.compareRows.append(tr);
}

el.clearTable.addEventListener('click', () => {
  el.compareRows.textContent = '';
  state.rows = 0;
});

// ---- asking

function askNow(r) {
  clearError();
  if (!state.image) {
    showError('Choose an image first.');
    state.sweep = null;
    return;
  }
  if (r !== undefined) setRatio(r, null);
  stopPlay();
  state.classStep = null;
  const maxNewTokens = Math.max(1, Math.min(512, parseInt(el.maxTokens.value, 10) || 32));
  el.maxTokens.value = String(maxNewTokens);
  state.seq += 1;
  state.askId = state.seq;
  state.failed = false;
  state.answering = true;
  el.answer.textContent = '';
  el.answer.dataset.state = 'answering';
  el.timings.textContent = '';
  updateButtons();
  setStatus('Sending the question…', 'answering');
  drawOverlay();
  state.lastQuestion = el.question.value;
  send({ type: 'ask', id: state.askId, input: currentInput(), ratio: ratio(), maxNewTokens });
}

el.ask.addEventListener('click', () => { state.sweep = null; askNow(); });
el.sweep.addEventListener('click', () => {
  state.sweep = SWEEP.slice(1);
  askNow(SWEEP[0]);
});

el.stop.addEventListener('click', () => {
  state.sweep = null;
  if (state.worker) send({ type: 'stop' });
});

// ---- URL state

function saveUrl() {
  const p = new URLSearchParams(location.search);
  const vals = {
    method: el.method.value, keep: el.ratio.value, grid: el.grid.value, q: el.question.value,
    budget: el.budget.value, seed: el.seed.value, overlay: el.overlayMode.value,
  };
  for (const k of URL_KEYS) p.set(k, vals[k]);
  // the method's parameters the person changed (as typed), e.g. params={"m":"8"}
  const changed = Object.fromEntries(Object.entries(state.paramValues[el.method.value] || {}).filter(([, v]) => v !== ''));
  if (Object.keys(changed).length) p.set('params', JSON.stringify(changed));
  else p.delete('params');
  history.replaceState(null, '', `${location.pathname}?${p}`);
}

function readUrl() {
  const p = params0;
  const setSelect = (sel, v) => {
    if (v !== null && [...sel.options].some((o) => o.value === v)) sel.value = v;
  };
  if (p.get('method')) {
    // the real list arrives with the model; keep the wish as the selected option until then
    const o = document.createElement('option');
    o.value = p.get('method');
    o.textContent = p.get('method');
    el.method.textContent = '';
    el.method.append(o);
  }
  const keep = parseFloat(p.get('keep'));
  if (Number.isFinite(keep) && keep > 0) {
    const r = Math.min(1, Math.max(0.01, keep));
    el.ratio.value = String(r);
    el.ratioNum.value = String(r);
  }
  setSelect(el.grid, p.get('grid'));
  setSelect(el.budget, p.get('budget'));
  setSelect(el.overlayMode, p.get('overlay'));
  if (p.get('q') !== null) el.question.value = p.get('q');
  const seed = parseInt(p.get('seed'), 10);
  if (Number.isFinite(seed) && seed >= 0) el.seed.value = String(seed);
  if (p.get('params') && p.get('method')) {
    try {
      const v = JSON.parse(p.get('params'));
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        state.paramValues[p.get('method')] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
      }
    } catch (e) {
      showError(`The link's method parameters are not valid JSON (${e.message}); the defaults are used.`);
    }
  }
}

// ---- test hooks (the e2e suite): read state, feed a synthetic layout, simulate a worker message

window.__zpw = {
  state,
  drawOverlay,
  // A synthetic encoding + ranking over the current image: the overlay only reads rects and order.
  setSynthetic(encoding, ranking) {
    state.encoding = { ...encoding, imageVersion: state.imageVersion, maxGrid: parseInt(el.grid.value, 10) || 0 };
    const input = controls();
    state.ranking = { ...ranking, key: rankingKey(input), input };
    state.rankPos = new Array(ranking.order.length);
    ranking.order.forEach((t, i) => { state.rankPos[t] = i; });
    const finite = ranking.scores.filter((v) => v !== null && Number.isFinite(v));
    state.scoreRange = finite.length ? [Math.min(...finite), Math.max(...finite)] : null;
    drawOverlay();
  },
  workerMessage: (m) => onWorkerMessage(m),
  prepare,
};

readUrl();
buildSamples();
listCache();
let first = null;
try {
  first = initialSource();
  startWorker(first);
} catch (e) {
  setStatus(`The model could not be loaded: ${e.message}`, 'failed');
}
// the built-in model starts on a held-out scene with its question; another model on the photo
buildScenes().then(() => {
  const scene = first && first.builtin && SCENES[0];
  if (scene && isSampleQuestion(el.question.value)) {
    el.question.value = scene.question;
    onQuestionChange();
  }
  loadSample(scene || SAMPLES[0]);
});
