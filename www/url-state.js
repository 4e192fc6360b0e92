// The controls mirrored in the URL: written on every change (history.replaceState), read once on
// load. Other parameters (?model=, ?hub=, ?test=) are left as they are, so a reload keeps them.

import { el } from './elements.js';
import { state } from './state.js';
import { showError } from './ui.js';

const URL_KEYS = ['method', 'keep', 'grid', 'q', 'budget', 'seed', 'overlay', 'pos', 'cmp', 'backend'];

// The URL's parameters as the page was opened.
export const startParams = new URLSearchParams(location.search);

export function saveUrl() {
  const p = new URLSearchParams(location.search);
  const vals = {
    method: el.method.value, keep: el.ratio.value, grid: el.grid.value, q: el.question.value,
    budget: el.budget.value, seed: el.seed.value, overlay: el.overlayMode.value,
    pos: el.positions.value, cmp: el.compareMethod.value, backend: el.backend.value,
  };
  for (const k of URL_KEYS) p.set(k, vals[k]);
  // the method's parameters the person changed (as typed), e.g. params={"m":"8"}
  const changed = Object.fromEntries(Object.entries(state.paramValues[el.method.value] || {}).filter(([, v]) => v !== ''));
  if (Object.keys(changed).length) p.set('params', JSON.stringify(changed));
  else p.delete('params');
  history.replaceState(null, '', `${location.pathname}?${p}`);
}

export function readUrl() {
  const p = startParams;
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
  setSelect(el.positions, p.get('pos'));
  setSelect(el.backend, p.get('backend'));
  if (p.get('cmp')) {
    // as the method: the list arrives with the model
    const o = document.createElement('option');
    o.value = p.get('cmp');
    o.textContent = p.get('cmp');
    el.compareMethod.append(o);
    el.compareMethod.value = p.get('cmp');
  }
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
