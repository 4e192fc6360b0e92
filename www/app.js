// The page thread: draws and forwards. All model work runs in worker.js.

const BUILTIN_MODEL = '../tests/fixtures/tiny_tiles/';
const SAMPLE_IMAGE = '../tests/fixtures/photo.png';

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'),
  note: $('model-note'),
  preview: $('preview'),
  imageName: $('image-name'),
  file: $('image-file'),
  sample: $('sample'),
  question: $('question'),
  maxTokens: $('max-tokens'),
  grid: $('grid'),
  ask: $('ask'),
  stop: $('stop'),
  error: $('error'),
  answer: $('answer'),
  timings: $('timings'),
  info: $('info'),
};

// ?model=relative/path/ loads another HF model folder from this same server.
function modelBase() {
  const param = new URLSearchParams(location.search).get('model');
  const base = new URL(param ? (param.endsWith('/') ? param : `${param}/`) : BUILTIN_MODEL, location.href);
  if (base.origin !== location.origin) {
    throw new Error(`the model must come from this server (${location.origin}), not ${base.origin}`);
  }
  return { url: base.href, builtin: !param, label: param || 'tests/fixtures/tiny_tiles (built-in)' };
}

const state = {
  worker: null,
  ready: false,
  answering: false,
  askId: 0,
  image: null, // ArrayBuffer of the chosen file
  imageName: '',
  previewUrl: null,
  backend: '',
  adapter: null,
  model: null,
  loadMs: 0,
};

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
  el.ask.disabled = !state.ready || state.answering;
  el.stop.disabled = !state.answering;
}

function readyLine() {
  const b = state.backend === 'webgpu' ? `WebGPU${state.adapter ? ` (${state.adapter})` : ''}` : state.backend;
  return `Ready · backend: ${b} · model: ${state.model.label} · loaded in ${(state.loadMs / 1000).toFixed(1)} s`;
}

const fmt = (x, digits = 0) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));

function showTimings(t, stopped) {
  const parts = [
    `${t.tiles} tile${t.tiles === 1 ? '' : 's'}, ${t.prompt_tokens} prompt tokens (${t.visual_tokens} visual)`,
    `preprocess ${fmt(t.preprocess_ms, 1)} ms`,
    `encode ${fmt(t.encode_ms)} ms`,
    `first token ${fmt(t.first_token_ms)} ms`,
    `${t.tokens} token${t.tokens === 1 ? '' : 's'} at ${fmt(t.tokens_per_s, 1)} tok/s`,
    `total ${fmt(t.total_ms)} ms`,
  ];
  el.timings.textContent = parts.join(' · ') + (stopped ? ' · stopped' : '');
}

function onWorkerMessage(ev) {
  const m = ev.data;
  switch (m.type) {
    case 'status':
      if (!state.ready || state.answering) setStatus(m.text, state.ready ? 'answering' : 'loading');
      break;
    case 'loaded': {
      state.ready = true;
      state.backend = m.backend;
      state.adapter = m.adapter;
      state.loadMs = m.loadMs;
      let line = readyLine();
      if (m.backend !== 'webgpu' && m.fallbackReason) line += ` (CPU fallback: ${m.fallbackReason})`;
      setStatus(line, 'ready');
      el.info.textContent = JSON.stringify(m.info, null, 2);
      updateButtons();
      break;
    }
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
      setStatus(readyLine(), 'ready');
      updateButtons();
      break;
    case 'error':
      if (m.id !== undefined && m.id !== state.askId) return;
      showError(`Error while ${m.during}: ${m.message}`);
      if (!state.ready) {
        setStatus(`The model could not be loaded: ${m.message}`, 'failed');
      } else {
        state.answering = false;
        el.answer.dataset.state = el.answer.textContent ? 'done' : 'empty';
        setStatus(readyLine(), 'ready');
      }
      updateButtons();
      break;
    case 'fatal':
      showError(`${m.message}`);
      restartWorker();
      break;
    default:
      console.warn('unknown message from the worker', m);
  }
}

function startWorker() {
  state.ready = false;
  state.answering = false;
  updateButtons();
  let model;
  try {
    model = modelBase();
  } catch (e) {
    setStatus(`The model could not be loaded: ${e.message}`, 'failed');
    return;
  }
  state.model = model;
  if (model.builtin) {
    el.note.hidden = false;
    el.note.textContent =
      'The built-in model is tests/fixtures/tiny_tiles: a tiny randomly initialised test checkpoint (about 1 MB). ' +
      'Its answers are meaningless tokens; it only shows that the whole pipeline (image → tiles → vision encoder → ' +
      'language model → streamed text) runs in this browser.';
  } else {
    el.note.hidden = true;
  }
  setStatus(`Loading model ${model.label}…`, 'loading');
  const w = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  w.onmessage = onWorkerMessage;
  w.onerror = (e) => {
    e.preventDefault();
    const msg = e.message || 'the worker script failed to start (was scripts/build-web.sh run so that pkg/ exists?)';
    showError(`Worker error: ${msg}`);
    if (!state.ready) setStatus(`The model could not be loaded: ${msg}`, 'failed');
  };
  w.postMessage({ type: 'load', base: model.url, preferWebgpu: true });
  state.worker = w;
}

function restartWorker() {
  if (state.worker) state.worker.terminate();
  state.worker = null;
  startWorker();
}

function setImage(bytes, name) {
  state.image = bytes;
  state.imageName = name;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(new Blob([bytes]));
  el.imageName.textContent = `${name} (${bytes.byteLength} bytes)`;
  el.preview.src = state.previewUrl;
}

el.preview.addEventListener('error', () => {
  el.preview.classList.add('broken');
  if (state.image) el.imageName.textContent = `${state.imageName}: the browser cannot show this file as an image`;
});
el.preview.addEventListener('load', () => el.preview.classList.remove('broken'));

async function loadSample() {
  try {
    const res = await fetch(SAMPLE_IMAGE);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    setImage(await res.arrayBuffer(), 'sample: photo.png');
  } catch (e) {
    showError(`The sample image could not be fetched: ${e.message}`);
  }
}

el.file.addEventListener('change', async () => {
  const f = el.file.files && el.file.files[0];
  if (!f) return;
  clearError();
  try {
    setImage(await f.arrayBuffer(), f.name);
  } catch (e) {
    showError(`The file could not be read: ${e.message}`);
  }
});

el.sample.addEventListener('click', () => {
  clearError();
  el.file.value = '';
  loadSample();
});

el.ask.addEventListener('click', () => {
  clearError();
  if (!state.image) {
    showError('Choose an image first.');
    return;
  }
  const maxNewTokens = Math.max(1, Math.min(512, parseInt(el.maxTokens.value, 10) || 32));
  el.maxTokens.value = String(maxNewTokens);
  state.askId += 1;
  state.answering = true;
  el.answer.textContent = '';
  el.answer.dataset.state = 'answering';
  el.timings.textContent = '';
  updateButtons();
  setStatus('Sending the question…', 'answering');
  state.worker.postMessage({
    type: 'ask',
    id: state.askId,
    image: state.image.slice(0),
    question: el.question.value,
    maxGrid: parseInt(el.grid.value, 10) || 0,
    maxNewTokens,
  });
});

el.stop.addEventListener('click', () => {
  if (state.worker) state.worker.postMessage({ type: 'stop' });
});

startWorker();
loadSample();
