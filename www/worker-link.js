// The active model Worker's side of the page: what is sent to it (prepare, tiling, ask, stop)
// and what its messages do. Pruning: the Worker returns a ranking (the full order in which visual
// tokens are kept, each token's score and the greedy picks); the overlay, the keep-ratio slider and
// classroom mode only read that stored ranking, so moving the slider never talks to the Worker.
// "Ask" sends the current method, parameters, budget mode, seed and ratio.

import { el } from './elements.js';
import { ToWorker, FromWorker, compareKey } from './protocol.js';
import { state, render, setRanking } from './state.js';
import { setStatus, showError, clearError, updateButtons, readyLine, bytesText, fmt, secondsText } from './ui.js';
import { currentInput, fillMethods, buildParams, showTiling, ratio, setRatio } from './controls.js';
import { showWarnings } from './overlay.js';
import { addRow } from './table.js';
import { saveUrl } from './url-state.js';
import { stopPlay } from './classroom.js';
import { showProgress } from './model-panel.js';
import { onEvalMessage, evalModelLoaded } from './evaluate-panel.js';

// The keep ratios of "Ask at 100 / 50 / 25 / 10 %", asked one after another.
const SWEEP = [1, 0.5, 0.25, 0.1];

// Encoding runs tile by tile in the Worker; each finished tile moves the bar.
function showEncodeProgress(done, total, tileMs) {
  el.encodeProgressBox.hidden = done >= total;
  el.encodeProgress.max = total;
  el.encodeProgress.value = done;
  const left = tileMs > 0 && done < total ? ` · about ${secondsText(tileMs * (total - done))} left` : '';
  el.encodeProgressText.textContent = `encoding the image: tile ${done} of ${total}${left}`;
  // what the latest encoding reported (the e2e test reads it)
  const p = state.encodeProgress && state.encodeProgress.open ? state.encodeProgress : { calls: 0, open: true };
  Object.assign(p, { done, total, calls: p.calls + 1 });
  state.encodeProgress = p;
}

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
    `wasm memory ${bytesText(state.wasmBytes)}`,
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

