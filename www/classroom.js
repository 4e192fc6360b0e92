// Classroom mode: the greedy selection one pick at a time, each pick with its score and its
// distance to the tokens kept before it (the ranking's steps). The overlay shows the picks so far.

import { el } from './elements.js';
import { state, render } from './state.js';

const num3 = (v) => (v === null || v === undefined ? 'n/a' : Number(v).toPrecision(3));

export function showClassStep() {
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
  const first = s === 1 ? ' (first pick)' : '';
  el.classStep.textContent = rk.method === 'cdpruner'
    // CDPruner's steps: the residual gain of the DPP (how much the kept set's determinant grows),
    // the token's relevance r, and gain / r² (the share of its similarity vector not yet spanned)
    ? `Pick ${s} of ${n}: token ${t} (${where}) · residual gain ${num3(st.score)} · relevance ${num3(st.weight)}` +
      ` · new direction ${num3(st.distance)} (gain / relevance²; 1 = unlike every token kept in its round)${first}${scope}`
    : `Pick ${s} of ${n}: token ${t} (${where}) · score ${num3(st.score)} · weight ${num3(st.weight)}` +
      ` · distance to the kept set ${num3(st.distance)}${first}${scope}` +
      // README, "What ZOO's sensitivity measures": on the built-in model the weight (normalised
      // sensitivity) ranks the tokens exactly as their inverse norm
      (rk.method === 'zoo' ? ' · the weight is ZOO\'s normalised sensitivity, which through post_layernorm follows 1/σ of the token\'s patches: small-norm tokens weigh most, the distance does the rest' : '');
}

function classStart() {
  if (state.classStep === null) state.classStep = 0;
}

export function stopPlay() {
  if (state.classTimer) clearInterval(state.classTimer);
  state.classTimer = null;
}

function classNext() {
  classStart();
  const n = state.ranking ? state.ranking.order.length : 0;
  if (state.classStep < n) state.classStep += 1;
  if (state.classStep >= n) stopPlay();
  render();
}

export function initClassroom() {
  el.classNext.addEventListener('click', () => { stopPlay(); classNext(); });
  el.classReset.addEventListener('click', () => { stopPlay(); state.classStep = 0; render(); });
  el.classPlay.addEventListener('click', () => {
    if (state.classTimer) {
      stopPlay();
    } else {
      classStart();
      if (state.ranking && state.classStep >= state.ranking.order.length) state.classStep = 0;
      state.classTimer = setInterval(classNext, 350);
    }
    render();
  });
  el.classOff.addEventListener('click', () => { stopPlay(); state.classStep = null; render(); });
}
