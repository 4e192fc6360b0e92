// The Evaluate panel: the loaded model's accuracy against the keep ratio, measured here, on the
// built-in model's held-out scenes (assets/scenes/eval.json, written by `evaluate --eval-scenes`:
// the scenes and questions the `evaluate` bin uses). The Worker answers scene after scene
// (worker-evaluate.js); this module draws the plot with 95 % intervals as the answers arrive, keeps
// the results per model and settings (localStorage), resumes a stopped run, and exports CSV / JSON.

import { el } from './elements.js';
import { ToWorker, FromWorker, budgetCount } from './protocol.js';
import { state } from './state.js';
import { secondsText } from './ui.js';

const SCENES_URL = new URL('../assets/scenes/', import.meta.url).href;
const STORE = 'zpw-eval-v1';
const SETTINGS = 'zpw-eval-settings-v1'; // the controls as last set (a next visit opens on them)
const RATIOS = [1, 0.5, 0.25, 0.125, 0.0625];
const DEFAULT_METHODS = ['zoo', 'divprune', 'random'];
const DEFAULT_RATIOS = [1, 0.25, 0.0625];
// one colour per method, the built-in plot's (src/evaluate.rs: matplotlib's tab10 first)
const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#7f7f7f', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#e377c2', '#bcbd22'];

let send = null;
let evalScenes = null; // eval.json's scenes, fetched on the first run
let run = null; // the result shown: {key, settings, labels, done, tokens, right, answers, ms, model}
let active = 0; // id of the run in the Worker (0: none)
let nextId = 1;
let modelKey = null;

// What a model answers and how it is judged. The built-in model answers in one word of the
// scenes' vocabulary: its answer must equal the expected word (what `evaluate` reports). Any other
// model is asked for one word and is right when the expected word is one of its answer's words.
function rule() {
  return state.source && state.source.builtin
    ? { rule: 'exact', maxNewTokens: 4, suffix: '' }
    : { rule: 'word', maxNewTokens: 8, suffix: ' Answer with one word.' };
}

