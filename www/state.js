// The page's state: one object, every field declared here, and one render step. Code changes the
// state, then calls render(), which redraws everything drawn from it (the overlay, the classroom
// line). render() is synchronous: a slider move is drawn before its input event returns (the e2e
// suite times it and reads the kept count right after).

export const state = {
  tileMs: null, // this device's mean time a tile in the model's last encode (the time estimates)
  // ---- the model Workers
  worker: null, // the active model Worker (worker.js)
  source: null, // what the active worker loaded (for "Reload model")
  loading: null, // {worker, source}: a replacement model loading beside the active one
  retry: null, // the source of the failed or cancelled download, for Retry
  ready: false, // the active worker's model is loaded
  dead: false, // the active worker's wasm instance crashed
  backend: '', // 'webgpu' or the CPU backend's name
  adapter: null, // the WebGPU adapter's description
  info: null, // WebModel.info of the loaded model
  loadMs: 0, // how long the model took to load
  loadPhases: null, // {wasm, files, model}: ms of the wasm module + threads, the files, the model built from them
  wasmBytes: 0, // the Worker's wasm memory after the load, then after the latest answer (it only grows)
  timings: null, // the latest answer's Timings

  // ---- requests to the Worker
  seq: 0, // id of the latest request to the Worker (prepare or ask)
  askId: 0, // id of the ask being answered
  answering: false, // an answer is streaming
  failed: false, // the latest request to the Worker failed
  sweep: null, // ratios still to ask ("Ask at 100 / 50 / 25 / 10 %")
  lastQuestion: null, // the question of the latest ask (its table row and true answer)
  posts: 0, // messages sent to the Worker (the e2e test checks the slider sends none)
  encodes: 0, // images the Worker encoded (the e2e test checks that skipped images are not)
  ranks: 0, // rankings the Worker computed (the e2e test checks that superseded ones are skipped)
  encodeProgress: null, // {done, total, calls, open} of the latest encoding (the e2e test reads it)

  // ---- the image
  image: null, // ArrayBuffer of the chosen file (downscaled when it was huge)
  imageName: '', // its file name (or 'sample: …', 'pasted image')
  imageVersion: 0, // bumped on every new image: the Worker re-encodes when it changes
  imageSize: null, // {width, height} of what the Worker gets
  previewUrl: null, // the object URL the preview shows
  truth: null, // the held-out scene shown, with its true answer (null for any other image)
  intake: 0, // bumped for every image given: an older one still being read is dropped
  checker: null, // the image-check Worker (image-worker.js), started on the first image
  checks: new Map(), // id -> resolve of a pending image check
  checkId: 0, // id of the latest image check

  // ---- what the Worker computed for it
  tiling: null, // {width, height, choices} from the Worker
  encoding: null, // {imageVersion, maxGrid, ...WebModel.encode's JSON}
  ranking: null, // {key, input, ...WebModel.rank's JSON}
  rankPos: null, // rankPos[token] = its place in ranking.order
  scoreRange: null, // [min, max] of the ranking's finite scores, or null
  orderShown: null, // the ranking whose order the overlay's data-order holds
  comparison: null, // {key, ...WebModel.compare's object}: another method against `ranking`
  compareId: 0, // id of the last COMPARE request (its own counter: `seq` belongs to prepare / ask)

  // ---- controls and views
  paramValues: {}, // method -> {param: string value typed by the person}
  classStep: null, // classroom mode: picks shown (null: off)
  classTimer: null, // classroom Play's interval
  rows: 0, // rows in the comparison table
};

// Stores a ranking with what the overlay derives from it: each token's place, the score range.
export function setRanking(ranking, key, input) {
  state.ranking = { ...ranking, key, input };
  state.rankPos = new Array(ranking.order.length);
  ranking.order.forEach((t, i) => { state.rankPos[t] = i; });
  const finite = ranking.scores.filter((v) => v !== null && Number.isFinite(v));
  state.scoreRange = finite.length ? [Math.min(...finite), Math.max(...finite)] : null;
}

const views = [];

// Adds a view that render() redraws, in the order added.
export function onRender(view) {
  views.push(view);
}

// Redraws every view from the state, now.
export function render() {
  for (const view of views) view();
}
