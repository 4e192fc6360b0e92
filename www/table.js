// The comparison table (a row per answer, with a thumbnail of its overlay) and the overlay's PNG
// export.

import { el } from './elements.js';
import { budgetCount } from './protocol.js';
import { state } from './state.js';
import { showError, bytesText, fmt, sameQuestion } from './ui.js';
import { ratio } from './controls.js';
import { drawTokens, overlayMode } from './overlay.js';

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

// The overlay at k kept tokens, 112 px wide: a table row's thumbnail (a data: URL).
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

// A row for a finished answer: its overlay, method, kept tokens, timings, answer and true answer.
export function addRow(t, answer, stopped) {
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
  cell(t.positions || 'renumber');
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

export function initTable() {
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
  el.clearTable.addEventListener('click', () => {
    el.compareRows.textContent = '';
    state.rows = 0;
  });
}