// 95 % Wilson score interval of k right in n, as fractions (src/stats.rs wilson95).
export function wilson95(k, n) {
  if (n === 0) return [0, 1];
  const z = 1.959963984540054;
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

function settings() {
  const specs = [...el.evalMethods.querySelectorAll('input:checked')].map((c) => c.value);
  const ratios = [...el.evalRatios.querySelectorAll('input:checked')].map((c) => Number(c.value)).sort((a, b) => b - a);
  const p = el.evalPositions.value;
  const positions = p === 'both' ? ['renumber', 'keep'] : [p];
  return { specs, ratios, positions, n: Number(el.evalN.value), maxGrid: Number(el.evalGrid.value), ...rule() };
}

const labelsOf = (s) => s.specs.flatMap((m) => s.positions.map((p) => (s.positions.length > 1 ? `${m} (${p})` : m)));
const keyOf = (s) => `${modelKey}|${JSON.stringify([s.specs, s.positions, s.ratios, s.n, s.maxGrid, s.rule, s.maxNewTokens, s.suffix])}`;

// A localStorage entry as JSON, or `fallback` when absent or unreadable.
function readJson(name, fallback) {
  try {
    return JSON.parse(localStorage.getItem(name)) ?? fallback;
  } catch {
    return fallback;
  }
}

// Stores (or with null removes) the result under `key`; throws when the store refuses.
function storeRun(key, value) {
  const all = readJson(STORE, {});
  if (value) all[key] = value;
  else delete all[key];
  localStorage.setItem(STORE, JSON.stringify(all));
}

const load = (key) => readJson(STORE, {})[key] || null;

function save() {
  if (!run) return;
  try {
    storeRun(run.key, run);
    el.evalSaved.textContent = '';
  } catch (e) {
    el.evalSaved.textContent = `(not kept for a next visit: ${e.message})`;
  }
}

// The stored result of the current model and settings, or a new empty one.
function pick() {
  const s = settings();
  const key = keyOf(s);
  if (run && run.key === key) return;
  run = load(key) || {
    key, settings: s, labels: labelsOf(s), done: 0, tokens: 0, ms: 0, model: state.source ? state.source.label : '',
    right: labelsOf(s).map(() => s.ratios.map(() => [])), answers: labelsOf(s).map(() => s.ratios.map(() => [])),
  };
  draw();
}

function correct(m, r) {
  return run.right[m][r].filter(Boolean).length;
}

function draw() {
  const s = run.settings;
  const random = state.info && state.info.safetensors_metadata && state.info.safetensors_metadata.weights === 'random';
  el.evalRandom.hidden = !random;
  el.evalRule.textContent = s.rule === 'exact'
    ? 'The built-in model answers in one word: an answer is right when it equals the scene\'s answer (as the evaluate bin counts).'
    : 'The question ends in "Answer with one word."; an answer is right when the scene\'s answer is one of its words '
      + '(case-insensitive, a plural s allowed; 2 = two, none = zero, violet = purple).';
  el.evalControls.disabled = active !== 0;
  el.evalRun.disabled = !state.ready || active !== 0 || !s.specs.length || !s.ratios.length || run.done >= s.n;
  el.evalRun.textContent = run.done > 0 && run.done < s.n ? `Run (go on from scene ${run.done + 1})` : 'Run';
  el.evalStop.disabled = active === 0;
  el.evalClear.disabled = active !== 0 || run.done === 0;
  el.evalCsv.disabled = el.evalJson.disabled = run.done === 0;
  el.evalPlot.dataset.done = String(run.done);
  el.evalPlot.innerHTML = run.done ? plot() : '';
  el.evalTable.innerHTML = run.done ? table() : '';
  if (!active) {
    el.evalStatus.textContent = run.done === 0 ? '' : `${run.done} of ${s.n} scenes answered${run.done < s.n ? ' (stopped)' : ''}`
      + ` in ${secondsText(run.ms)} · ${run.tokens} visual tokens per image · ${run.model}`;
  }
}

function table() {
  const s = run.settings;
  const head = s.ratios.map((r) => `<th>${+(r * 100).toFixed(2)} % (${budgetCount(run.tokens, r)} tok)</th>`).join('');
  const rows = run.labels.map((label, m) => `<tr><th>${label}</th>${s.ratios.map((_, r) => {
    const [lo, hi] = wilson95(correct(m, r), run.done);
    return `<td data-correct="${correct(m, r)}">${(100 * correct(m, r) / run.done).toFixed(1)} `
      + `<span class="ci">(${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)})</span></td>`;
  }).join('')}</tr>`).join('');
  return `<thead><tr><th>method</th>${head}</tr></thead><tbody>${rows}</tbody>`;
}

