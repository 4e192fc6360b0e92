// The page thread: draws and forwards. All model work runs in worker.js.
//
// Pruning: the Worker returns a ranking (the full order in which visual tokens are kept); the
// overlay and the keep-ratio slider only read that stored order, so moving the slider never talks
// to the Worker. "Ask" sends the current method, budget mode, seed and ratio.

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
  method: $('method'),
  budget: $('budget'),
  seed: $('seed'),
  ratio: $('keep-ratio'),
  ratioNum: $('keep-ratio-num'),
  overlay: $('overlay'),
  globalView: $('global-view'),
  overlayGlobal: $('overlay-global'),
  globalCaption: $('global-caption'),
  keepLabel: $('keep-label'),
  warnings: $('rank-warnings'),
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
  imageVersion: 0, // bumped on every new image: the Worker re-encodes when it changes
  seq: 0, // id of the latest request to the Worker (prepare or ask)
  encoding: null, // {imageVersion, maxGrid, ...WebModel.encode's JSON}
  ranking: null, // {key, ...WebModel.rank's JSON}
  rankPos: null, // rankPos[token] = its place in ranking.order
  failed: false, // the latest request to the Worker failed
  posts: 0, // messages sent to the Worker (the e2e test checks the slider sends none)
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
    `${t.tiles} tile${t.tiles === 1 ? '' : 's'}, ${t.prompt_tokens} prompt tokens (${t.kept_tokens} of ${t.visual_tokens} visual` +
      `${t.method ? `, ${t.method}` : ''})`,
    `preprocess ${fmt(t.preprocess_ms, 1)} ms`,
    `encode ${fmt(t.encode_ms)} ms`,
    `rank ${fmt(t.rank_ms, 1)} ms`,
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
      fillMethods(m.info.methods || []);
      updateButtons();
      prepare();
      break;
    }
    case 'encoded':
      state.encoding = { ...m.encoding, imageVersion: m.imageVersion, maxGrid: m.maxGrid };
      state.ranking = null;
      drawOverlay();
      break;
    case 'ranked':
      state.ranking = { ...m.ranking, key: m.key, input: m.input };
      state.rankPos = new Array(m.ranking.order.length);
      m.ranking.order.forEach((t, i) => { state.rankPos[t] = i; });
      showWarnings(state.ranking);
      drawOverlay();
      break;
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
      setStatus(readyLine(), 'ready');
      updateButtons();
      // controls changed while answering: rank for them now
      if (el.overlay.dataset.state === 'stale') prepare();
      break;
    case 'error':
      // errors of superseded requests are not news
      if (m.id !== undefined && m.id !== state.seq) return;
      state.failed = true;
      showError(`Error while ${m.during}: ${m.message}`);
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
    case 'fatal':
      showError(`${m.message}`);
      restartWorker();
      break;
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

function startWorker() {
  state.ready = false;
  state.answering = false;
  state.encoding = null;
  state.ranking = null;
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
  state.imageVersion += 1;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(new Blob([bytes]));
  el.imageName.textContent = `${name} (${bytes.byteLength} bytes)`;
  el.preview.src = state.previewUrl;
  drawOverlay();
  prepare();
}