export function onWorkerMessage(m) {
  switch (m.type) {
    case FromWorker.STATUS:
      if (!state.ready || state.answering) setStatus(m.text, state.ready ? 'answering' : 'loading');
      break;
    case FromWorker.PROGRESS:
      showProgress(m);
      break;
    case FromWorker.LOADED: {
      state.ready = true;
      state.tileMs = null; // a new model: its own time a tile
      state.dead = false;
      state.backend = m.backend;
      state.adapter = m.adapter;
      state.loadMs = m.loadMs;
      state.loadPhases = m.loadPhases;
      state.wasmBytes = m.wasmBytes || 0;
      state.info = m.info;
      state.encoding = null;
      state.ranking = null;
      state.tiling = null;
      el.reloadBox.hidden = true;
      let line = readyLine();
      if (m.backend !== 'webgpu' && m.fallbackReason) {
        line += ` (on the CPU${m.threads > 1 ? `, ${m.threads} threads` : ', one thread'}: ${m.fallbackReason})`;
      }
      if (m.revision) line += ` · hub commit ${m.revision.sha.slice(0, 7)}`;
      if (m.splits && m.splits.length) line += ` (split to fit this GPU's buffers: ${m.splits.map((x) => `${x.name} in ${x.blocks}`).join(', ')})`;
      setStatus(line, 'ready');
      el.status.dataset.backend = m.backend;
      el.status.dataset.wasmBuild = m.wasmBuild;
      el.status.dataset.threads = String(m.threads);
      el.modelSummary.textContent = `${state.source.label} · ${m.backend === 'webgpu' ? 'WebGPU' : 'CPU'}`;
      // Model details: the model, and the device it runs on
      el.info.textContent = JSON.stringify({
        ...m.info,
        backend_choice: m.choice,
        webgpu_adapter: m.gpu,
        split_tensors: m.splits,
        hub_revision: m.revision,
        wasm_memory_after_load_bytes: m.wasmBytes,
        wasm_build: m.wasmBuild,
        cpu_threads: m.threads,
      }, null, 2);
      fillMethods(m.info.methods || []);
      buildParams();
      updateButtons();
      requestTiling();
      prepare();
      evalModelLoaded(m);
      break;
    }
    case FromWorker.TILING:
      if (m.width !== state.imageSize?.width || m.height !== state.imageSize?.height) return;
      state.tiling = m;
      showTiling();
      break;
    case FromWorker.ENCODE_PROGRESS: {
      // the time a tile takes on this device: the encode's own estimate and the Tiling choices'
      const first = !state.tileMs;
      if (m.tileMs > 0) state.tileMs = m.tileMs;
      if (first && state.tileMs) showTiling();
      if (m.id === state.seq) showEncodeProgress(m.done, m.total, m.tileMs);
      break;
    }
    case FromWorker.ENCODED:
      state.encodes += 1;
      document.body.dataset.encodes = String(state.encodes);
      el.encodeProgressBox.hidden = true;
      if (state.encodeProgress) state.encodeProgress.open = false;
      state.encoding = { ...m.encoding, imageVersion: m.imageVersion, maxGrid: m.maxGrid };
      state.ranking = null;
      showTiling();
      render();
      break;
    case FromWorker.RANKED: {
      state.ranks += 1;
      document.body.dataset.ranks = String(state.ranks);
      setRanking(m.ranking, m.key, m.input);
      if (state.classStep !== null) state.classStep = Math.min(state.classStep, m.ranking.order.length);
      showWarnings(state.ranking);
      requestCompare();
      render();
      break;
    }
    case FromWorker.COMPARED:
      if (state.ranking && m.key === state.ranking.key && m.id === state.compareId) {
        state.comparison = { ...m.comparison, key: m.compareKey };
        render();
      }
      break;
    case FromWorker.PREPARED:
      render();
      break;
    case FromWorker.PIECE:
      if (m.id !== state.askId) return;
      el.answer.dataset.state = 'answering';
      el.answer.textContent += m.text;
      break;
    case FromWorker.DONE:
      if (m.id !== state.askId) return;
      if (!m.timings) {
        // its encode was stopped for a newer model: nothing was answered
        state.answering = false;
        el.answer.dataset.state = 'stopped';
        setStatus(readyLine(), 'ready');
        updateButtons();
        return;
      }
      state.answering = false;
      // #answer holds exactly the streamed text; an empty answer is described by CSS, not added to it.
      el.answer.dataset.state = m.stopped ? 'stopped' : el.answer.textContent ? 'done' : 'done-empty';
      state.timings = m.timings;
      if (m.wasmBytes) state.wasmBytes = m.wasmBytes;
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
    case FromWorker.EVAL_SCENE:
    case FromWorker.EVAL_PROGRESS:
    case FromWorker.EVAL_DONE:
      onEvalMessage(m);
      break;
    case FromWorker.ERROR: {
      // the Evaluate panel's run says its own errors
      if (m.during === 'evaluating') { onEvalMessage(m); return; }
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
      render();
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
    case FromWorker.FATAL: {
      // the wasm instance is dead: say why, keep everything on screen, offer a reload
      el.encodeProgressBox.hidden = true;
      onEvalMessage({ type: FromWorker.ERROR, message: 'the model stopped' });
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

// Every message to the active Worker goes through here (the e2e suite counts them).
export function send(msg) {
  state.posts += 1;
  document.body.dataset.workerPosts = String(state.posts);
  state.worker.postMessage(msg);
}

// Encodes / ranks in the Worker when stale, so that the overlay shows the current method.
export function prepare() {
  if (!state.ready || !state.image || state.answering || !state.worker) return;
  state.seq += 1;
  state.failed = false;
  render();
  send({ type: ToWorker.PREPARE, id: state.seq, input: currentInput() });
}

export function requestTiling() {
  if (!state.ready || !state.imageSize || !state.worker) return;
  send({ type: ToWorker.TILING, ...state.imageSize });
}

// Asks the question at keep ratio r (else the slider's), streaming the answer into #answer.
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
  render();
  state.lastQuestion = el.question.value;
  send({ type: ToWorker.ASK, id: state.askId, input: currentInput(), ratio: ratio(), maxNewTokens, positions: el.positions.value });
}

// Ranks "Compare with"'s method on the same image against the current ranking (once per pair of
// rankings; the slider then only reads the overlap curve).
export function requestCompare() {
  state.comparison = null;
  const method = el.compareMethod.value;
  if (!method || !state.ranking || !state.worker) return;
  state.compareId += 1;
  const seed = Math.max(0, parseInt(el.seed.value, 10) || 0);
  const key = compareKey(state.ranking.key, method, el.question.value, state.info?.prompt_methods || []);
  send({ type: ToWorker.COMPARE, id: state.compareId, key: state.ranking.key, compareKey: key, method, params: { seed } });
}

export function initWorkerLink() {
  el.compareMethod.addEventListener('change', () => { requestCompare(); render(); saveUrl(); });
  el.positions.addEventListener('change', () => saveUrl());
  el.ask.addEventListener('click', () => { state.sweep = null; askNow(); });
  el.sweep.addEventListener('click', () => {
    state.sweep = SWEEP.slice(1);
    askNow(SWEEP[0]);
  });
  el.stop.addEventListener('click', () => {
    state.sweep = null;
    if (state.worker) send({ type: ToWorker.STOP });
  });
}
