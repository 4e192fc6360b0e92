// The question panel's controls: pruning method and its parameters, budget mode, seed, tiling,
// keep ratio; what they ask of the Worker (controls(), currentInput()) and the key of the ranking
// they want (currentKey()).

import { el } from './elements.js';
import { rankingKey } from './protocol.js';
import { state, render } from './state.js';
import { clearError, showError, secondsText } from './ui.js';
import { saveUrl } from './url-state.js';

// Ranks in the Worker for the current controls (session.js's prepare, given to initControls).
let prepare = () => {};
// Asks the Worker for the "Compare with" method's agreement (worker-link.js's requestCompare).
let requestCompare = () => {};

export function ratio() {
  const r = parseFloat(el.ratio.value);
  return Number.isFinite(r) ? Math.min(1, Math.max(0.01, r)) : 0.25;
}

// Sets the keep ratio on the slider and its number box (but the one it came from) and redraws.
export function setRatio(v, from) {
  const r = Math.min(1, Math.max(0.01, Number.isFinite(v) ? v : 0.25));
  if (from !== el.ratio) el.ratio.value = String(r);
  if (from !== el.ratioNum) el.ratioNum.value = String(r);
  render();
  saveUrl();
}

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
export function controls() {
  return {
    imageVersion: state.imageVersion,
    question: el.question.value,
    maxGrid: parseInt(el.grid.value, 10) || 0,
    method: el.method.value,
    params: methodParams(),
    budget: el.budget.value,
  };
}

// The key a ranking for the current controls has (the stored ranking is current when it matches).
export function currentKey() {
  return rankingKey(controls(), state.info?.prompt_methods || []);
}

// What the Worker should hold for the current controls: a copy of the image travels with them.
export function currentInput() {
  return { ...controls(), image: state.image ? state.image.slice(0) : null };
}

export function fillMethods(names) {
  const want = el.method.value || 'zoo';
  el.method.textContent = '';
  for (const n of names) {
    const o = document.createElement('option');
    o.value = n;
    o.textContent = n;
    el.method.append(o);
  }
  el.method.value = names.includes(want) ? want : names[0];
  // "Compare with": none, or any method
  const cmp = el.compareMethod.value;
  el.compareMethod.textContent = '';
  for (const n of ['', ...names]) {
    const o = document.createElement('option');
    o.value = n;
    o.textContent = n || 'none';
    el.compareMethod.append(o);
  }
  el.compareMethod.value = names.includes(cmp) ? cmp : '';
}

// Each tiling choice with the grid and visual tokens it gives this image (from the Worker).
export function showTiling() {
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
    // once a tile has been timed on this device: what encoding at this choice would take
    const time = state.tileMs ? `, about ${secondsText(state.tileMs * c.tiles)}` : '';
    o.textContent = `${base}: ${grid}, ${c.visual_tokens} tokens${time}`;
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
  relevance: "the relevance's sign: negated (the official code: tokens least like the question first) or plain",
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
    case 'relevance': return { kind: 'select', options: info.relevance_signs || [] };
    case 'core_share': case 'deep_keep': return { kind: 'number', min: 0, max: 1, step: 0.05 };
    case 'layer': return { kind: 'number', min: 0, max: (method === 'visionzip' ? vision : text) - 1, step: 1 };
    case 'deep_layer': return { kind: 'number', min: 0, max: text - 1, step: 1, optional: true };
    default: return null;
  }
}

// The current method's parameters, each an input holding what was typed (else the default).
export function buildParams() {
  const method = el.method.value;
  const defaults = (state.info && state.info.method_defaults && state.info.method_defaults[method]) || {};
  const ORDER = ['m', 'h', 'fusion', 'proxy', 'core_share', 'layer', 'deep_layer', 'deep_keep', 'relevance'];
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

export function onQuestionChange() {
  prepare();
  // a compared method that reads the question is compared again (after the prepare, in the
  // Worker's queue); one that does not keeps its comparison
  if ((state.info?.prompt_methods || []).includes(el.compareMethod.value)) requestCompare();
  saveUrl();
}

// Wires the controls; hooks.prepare ranks for them in the Worker.
export function initControls(hooks) {
  prepare = hooks.prepare;
  requestCompare = hooks.requestCompare;
  el.paramsReset.addEventListener('click', () => {
    state.paramValues[el.method.value] = {};
    buildParams();
    clearError();
    prepare();
    saveUrl();
  });
  el.ratio.addEventListener('input', () => setRatio(parseFloat(el.ratio.value), el.ratio));
  el.ratioNum.addEventListener('input', () => {
    const v = parseFloat(el.ratioNum.value);
    if (Number.isFinite(v) && v > 0) setRatio(v, el.ratioNum);
  });
  el.ratioNum.addEventListener('change', () => setRatio(parseFloat(el.ratioNum.value), null));
  el.method.addEventListener('change', () => { clearError(); buildParams(); prepare(); saveUrl(); });
  for (const c of [el.budget, el.seed, el.grid]) c.addEventListener('change', () => { clearError(); prepare(); saveUrl(); });
  el.question.addEventListener('change', onQuestionChange);
  // while typing, a question-dependent ranking is shown as stale (ranked again on change)
  el.question.addEventListener('input', () => render());
}