el.preview.addEventListener('error', () => {
  el.preview.classList.add('broken');
  drawOverlay();
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

// What the Worker should hold for the current controls.
function currentInput() {
  return {
    imageVersion: state.imageVersion,
    image: state.image ? state.image.slice(0) : null,
    question: el.question.value,
    maxGrid: parseInt(el.grid.value, 10) || 0,
    method: el.method.value,
    params: { seed: Math.max(0, parseInt(el.seed.value, 10) || 0) },
    budget: el.budget.value,
  };
}

// Same string as worker.js's rankingKey: tells whether the stored ranking is the current one.
function rankingKey({ imageVersion, maxGrid, method, params, budget }) {
  return `${imageVersion}|${maxGrid}|${method}|${JSON.stringify(params || {})}|${budget}`;
}

function send(msg) {
  state.posts += 1;
  document.body.dataset.workerPosts = String(state.posts);
  state.worker.postMessage(msg);
}

// Encodes / ranks in the Worker when stale, so that the overlay shows the current method.
function prepare() {
  if (!state.ready || !state.image || state.answering) return;
  state.seq += 1;
  state.failed = false;
  drawOverlay();
  send({ type: 'prepare', id: state.seq, input: currentInput() });
}

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

// Draws tokens [from, to) of the encoding: pruned ones dimmed, kept ones outlined. Returns how
// many of them are kept. Edges are snapped to device pixels so that neighbouring dimmed tokens
// leave no seams.
function drawTokens(ctx, box, from, to, k) {
  const rects = state.encoding.token_rects;
  const pos = state.rankPos;
  const dpr = window.devicePixelRatio || 1;
  const snap = (v) => Math.round(v * dpr) / dpr;
  const area = (i) => {
    const [x, y, w, h] = rects[i];
    const x0 = snap(box.x + x * box.s);
    const y0 = snap(box.y + y * box.s);
    return [x0, y0, snap(box.x + (x + w) * box.s) - x0, snap(box.y + (y + h) * box.s) - y0];
  };
  let kept = 0;
  ctx.fillStyle = 'rgba(10, 14, 20, 0.62)';
  for (let i = from; i < to; i++) {
    if (pos[i] >= k) ctx.fillRect(...area(i));
  }
  ctx.strokeStyle = '#ffc400';
  ctx.lineWidth = Math.max(1, Math.min(2, box.s * 0.75));
  const inset = ctx.lineWidth / 2;
  for (let i = from; i < to; i++) {
    if (pos[i] >= k) continue;
    kept += 1;
    const [x, y, w, h] = area(i);
    ctx.strokeRect(x + inset, y + inset, w - 2 * inset, h - 2 * inset);
  }
  return kept;
}

// Redraws the kept / pruned overlay from the stored order: no Worker call.
function drawOverlay() {
  const c = el.overlay;
  const ctx = c.getContext('2d');
  const img = el.preview;
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.max(1, Math.round(img.clientWidth * dpr));
  c.height = Math.max(1, Math.round(img.clientHeight * dpr));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, c.width, c.height);
  const enc = state.encoding;
  const rk = state.ranking;
  const usable = enc && rk && enc.imageVersion === state.imageVersion && rk.order.length === enc.visual_tokens
    && img.naturalWidth > 0 && !img.classList.contains('broken');
  const current = usable && rk.key === rankingKey(currentInput());
  c.dataset.state = !usable ? 'none' : current ? 'ranked' : 'stale';
  if (!usable) {
    delete c.dataset.kept;
    el.globalView.hidden = true;
    el.keepLabel.textContent = !state.image || !state.ready || img.classList.contains('broken') ? ''
      : state.failed ? 'no ranking: see the error' : 'ranking the visual tokens…';
    return;
  }
  const n = enc.visual_tokens;
  const r = ratio();
  const k = budgetCount(n, r);
  const keptGrid = drawTokens(ctx, contentBox(img), 0, enc.grid_tokens, k);
  // The global image (when split) covers the whole photo at a coarser grid: drawn on its own
  // thumbnail so that it does not hide the tiles' tokens.
  let keptGlobal = 0;
  if (enc.grid_tokens < n) {
    const g = el.overlayGlobal;
    const gw = 96;
    const gh = Math.max(1, Math.round((gw * img.naturalHeight) / img.naturalWidth));
    g.style.height = `${gh}px`;
    g.width = Math.round(gw * dpr);
    g.height = Math.round(gh * dpr);
    const gctx = g.getContext('2d');
    gctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    gctx.drawImage(img, 0, 0, gw, gh);
    keptGlobal = drawTokens(gctx, { x: 0, y: 0, s: gw / img.naturalWidth }, enc.grid_tokens, n, k);
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
    order: rk.order.join(','),
  });
  const split = enc.grid_tokens < n ? ` (${enc.rows}×${enc.cols} tiles + global image)` : '';
  el.keepLabel.textContent = `${rk.method}${current ? '' : ' (updating…)'}: keeping ${kept} of ${n} visual tokens` +
    ` (${(100 * kept / n).toFixed(0)} %)${split}`;
}

function setRatio(v, from) {
  const r = Math.min(1, Math.max(0.01, Number.isFinite(v) ? v : 0.25));
  if (from !== el.ratio) el.ratio.value = String(r);
  if (from !== el.ratioNum) el.ratioNum.value = String(r);
  drawOverlay();
}

el.ratio.addEventListener('input', () => setRatio(parseFloat(el.ratio.value), el.ratio));
el.ratioNum.addEventListener('input', () => {
  const v = parseFloat(el.ratioNum.value);
  if (Number.isFinite(v) && v > 0) setRatio(v, el.ratioNum);
});
el.ratioNum.addEventListener('change', () => setRatio(parseFloat(el.ratioNum.value), null));
for (const c of [el.method, el.budget, el.seed, el.grid]) c.addEventListener('change', () => { clearError(); prepare(); });
el.question.addEventListener('change', () => prepare());
el.preview.addEventListener('load', () => drawOverlay());
window.addEventListener('resize', () => drawOverlay());

function showWarnings(rk) {
  const w = (rk && rk.warnings) || [];
  el.warnings.hidden = w.length === 0;
  el.warnings.textContent = w.map((x) => `⚠ ${x}`).join('\n');
}

el.ask.addEventListener('click', () => {
  clearError();
  if (!state.image) {
    showError('Choose an image first.');
    return;
  }
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
  send({ type: 'ask', id: state.askId, input: currentInput(), ratio: ratio(), maxNewTokens });
});

el.stop.addEventListener('click', () => {
  if (state.worker) send({ type: 'stop' });
});

startWorker();
loadSample();