// Accuracy (%) against the keep ratio (log2 axis), a line per row with its 95 % intervals; rows
// with positions kept are dashed.
function plot() {
  const s = run.settings;
  const [W, H, L, R, T, B] = [640, 330, 50, 150, 20, 45];
  const pw = W - L - R;
  const ph = H - T - B;
  const lr = s.ratios.map(Math.log2);
  const [x0, x1] = [Math.min(...lr), Math.max(...lr)];
  const px = (r) => L + (x1 > x0 ? (Math.log2(r) - x0) / (x1 - x0) : 0.5) * pw;
  const py = (acc) => T + (1 - acc / 100) * ph;
  let g = '';
  for (let a = 0; a <= 100; a += 20) g += `<line x1="${L}" x2="${L + pw}" y1="${py(a)}" y2="${py(a)}" stroke="#e5e5e5"/><text x="${L - 6}" y="${py(a) + 4}" text-anchor="end">${a}</text>`;
  for (const r of s.ratios) g += `<text x="${px(r)}" y="${T + ph + 16}" text-anchor="middle">${budgetCount(run.tokens, r)} (${+(r * 100).toFixed(2)} %)</text>`;
  g += `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`;
  g += `<text x="${L + pw / 2}" y="${H - 6}" text-anchor="middle">visual tokens kept (${run.tokens} per image)</text>`;
  g += `<text transform="translate(14 ${T + ph / 2}) rotate(-90)" text-anchor="middle">accuracy (%)</text>`;
  run.labels.forEach((label, m) => {
    const c = COLOURS[s.specs.indexOf(label.replace(/ \((renumber|keep)\)$/, '')) % COLOURS.length];
    const dash = / \(keep\)$/.test(label) ? ' stroke-dasharray="6 3"' : '';
    const pts = s.ratios.map((r, i) => [px(r) + (m - (run.labels.length - 1) / 2) * 2, 100 * correct(m, i) / run.done]);
    s.ratios.forEach((_, i) => {
      const [lo, hi] = wilson95(correct(m, i), run.done);
      const x = pts[i][0];
      g += `<path d="M${x},${py(100 * lo)}V${py(100 * hi)}M${x - 3},${py(100 * lo)}h6M${x - 3},${py(100 * hi)}h6" stroke="${c}" stroke-opacity="0.6" stroke-width="1.5" fill="none"/>`;
    });
    g += `<polyline points="${pts.map(([x, a]) => `${x},${py(a)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="${label.startsWith('zoo') ? 3 : 1.5}"${dash}/>`;
    g += pts.map(([x, a]) => `<circle cx="${x}" cy="${py(a)}" r="3" fill="${c}"/>`).join('');
    g += `<line x1="${W - R + 12}" x2="${W - R + 36}" y1="${T + 10 + m * 18}" y2="${T + 10 + m * 18}" stroke="${c}" stroke-width="2"${dash}/><text x="${W - R + 42}" y="${T + 14 + m * 18}">${label}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11" role="img" aria-label="accuracy against the keep ratio, ${run.done} scenes">${g}</svg>`;
}

// eval.json's scenes (fetched once; the CSV names each scene's question with them).
async function scenes() {
  if (!evalScenes) {
    const res = await fetch(new URL('eval.json', SCENES_URL));
    if (!res.ok) throw new Error(`the held-out scenes could not be read (assets/scenes/eval.json: HTTP ${res.status})`);
    evalScenes = (await res.json()).scenes;
  }
  return evalScenes;
}

async function start() {
  pick();
  if (active || !send || !state.ready) return;
  await scenes();
  const s = run.settings;
  active = nextId++;
  draw();
  el.evalProgressBox.hidden = false;
  progress(0, 1);
  send({
    type: ToWorker.EVALUATE, id: active, scenes: evalScenes.slice(0, s.n), base: SCENES_URL, maxGrid: s.maxGrid, specs: s.specs,
    positions: s.positions, ratios: s.ratios, rule: s.rule, maxNewTokens: s.maxNewTokens, suffix: s.suffix, start: run.done,
  });
}

function progress(done, total) {
  const s = run.settings;
  const f = run.done + (total ? done / total : 0);
  el.evalProgress.max = s.n;
  el.evalProgress.value = f;
  const perScene = run.done ? run.ms / run.done : null;
  el.evalStatus.textContent = `scene ${Math.min(run.done + 1, s.n)} of ${s.n}`
    + (perScene ? ` · about ${secondsText(perScene * (s.n - f))} left` : '');
}

function finish(stopped, why) {
  active = 0;
  el.evalProgressBox.hidden = true;
  save();
  draw();
  if (why) el.evalStatus.textContent += ` · ${why}`;
  else if (stopped && run.done < run.settings.n) el.evalStatus.textContent += ' · Run goes on from here';
}

// Messages of the Worker about a run (worker-link.js forwards them).
export function onEvalMessage(m) {
  if (m.type === FromWorker.ERROR) {
    if (active) finish(true, `stopped by an error: ${m.message}`);
    return;
  }
  if (m.id !== active) return;
  if (m.type === FromWorker.EVAL_PROGRESS) {
    progress(m.done, m.total);
  } else if (m.type === FromWorker.EVAL_SCENE) {
    if (m.scene !== run.done) return;
    run.tokens = m.tokens;
    run.ms += m.ms;
    m.right.forEach((row, i) => row.forEach((ok, r) => {
      run.right[i][r].push(ok);
      run.answers[i][r].push(m.answers[i][r]);
    }));
    run.done += 1;
    if (run.done % 10 === 0) save();
    draw();
    progress(0, 1);
  } else if (m.type === FromWorker.EVAL_DONE) {
    finish(m.stopped);
  }
}

// A model was loaded (LOADED): its results, if any, are shown at once.
export function evalModelLoaded(m) {
  modelKey = m.revision ? `hub:${m.revision.repo}@${m.revision.sha}` : `sha256:${m.fingerprint}`;
  if (active) finish(true, 'another model was loaded');
  fillMethods(m.info.methods || []);
  run = null;
  pick();
}

const stored = () => readJson(SETTINGS, null);

function fillMethods(methods) {
  const checked = new Set([...el.evalMethods.querySelectorAll('input:checked')].map((c) => c.value));
  const want = checked.size ? checked : new Set((stored() || {}).specs || DEFAULT_METHODS);
  el.evalMethods.innerHTML = methods.map((n) => `<label><input type="checkbox" value="${n}"${want.has(n) ? ' checked' : ''}> ${n}</label>`).join(' ');
}

function download(name, type, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function exportJson() {
  const s = run.settings;
  return JSON.stringify({
    model: run.model, model_key: modelKey, scenes: run.done, tokens: run.tokens, rule: s.rule, max_new_tokens: s.maxNewTokens,
    question_suffix: s.suffix, max_grid: s.maxGrid, ratios: s.ratios, methods: run.labels,
    correct: run.labels.map((_, m) => s.ratios.map((_, r) => correct(m, r))),
    accuracy: run.labels.map((_, m) => s.ratios.map((_, r) => 100 * correct(m, r) / run.done)),
    interval95: run.labels.map((_, m) => s.ratios.map((_, r) => wilson95(correct(m, r), run.done).map((v) => 100 * v))),
    right: run.right, answers: run.answers, seconds: run.ms / 1000,
  }, null, 2);
}

function exportCsv() {
  const s = run.settings;
  const q = (v) => `"${String(v).replace(/"/g, '""')}"`;
  const lines = ['scene,kind,question,expected,method,keep_ratio,kept_tokens,answer,right'];
  for (let i = 0; i < run.done; i++) {
    const sc = evalScenes[i];
    run.labels.forEach((label, m) => s.ratios.forEach((r, k) => {
      lines.push([sc.index, sc.kind, q(sc.question + s.suffix), sc.answer, q(label), r, budgetCount(run.tokens, r), q(run.answers[m][k][i]), run.right[m][k][i] ? 1 : 0].join(','));
    }));
  }
  return lines.join('\n') + '\n';
}

export function initEvaluatePanel(deps) {
  send = deps.send;
  const last = stored() || {};
  const ratios = last.ratios || DEFAULT_RATIOS;
  el.evalRatios.innerHTML = RATIOS.map((r) => `<label><input type="checkbox" value="${r}"${ratios.includes(r) ? ' checked' : ''}> ${+(r * 100).toFixed(2)} %</label>`).join(' ');
  if (last.positions) el.evalPositions.value = last.positions;
  if (last.n) el.evalN.value = String(last.n);
  if (last.maxGrid !== undefined) el.evalGrid.value = String(last.maxGrid);
  for (const c of [el.evalMethods, el.evalRatios, el.evalPositions, el.evalN, el.evalGrid]) {
    c.addEventListener('change', () => {
      if (active) return;
      const s = settings();
      try {
        localStorage.setItem(SETTINGS, JSON.stringify({ specs: s.specs, ratios: s.ratios, positions: el.evalPositions.value, n: s.n, maxGrid: s.maxGrid }));
      } catch { /* not kept: the defaults next time */ }
      run = null;
      pick();
    });
  }
  el.evalRun.addEventListener('click', () => { start().catch((e) => { el.evalStatus.textContent = String(e.message || e); }); });
  el.evalStop.addEventListener('click', () => { if (active) send({ type: ToWorker.EVAL_STOP, id: active }); });
  el.evalClear.addEventListener('click', () => {
    try {
      storeRun(run.key, null);
    } catch { /* nothing stored */ }
    run = null;
    pick();
  });
  el.evalCsv.addEventListener('click', () => scenes().then(() => download('accuracy.csv', 'text/csv', exportCsv()),
    (e) => { el.evalStatus.textContent = e.message; }));
  el.evalJson.addEventListener('click', () => download('accuracy.json', 'application/json', exportJson()));
}
