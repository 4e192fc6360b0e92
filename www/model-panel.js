// The model panel and the model Workers: the active Worker, and a replacement model loading
// beside it (from the hub with a progress bar per file, from this server, or from local files)
// that takes over once loaded; the Cache API list of downloaded models; Reload after a crash.

import { el } from './elements.js';
import { ToWorker, FromWorker, SourceKind, MODEL_CACHE, OLD_MODEL_CACHES, HUB_MANIFEST, MODEL_FILES, REQUIRED_FILES } from './protocol.js';
import { state, render } from './state.js';
import { setStatus, showError, clearError, updateButtons, bytesText } from './ui.js';
import { startParams, saveUrl } from './url-state.js';

// The project's own model, trained on synthetic scenes (src/bin/train.rs).
const BUILTIN_MODEL = '../assets/builtin-model/';
const BUILTIN_LABEL = 'assets/builtin-model (built-in)';
const HUB_DEFAULT = 'https://huggingface.co/';

// What the active Worker's messages go to (session.js's onWorkerMessage, given to initModelPanel).
let onWorkerMessage = () => {};

// ?hub=/path/ (tests only) replaces the Hugging Face hub with a folder of this same server.
function hubBase() {
  const param = startParams.get('hub');
  if (!param) return HUB_DEFAULT;
  const base = new URL(param.endsWith('/') ? param : `${param}/`, location.href);
  if (base.origin !== location.origin) throw new Error(`?hub= must point to this server (${location.origin}), not ${base.origin}`);
  return base.href;
}

// ?model=relative/path/ loads another HF model folder from this same server.
export function initialSource() {
  const param = startParams.get('model');
  const base = new URL(param ? (param.endsWith('/') ? param : `${param}/`) : BUILTIN_MODEL, location.href);
  if (base.origin !== location.origin) {
    throw new Error(`the model must come from this server (${location.origin}), not ${base.origin}`);
  }
  return { kind: SourceKind.URL, base: base.href, builtin: !param, label: param || BUILTIN_LABEL };
}

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
  // ?maxbuf=N (tests only, with ?test=1) lowers the WebGPU adapter's largest buffer to N bytes
  const maxbuf = startParams.get('test') === '1' ? Number(startParams.get('maxbuf')) || undefined : undefined;
  // ?wasm=plain|simd (tests only) runs that build (plain: without SIMD, which browsers without it
  // get; simd: the one-thread SIMD build even where threads could run)
  const build = startParams.get('test') === '1' ? startParams.get('wasm') || undefined : undefined;
  // ?threads=N (tests only) sizes the threaded build's pool (default: navigator.hardwareConcurrency;
  // 0: a pool that cannot start, to check the fallback to one thread)
  const threads = startParams.get('test') === '1' && startParams.has('threads') ? Number(startParams.get('threads')) : undefined;
  // ?tiledelay=MS (tests only) makes every encoded tile take MS longer (a slow device's tiles: the
  // e2e check that a new image stops a many-tile encode after its current tile)
  const tileDelayMs = startParams.get('test') === '1' ? Number(startParams.get('tiledelay')) || 0 : 0;
  w.postMessage({ type: ToWorker.LOAD, source, backend: el.backend.value, maxTensorBytes: maxbuf, build, threads, tileDelayMs });
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
export function startWorker(source) {
  if (state.worker) state.worker.terminate();
  state.ready = false;
  state.dead = false;
  state.answering = false;
  state.encoding = null;
  state.ranking = null;
  state.source = source;
  updateButtons();
  render();
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

// The messages of the Worker loading a replacement: its progress, then the swap (or the failure).
function onLoaderMessage(m) {
  switch (m.type) {
    case FromWorker.STATUS:
      el.downloadTitle.textContent = `${state.loading.source.label}: ${m.text}`;
      break;
    case FromWorker.PROGRESS:
      showProgress(m);
      break;
    case FromWorker.LOADED: {
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
      if (source.kind === SourceKind.HUB && navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
      onWorkerMessage(m);
      listCache();
      break;
    }
    case FromWorker.ERROR:
    case FromWorker.FATAL:
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
export function showProgress(m) {
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

// What the model cache holds, under the model panel.
export async function listCache() {
  if (!('caches' in self)) {
    el.cacheInfo.textContent = 'This browser has no Cache API here: downloaded models are not kept.';
    return;
  }
  try {
    // an older layout's files (not pinned to a commit) are dropped
    for (const old of OLD_MODEL_CACHES) await caches.delete(old).catch(() => {});
    const c = await caches.open(MODEL_CACHE);
    const keys = (await c.keys()).filter((req) => !req.url.endsWith(`/${HUB_MANIFEST}`));
    const models = new Set();
    let bytes = 0;
    for (const req of keys) {
      // .../<owner>/<model>/resolve/<commit>/<file>: listed as model@commit
      const m = /\/([^/]+)\/resolve\/([0-9a-f]{7})[0-9a-f]*\//.exec(new URL(req.url).pathname);
      if (m) models.add(`${m[1]}@${m[2]}`);
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

// A model folder's files, chosen or dropped: loaded beside the current model unless one it needs is missing.
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
      `at once: ${REQUIRED_FILES.join(', ')}, and optionally ${MODEL_FILES.filter((n) => !REQUIRED_FILES.includes(n)).join(', ')}. The current model stays in use.`;
    return;
  }
  const big = files['model.safetensors'].size;
  loadReplacement({ kind: SourceKind.FILES, files, label: `local files (${bytesText(big)} of weights)` });
}

// Wires the model panel; hooks.onWorkerMessage handles the active Worker's messages.
export function initModelPanel(hooks) {
  onWorkerMessage = hooks.onWorkerMessage;
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
      loadReplacement({ kind: SourceKind.HUB, hub, name: b.dataset.name, label: `${b.dataset.name} (Hugging Face hub)` });
    });
  }
  el.builtinLoad.addEventListener('click', () => {
    loadReplacement({ kind: SourceKind.URL, base: new URL(BUILTIN_MODEL, location.href).href, builtin: true, label: BUILTIN_LABEL });
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
  // another backend: the model loads again on it beside the current one
  el.backend.addEventListener('change', () => {
    saveUrl();
    const source = state.loading ? state.loading.source : state.source;
    if (source) loadReplacement(source);
  });
  el.downloadRetry.addEventListener('click', () => {
    if (state.retry) loadReplacement(state.retry);
  });
  el.reloadModel.addEventListener('click', () => {
    el.reloadBox.hidden = true;
    clearError();
    startWorker(state.source);
  });
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
}
