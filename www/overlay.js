// The overlay over the picture: kept / pruned tokens, the score heatmap or the pick order, drawn
// from the stored ranking alone (a slider move never talks to the Worker); its legend and the
// ranking's warnings.

import { el } from './elements.js';
import { budgetCount, compareKey } from './protocol.js';
import { state, render } from './state.js';
import { saveUrl } from './url-state.js';
import { currentKey, ratio } from './controls.js';

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
export function drawTokens(ctx, box, from, to, view) {
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

export function overlayMode() {
  const m = el.overlayMode.value;
  if (m === 'heatmap' && !state.scoreRange) return 'kept';
  return m;
}

// Redraws the overlay from the stored ranking: no Worker call.
export function drawOverlay() {
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
  const current = usable && rk.key === currentKey();
  c.dataset.state = !usable ? 'none' : current ? 'ranked' : 'stale';
  if (!usable) {
    delete c.dataset.kept;
    el.globalView.hidden = true;
    el.legend.textContent = '';
    el.keepLabel.textContent = !state.image || !state.ready || img.classList.contains('broken') ? ''
      : state.failed ? 'no ranking: see the error' : 'ranking the visual tokens…';
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
  showAgreement(rk, kept, current);
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
}

// How the ranking agrees with the feature norm's (Spearman's rho, from the Worker, once per
// ranking) and, with "Compare with", how many of the kept tokens the other method keeps too.
function showAgreement(rk, k, current) {
  const a = el.agreement;
  const num = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));
  let text = '';
  if (rk.method !== 'feature-norm') {
    text = `Spearman ρ against the feature norm's ranking: ${num(rk.spearman_vs_norm)} (keep order)`;
    if (rk.spearman_scores_vs_norm !== null && rk.spearman_scores_vs_norm !== undefined) {
      text += `, ${num(rk.spearman_scores_vs_norm)} (scores)`;
      // what ZOO's sensitivity measures (README: "What ZOO's sensitivity measures"): through a
      // LayerNorm it scales with 1 / sigma of the token's patches, so it can be a mere function of
      // the token's norm; say so when this image shows it
      if (rk.method === 'zoo' && Math.abs(rk.spearman_scores_vs_norm) >= 0.95) {
        text += ` (ZOO's sensitivity on this image is almost a function of the token's norm: through post_layernorm it scales with 1/σ of the token's patches; the keep order differs from the norm's through the diversity step)`;
      }
    }
  }
  const c = state.comparison;
  const want = compareKey(rk.key, el.compareMethod.value, el.question.value, state.info?.prompt_methods || []);
  const cmp = c && current && k > 0 && c.key === want ? c : null;
  if (cmp && cmp.error) {
    text += `${text ? ' · ' : ''}comparing with ${cmp.method} failed: ${cmp.error}`;
  } else if (cmp) {
    const both = cmp.overlap[k - 1];
    text += `${text ? ' · ' : ''}${cmp.method} keeps ${both} of these ${k} tokens too (${(100 * both / k).toFixed(0)} %), ρ ${num(cmp.spearman)}`;
  } else if (el.compareMethod.value && current && k > 0) {
    text += `${text ? ' · ' : ''}comparing with ${el.compareMethod.value}…`;
  }
  a.textContent = text;
  a.dataset.spearman = rk.spearman_vs_norm === null || rk.spearman_vs_norm === undefined ? '' : String(rk.spearman_vs_norm);
  a.dataset.overlap = cmp && !cmp.error ? String(cmp.overlap[k - 1]) : '';
  a.dataset.compare = cmp ? cmp.method : '';
}

// What the ranking warns about (e.g. a constant sensitivity), under the overlay.
export function showWarnings(rk) {
  const w = (rk && rk.warnings) || [];
  el.warnings.hidden = w.length === 0;
  el.warnings.textContent = w.map((x) => `⚠ ${x}`).join('\n');
}

export function initOverlay() {
  el.overlayMode.addEventListener('change', () => { render(); saveUrl(); });
  el.orderNumbers.addEventListener('change', () => render());
  window.addEventListener('resize', () => render());
}
