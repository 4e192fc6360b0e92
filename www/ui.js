// Small page-wide pieces: the status line, the error line, the buttons' state, number formats.

import { el } from './elements.js';
import { state } from './state.js';

export function setStatus(text, kind) {
  el.status.textContent = text;
  if (kind) el.status.dataset.state = kind;
}

export function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

export function clearError() {
  el.error.hidden = true;
  el.error.textContent = '';
}

export function updateButtons() {
  const can = state.ready && !state.answering && !state.dead;
  el.ask.disabled = !can;
  el.sweep.disabled = !can;
  el.stop.disabled = !state.answering;
}

export const bytesText = (b) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b} B`);

export const fmt = (x, digits = 0) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));

export function readyLine() {
  const b = state.backend === 'webgpu' ? `WebGPU${state.adapter ? ` (${state.adapter})` : ''}` : state.backend;
  const size = state.info ? ` (${(state.info.params / 1e6).toFixed(state.info.params < 1e7 ? 2 : 0)} M parameters, ${bytesText(state.info.safetensors_bytes)})` : '';
  return `Ready · backend: ${b} · model: ${state.source.label}${size} · loaded in ${(state.loadMs / 1000).toFixed(1)} s`;
}

// Two questions are the same up to case and spacing (a scene's question, typed again).
export const sameQuestion = (a, b) => a.trim().toLowerCase().replace(/\s+/g, ' ') === b.trim().toLowerCase().replace(/\s+/g, ' ');

// A duration for people: "0.8 s", "12 s", "3 min 20 s".
export function secondsText(ms) {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
