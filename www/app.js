// The page thread: draws and forwards. All model work runs in worker.js; the page's parts are
// modules of their own, wired here:
//   protocol.js      the messages and constants shared with worker.js
//   elements.js      every element the page touches, by id
//   state.js         the page's state and its render step
//   ui.js            status line, error line, buttons, number formats
//   url-state.js     the controls mirrored in the URL
//   controls.js      method, parameters, budget, seed, tiling, keep ratio
//   overlay.js       the kept / pruned overlay, heatmap and pick order
//   classroom.js     the greedy selection one pick at a time
//   table.js         the comparison table and the PNG export
//   intake.js        images: file picker, drop, paste, samples, scenes
//   model-panel.js   the model Workers, hub / local loading, the model cache
//   worker-link.js   what is sent to the active Worker and what its messages do
//   evaluate-panel.js  the loaded model's accuracy on held-out scenes, measured in the page
//   test-hooks.js    window.__zpw for the e2e suite, loaded only with ?test=1
//   coi.js           cross-origin isolation (for the threaded wasm build) where the server gives none

import { onRender } from './state.js';
import { setStatus } from './ui.js';
import { readUrl, startParams } from './url-state.js';
import { initControls } from './controls.js';
import { drawOverlay, initOverlay } from './overlay.js';
import { showClassStep, initClassroom } from './classroom.js';
import { initTable } from './table.js';
import { buildSamples, firstImage, initIntake } from './intake.js';
import { initialSource, startWorker, listCache, initModelPanel } from './model-panel.js';
import { onWorkerMessage, prepare, requestCompare, initWorkerLink, send } from './worker-link.js';
import { initEvaluatePanel } from './evaluate-panel.js';
import { ensureIsolated } from './coi.js';

// what render() redraws, in this order
onRender(drawOverlay);
onRender(showClassStep);

initControls({ prepare, requestCompare });
initOverlay();
initClassroom();
initTable();
initIntake();
initModelPanel({ onWorkerMessage });
initWorkerLink();
initEvaluatePanel({ send });

// before anything runs, so that the suite finds them from the first message on
if (startParams.get('test') === '1') await import('./test-hooks.js');

// before the model Worker starts: whether this page is isolated decides which wasm build it gets
await ensureIsolated();

readUrl();
buildSamples();
listCache();
let first = null;
try {
  first = initialSource();
  startWorker(first);
} catch (e) {
  setStatus(`The model could not be loaded: ${e.message}`, 'failed');
}
firstImage(Boolean(first && first.builtin));
