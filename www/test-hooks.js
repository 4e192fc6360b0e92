// Hooks for the e2e suite (tests/e2e/*.test.mjs), loaded only when the page's URL has ?test=1:
// read the state, feed a synthetic layout, simulate a Worker message.

import { el } from './elements.js';
import { state, render, setRanking } from './state.js';
import { controls, currentKey } from './controls.js';
import { onWorkerMessage, prepare } from './worker-link.js';

window.__zpw = {
  state,
  drawOverlay: render,
  // A synthetic encoding + ranking over the current image: the overlay only reads rects and order.
  setSynthetic(encoding, ranking) {
    state.encoding = { ...encoding, imageVersion: state.imageVersion, maxGrid: parseInt(el.grid.value, 10) || 0 };
    setRanking(ranking, currentKey(), controls());
    render();
  },
  workerMessage: (m) => onWorkerMessage(m),
  prepare,
};
