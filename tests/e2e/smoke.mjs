// Browser smoke test of the web page: headless Chromium (Debian's, driven by playwright-core) opens
// www/ from a static server on 127.0.0.1 that this script starts, waits for the built-in model to
// load, asks the sample question about the sample image, and compares the streamed answer with the
// native CLI's answer computed now. Also: an empty question and a broken image give readable
// errors, Stop ends an answer, the page still answers after all that; every request went to
// 127.0.0.1.
//
// Pruning: for every method the page offers, in both budget modes, the page ranks the visual
// tokens in its Worker (WebGPU) and the order must equal the native CLI's `--ranking-json` order
// (flex, CPU) for the same image, question and seed. The overlay's kept count follows the keep
// slider without any message to the Worker; a zoo answer at keep 0.25 equals the CLI's. The wasm
// API's own errors (rank before encode, unknown method, bad parameters) are checked directly.
//
// The rest of the page (pageFeatures, modelLoading): the tiling menu's predicted tokens, method
// parameters typed with the keyboard (zoo m = 8 ranks as the CLI's --m 8; a bad value keeps the
// overlay), overlay modes, classroom mode (picks, scores, distances from ranking.steps), the
// comparison table and the 100/50/25/10 % sweep (answers = the CLI's), URL state written and read,
// PNG export, a dead wasm instance (simulated device-lost / out-of-memory messages: Reload model,
// table kept), image inputs (sample row, drop, paste, a 3000 px image downscaled, WebP converted,
// an EXIF-turned JPEG made upright, a text file refused), the slider's redraw time at 1088 tokens
// (a synthetic 17 x 64 layout), and model loading from a fake hub served here (/fakehub/: a 503
// then Retry, byte progress, the Cache API on the second visit, Clear) and from local files.
// Every page opens with ?test=1 (pageUrl), which loads the page's test hooks (window.__zpw); one
// load without it checks that production pages define none.
// Screenshots go to tests/e2e/out/.
//
// Needs: pkg/ built by scripts/build-web.sh, `npm ci`, /usr/bin/chromium.
// Env: ZPW_ONLY=builtin, stress or models (run only the built-in model's, the stress or the model-loading section), CHROMIUM (browser path), ZPW_CLI (a built zoo-prune-web binary instead of `cargo run
// --release`), ZPW_ALLOW_CPU=1 (accept the CPU fallback when the browser has no WebGPU).
// Prints `N passed, M failed` last; exits 1 on any failure.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { createReadStream, mkdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'tests/e2e/out');
const MODEL = 'tests/fixtures/tiny_tiles';
const IMAGE = 'tests/fixtures/photo.png';
const QUESTION = 'What colour is the cat?';
const MAX_NEW_TOKENS = 8;
const SEED = 3; // not the default 0: the seed must travel from the page to the ranking
const KEEP = 0.25;
const METHODS = ['zoo', 'divprune', 'prompt-aware', 'random', 'visionzip', 'fastv', 'info-horizon', 'feature-norm'];
const BUDGETS = ['per-tile', 'global'];
// A near-tie: the two candidates' native scores differ by less than this, relatively (see compareOrders).
const NEAR_TIE = 1e-5;
const LOAD_TIMEOUT = 300_000;
const ANSWER_TIMEOUT = 300_000;

// The URL of the page with `query`, plus test=1: the page then loads www/test-hooks.js
// (window.__zpw: its state, a synthetic layout, simulated Worker messages), which production
// loads never do. The page's URL writer keeps test=1, so a reload keeps the hooks.
const pageUrl = (base, query = '') => `${base}/www/?${query ? `${query}&` : ''}test=1`;

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} - ${name}${detail ? `: ${detail}` : ''}`);
}
const log = (s) => console.log(`[${secs()} s] ${s}`);

// ---- the native CLI: expected answers and rankings
let cliPath = process.env.ZPW_CLI || null;
function cli(args) {
  if (!cliPath) {
    // one build (usually a no-op), then the binary itself: faster than `cargo run` per call
    log('building the native CLI: cargo build --release --bin zoo-prune-web');
    execFileSync('cargo', ['build', '--release', '--quiet', '--bin', 'zoo-prune-web'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    cliPath = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target'), 'release/zoo-prune-web');
  }
  return execFileSync(cliPath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
}
const BASE_ARGS = ['answer', '--model', MODEL, '--image', IMAGE, '--prompt', QUESTION];
const show = (args) => args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ');

// stdout = the answer + '\n' (timings go to stderr)
function expectedAnswer(extra = []) {
  const args = [...BASE_ARGS, '--max-new-tokens', String(MAX_NEW_TOKENS), ...extra];
  const out = cli(args);
  log(`CLI: zoo-prune-web ${show(args)} -> ${JSON.stringify(out)}`);
  if (!out.endsWith('\n')) throw new Error(`the CLI's stdout does not end with a newline: ${JSON.stringify(out)}`);
  return out.slice(0, -1);
}

function nativeRanking(method, budget, extra = []) {
  const file = path.join(OUT, `ranking-${method}-${budget}${extra.join('')}.json`);
  cli([...BASE_ARGS, '--max-new-tokens', '1', '--method', method, '--keep', String(KEEP), '--seed', String(SEED),
    '--budget', budget, '--ranking-json', file, ...extra]);
  return JSON.parse(readFileSync(file, 'utf8'));
}

// Compares two keep orders. Identical is the expectation: both sides compute the scores in f32
// (CPU flex natively, WebGPU on SwiftShader in the browser) and run the same f64 selection code.
// f32 sums on a GPU may round differently from the CPU's, so where two candidates are all but
// tied a pick may flip, and every later greedy step then differs legitimately. Such a flip is
// accepted only where the native scores of the two candidates at the first differing step differ
// by less than NEAR_TIE relatively; the orders must agree up to that step. Methods without
// per-token scores (divprune, random, info-horizon) must match exactly.
function compareOrders(web, native) {
  if (web.length !== native.order.length) return { ok: false, detail: `lengths ${web.length} vs ${native.order.length}` };
  const i = web.findIndex((t, j) => t !== native.order[j]);
  if (i < 0) return { ok: true, identical: true };
  const a = web[i];
  const b = native.order[i];
  const sa = native.scores[a];
  const sb = native.scores[b];
  const rel = sa === null || sb === null ? Infinity : Math.abs(sa - sb) / Math.max(Math.abs(sa), Math.abs(sb), 1e-30);
  const detail = `first difference at step ${i}: page ${a}, CLI ${b} (native scores ${sa} vs ${sb}, relative ${rel.toExponential(2)})`;
  return { ok: rel < NEAR_TIE, identical: false, step: i, detail };
}

// ---- a static server for the repo root, on 127.0.0.1 only
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.svg': 'image/svg+xml',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.ts': 'text/plain; charset=utf-8',
};
// A fake Hugging Face hub on the same server (the page's ?hub= points here), serving the tiny test
// model's files for the two SmolVLM names: api/models/<owner/name>/revision/main names a commit
// (FAKEHUB.sha) and each file's size; <owner/name>/resolve/<commit>/<file> serves the files at that
// commit only. It logs every request ("api <name>" or "<name>/<file>"), answers 503 once for each
// key put in failOnce, announces one byte too many for the keys in misannounce, and sends the keys
// in slow half-way, then holds the connection.
const FAKEHUB = { log: [], failOnce: new Set(), slow: new Set(), misannounce: new Set(),
  sha: { 'SmolVLM-256M-Instruct': '1'.repeat(40), 'SmolVLM-500M-Instruct': '5'.repeat(40) } };
const FAKEHUB_MODELS = ['SmolVLM-256M-Instruct', 'SmolVLM-500M-Instruct'];
const FAKEHUB_FILES = ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json', 'model.safetensors'];
// isolate: every response carries COOP/COEP, as scripts/serve.sh sends them, so the page is
// cross-origin isolated and its CPU path runs the threaded wasm build; a server without them checks
// the service worker (coi-sw.js) and the one-thread fallback.
function serve({ isolate = true } = {}) {
  const server = http.createServer((req, res) => {
    if (isolate) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    let file;
    try {
      const p = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
      file = path.join(ROOT, path.normalize(p));
      const api = /^\/fakehub\/api\/models\/HuggingFaceTB\/([^/]+)\/revision\/main$/.exec(p);
      if (api) {
        FAKEHUB.log.push(`api ${api[1]}`);
        if (!FAKEHUB_MODELS.includes(api[1])) throw new Error('no such model');
        const siblings = FAKEHUB_FILES.map((f) => ({ rfilename: f,
          size: statSync(path.join(ROOT, MODEL, f)).size + (FAKEHUB.misannounce.has(`${api[1]}/${f}`) ? 1 : 0) }));
        const body = JSON.stringify({ id: `HuggingFaceTB/${api[1]}`, sha: FAKEHUB.sha[api[1]], siblings });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(body);
        return;
      }
      const hub = /^\/fakehub\/HuggingFaceTB\/([^/]+)\/resolve\/([^/]+)\/([^/]+)$/.exec(p);
      if (hub) {
        const key = `${hub[1]}/${hub[3]}`;
        FAKEHUB.log.push(key);
        if (!FAKEHUB_MODELS.includes(hub[1]) || hub[2] !== FAKEHUB.sha[hub[1]]) throw new Error('no such model or commit');
        if (FAKEHUB.failOnce.delete(key)) {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('busy');
          return;
        }
        file = path.join(ROOT, MODEL, hub[3]);
        if (FAKEHUB.slow.has(key)) {
          // 64 KiB every 150 ms up to half the file, then nothing until the client goes away (or
          // 120 s): the download is still running whenever the Cancel click lands, however
          // loaded the machine is (a download that finished first made the Cancel check flaky)
          const data = readFileSync(file);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length, 'cache-control': 'no-store' });
          let at = 0;
          const half = Math.floor(data.length / 2);
          const started = Date.now();
          const timer = setInterval(() => {
            if (res.destroyed || Date.now() - started > 120_000) {
              clearInterval(timer);
              if (!res.destroyed) res.destroy();
              return;
            }
            if (at >= half) return;
            res.write(data.subarray(at, Math.min(at + 65536, half)));
            at = Math.min(at + 65536, half);
          }, 150);
          res.on('close', () => clearInterval(timer));
          return;
        }
      }
      if (!file.startsWith(ROOT)) throw new Error('outside the root');
      if (statSync(file).isDirectory()) file = path.join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function setRatio(page, r, via = '#keep-ratio') {
  await page.evaluate(([sel, v]) => {
    const e = document.querySelector(sel);
    e.value = String(v);
    e.dispatchEvent(new Event('input', { bubbles: true }));
  }, [via, r]);
}

async function setControls(page, { method, budget, seed }) {
  if (seed !== undefined) {
    await page.fill('#seed', String(seed));
    await page.dispatchEvent('#seed', 'change');
  }
  if (budget) await page.selectOption('#budget', budget);
  if (method) await page.selectOption('#method', method);
}

// Waits until the overlay shows the ranking for the current controls (or an error is shown).
async function waitRanked(page, { method, budget, seed }) {
  await page.waitForFunction(([m, b, s]) => {
    const o = document.getElementById('overlay').dataset;
    if (!document.getElementById('error').hidden) return true;
    return o.state === 'ranked' && o.method === m && o.budget === b && o.seed === String(s);
  }, [method, budget, seed], { timeout: ANSWER_TIMEOUT, polling: 50 });
  return page.evaluate(() => {
    const o = document.getElementById('overlay').dataset;
    const w = document.getElementById('rank-warnings');
    return {
      order: o.order ? o.order.split(',').map(Number) : null,
      kept: Number(o.kept),
      total: Number(o.total),
      warnings: w.hidden ? '' : w.textContent,
      error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
      label: document.getElementById('keep-label').textContent,
    };
  });
}

async function askAndWait(page, { question, maxTokens = MAX_NEW_TOKENS, ratio }) {
  await page.fill('#question', question);
  await page.fill('#max-tokens', String(maxTokens));
  if (ratio !== undefined) await setRatio(page, ratio);
  await page.waitForSelector('#ask:not([disabled])', { timeout: ANSWER_TIMEOUT });
  await page.click('#ask');
  // done when the answer is finished or an error is shown
  await page.waitForFunction(() => {
    const a = document.getElementById('answer').dataset.state;
    const err = !document.getElementById('error').hidden;
    return a === 'done' || a === 'done-empty' || a === 'stopped' || err;
  }, null, { timeout: ANSWER_TIMEOUT, polling: 100 });
  return page.evaluate(() => ({
    answer: document.getElementById('answer').textContent,
    answerState: document.getElementById('answer').dataset.state,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    timings: document.getElementById('timings').textContent,
    askEnabled: !document.getElementById('ask').disabled,
  }));
}

const rowsOf = (page) => page.$$eval('#compare-rows tr', (rs) => rs.map((r) => ({
  kept: r.children[4].textContent, method: r.children[2].textContent, positions: r.children[3].textContent,
  answer: r.children[8].textContent, thumb: (r.querySelector('img') || {}).src || '', firstToken: r.children[5].textContent,
  kv: r.children[7].textContent,
})));

// Spearman's rho of two keep orders (permutations), written out here as an independent check
function spearmanOfOrders(a, b) {
  const n = a.length;
  const pa = new Array(n);
  const pb = new Array(n);
  a.forEach((t, i) => { pa[t] = i; });
  b.forEach((t, i) => { pb[t] = i; });
  let d2 = 0;
  for (let t = 0; t < n; t += 1) d2 += (pa[t] - pb[t]) ** 2;
  return 1 - (6 * d2) / (n * (n * n - 1));
}

// a hash of the overlay canvas's pixels: tells two drawings apart
const overlayHash = (page) => page.evaluate(() => {
  const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 3) h = (h * 31 + d[i]) >>> 0;
  return h;
});

async function waitImage(page, re) {
  await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('image-name').textContent)
    || !document.getElementById('error').hidden, re.source, { timeout: 60_000 });
}

// Drops a file (made in the page from a URL or a canvas) on the image area, or pastes it.
async function giveImage(page, how, { url, name, type, canvas }) {
  await page.evaluate(async ([how, url, name, type, canvas]) => {
    let blob;
    if (url) {
      blob = await (await fetch(url)).blob();
    } else {
      const c = document.createElement('canvas');
      c.width = canvas.w;
      c.height = canvas.h;
      const ctx = c.getContext('2d');
      const g = ctx.createLinearGradient(0, 0, canvas.w, canvas.h);
      g.addColorStop(0, '#2266dd');
      g.addColorStop(1, '#ffcc22');
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, canvas.w, canvas.h);
      blob = await new Promise((r) => c.toBlob(r, type));
    }
    const dt = new DataTransfer();
    dt.items.add(new File([blob], name, { type: blob.type || type }));
    if (how === 'drop') {
      document.getElementById('drop-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    } else {
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }
  }, [how, url, name, type, canvas]);
}

// The page's controls beyond the pruning core: tiling menu, method parameters, overlay modes,
// classroom mode, comparison table + sweep, URL state, PNG export, device loss, image inputs, and
// the slider's redraw time at 1088 tokens.
async function pageFeatures(page, { expected, expectedZoo }) {
  const seedParams = { method: 'zoo', budget: 'per-tile', seed: SEED };
  // ---- tiling menu: every choice shows its tokens; the chosen one is what the encoding has
  await page.selectOption('#grid', '0');
  let w = await waitRanked(page, seedParams);
  const tiling = await page.$$eval('#grid option', (os) => os.map((o) => ({ v: o.value, text: o.textContent, tokens: o.dataset.tokens })));
  log(`tiling menu: ${tiling.map((t) => t.text).join(' | ')}`);
  check('the tiling menu shows every choice\'s visual tokens; the chosen one\'s equals the encoding\'s',
    tiling.length === 5 && tiling.every((t) => Number(t.tokens) > 0 && t.text.includes(`${t.tokens} tokens`))
      && Number(tiling.find((t) => t.v === '0').tokens) === w.total, `${w.total} encoded; ${tiling.map((t) => t.text).join(' | ')}`);
  // ---- encoding progress: one report per tile, then the bar goes away
  const encodedWith = (g) => page.waitForFunction((grid) => {
    const st = window.__zpw.state;
    return !document.getElementById('error').hidden || (st.encoding && st.encoding.maxGrid === grid);
  }, g, { timeout: ANSWER_TIMEOUT, polling: 50 });
  await page.selectOption('#grid', '1');
  await encodedWith(1);
  await page.selectOption('#grid', '0');
  await encodedWith(0);
  w = await waitRanked(page, seedParams);
  const prog = await page.evaluate(() => ({ p: window.__zpw.state.encodeProgress, tiles: window.__zpw.state.encoding.tiles,
    hidden: getComputedStyle(document.getElementById('encode-progress-box')).display === 'none' }));
  check('encoding reports each tile as it finishes (tile k of n), then hides the bar',
    prog.p && prog.tiles > 1 && prog.p.calls === prog.tiles && prog.p.done === prog.tiles && prog.p.total === prog.tiles && prog.hidden,
    JSON.stringify(prog));

  // ---- method parameters, typed with the keyboard: m = 8 reaches the ranking = the CLI's --m 8
  const labelled = await page.$$eval('#method-params-body input, #method-params-body select',
    (es) => es.map((e) => (e.closest('label') ? e.closest('label').textContent.trim().split(/\s/)[0] : '')));
  check('zoo shows its parameters m, h, fusion, proxy, each with a label', labelled.join(',') === 'm,h,fusion,proxy', labelled.join(','));
  await page.focus('#param-m');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('8');
  await page.keyboard.press('Tab');
  await page.waitForFunction(() => {
    const st = window.__zpw.state;
    return (st.ranking && st.ranking.params.m === 8 && document.getElementById('overlay').dataset.state === 'ranked')
      || !document.getElementById('error').hidden;
  }, null, { timeout: ANSWER_TIMEOUT, polling: 50 });
  const m8 = await page.evaluate(() => window.__zpw.state.ranking.order);
  const c8 = compareOrders(m8, nativeRanking('zoo', 'per-tile', ['--m', '8']));
  check('zoo with m = 8 typed in the page ranks as the CLI\'s --m 8', c8.ok, c8.detail || '');
  // a bad value: a clear message, the previous ranking stays drawn
  await page.fill('#param-m', '0');
  await page.dispatchEvent('#param-m', 'change');
  await page.waitForSelector('#error:not([hidden])', { timeout: ANSWER_TIMEOUT });
  const bad = await page.evaluate(() => ({ error: document.getElementById('error').textContent,
    state: document.getElementById('overlay').dataset.state, label: document.getElementById('keep-label').textContent }));
  check('m = 0 gives a clear message and keeps the previous overlay', /at least 1/.test(bad.error) && bad.state === 'stale' && /not updated/.test(bad.label),
    JSON.stringify(bad));
  await page.click('#params-reset');
  w = await waitRanked(page, seedParams);
  check('Defaults brings back the default ranking (m 64)', w.error === null && compareOrders(w.order, nativeRanking('zoo', 'per-tile')).ok, w.error || '');
  await page.selectOption('#method', 'info-horizon');
  const ih = await page.$$eval('#method-params-body input', (es) => es.map((e) => e.id));
  await page.selectOption('#method', 'divprune');
  const dp = await page.isVisible('#method-params');
  check('each method shows its own parameters (info-horizon: deep_layer, deep_keep; divprune: none)',
    ih.join(',') === 'param-deep_layer,param-deep_keep' && !dp, `${ih.join(',')}; divprune fieldset visible: ${dp}`);
  await waitRanked(page, { ...seedParams, method: 'divprune' });

  // ---- overlay modes: heatmap (zoo has scores, divprune none), pick order
  await page.selectOption('#overlay-mode', 'heatmap');
  const dpMode = await page.evaluate(() => [document.getElementById('overlay').dataset.mode, document.getElementById('overlay-legend').textContent]);
  check('the heatmap of a method without scores (divprune) says so and shows kept / pruned', dpMode[0] === 'kept' && /no per-token score/.test(dpMode[1]), dpMode.join(' | '));
  await page.selectOption('#method', 'zoo');
  await waitRanked(page, seedParams);
  const hHeat = await overlayHash(page);
  const heatMode = await page.getAttribute('#overlay', 'data-mode');
  await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'overlay-heatmap.png') });
  await page.selectOption('#overlay-mode', 'order');
  await page.check('#order-numbers');
  const hOrder = await overlayHash(page);
  await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'overlay-order.png') });
  await page.selectOption('#overlay-mode', 'kept');
  await page.uncheck('#order-numbers');
  const hKept = await overlayHash(page);
  check('the overlay modes draw differently (kept, heatmap, pick order)', heatMode === 'heatmap' && hHeat !== hKept && hOrder !== hKept && hOrder !== hHeat,
    `${heatMode} ${hKept} ${hHeat} ${hOrder}`);

  // ---- classroom mode: one pick at a time, with its score and distance
  const rk = await page.evaluate(() => ({ order: window.__zpw.state.ranking.order, steps: window.__zpw.state.ranking.steps }));
  await page.click('#class-reset');
  const k0 = await page.getAttribute('#overlay', 'data-kept');
  for (let i = 0; i < 3; i++) await page.click('#class-next');
  const cs = await page.evaluate(() => ({ ...document.getElementById('class-step').dataset, text: document.getElementById('class-step').textContent,
    kept: document.getElementById('overlay').dataset.kept }));
  log(`classroom after 3 picks: ${cs.text}`);
  const st2 = rk.steps[2];
  check('classroom: Reset shows no pick, Next x3 shows the first 3 picks', k0 === '0' && cs.kept === '3', `${k0} -> ${cs.kept}`);
  check('classroom: pick 3 is the ranking\'s third token, with its score and distance to the kept set',
    Number(cs.token) === rk.order[2] && Number(cs.score) === st2.score && cs.text.includes(`score ${Number(st2.score).toPrecision(3)}`)
      && cs.text.includes(`distance to the kept set ${Number(st2.distance).toPrecision(3)}`), cs.text);
  await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'classroom.png') });
  await page.click('#class-play');
  await page.waitForFunction((n) => document.getElementById('class-step').dataset.step === String(n), rk.order.length, { timeout: 60_000 });
  check('classroom: Play steps through every pick', (await page.getAttribute('#overlay', 'data-kept')) === String(rk.order.length));
  await page.click('#class-off');

  // ---- the comparison table: every answer a row; the sweep asks at 100 / 50 / 25 / 10 %
  const before = await rowsOf(page);
  log(`table rows so far: ${before.map((r) => `${r.method} ${r.kept}`).join('; ')}`);
  const lastZoo = before[before.length - 1];
  check('every answer so far added a row (the last: zoo at 25 %, with its answer, timings, KV cache and overlay thumbnail)',
    before.length >= 4 && lastZoo.answer === expectedZoo && /^zoo/.test(lastZoo.method) && /ms/.test(lastZoo.firstToken)
      && /B$/.test(lastZoo.kv) && lastZoo.thumb.startsWith('data:image/png'), JSON.stringify(lastZoo));
  await page.click('#sweep');
  await page.waitForFunction((n) => document.querySelectorAll('#compare-rows tr').length >= n || !document.getElementById('error').hidden,
    before.length + 4, { timeout: 4 * ANSWER_TIMEOUT, polling: 200 });
  const after = (await rowsOf(page)).slice(before.length);
  log(`sweep rows: ${after.map((r) => `${r.kept}: ${JSON.stringify(r.answer)}`).join('; ')}`);
  const n = w.total;
  const want = [1, 0.5, 0.25, 0.1].map((r) => `${Math.max(1, Math.round(r * n))} / ${n}`);
  check('the sweep adds four rows at 100 / 50 / 25 / 10 %', JSON.stringify(after.map((r) => r.kept)) === JSON.stringify(want),
    `${after.map((r) => r.kept).join(', ')} vs ${want.join(', ')}`);
  check('the sweep\'s 100 % and 25 % answers equal the CLI\'s (unpruned; zoo keep 0.25)',
    after.length === 4 && after[0].answer === expected && after[2].answer === expectedZoo, JSON.stringify(after.map((r) => r.answer)));
  await page.screenshot({ path: path.join(OUT, 'table.png'), fullPage: true });
  // Stop ends a sweep: the answer in progress stops, no later ratio is asked
  const beforeStop = (await rowsOf(page)).length;
  await page.click('#sweep');
  await page.fill('#max-tokens', '200'); // read by the asks after the first (at 8 tokens)
  await page.waitForFunction((n) => document.querySelectorAll('#compare-rows tr').length > n || !document.getElementById('error').hidden,
    beforeStop, { timeout: ANSWER_TIMEOUT, polling: 100 });
  await page.waitForFunction(() => document.getElementById('answer').textContent.length > 0, null, { timeout: ANSWER_TIMEOUT, polling: 50 });
  await page.click('#stop');
  await page.waitForSelector('#ask:not([disabled])', { timeout: ANSWER_TIMEOUT });
  await page.waitForTimeout(1500);
  const stopRows = (await rowsOf(page)).slice(beforeStop);
  const askState = await page.evaluate(() => [document.getElementById('answer').dataset.state, document.getElementById('keep-ratio').value]);
  check('Stop ends a sweep: the 100 % row, then the stopped 50 % row, nothing more', stopRows.length === 2
    && stopRows[1].answer.endsWith('[stopped]') && stopRows[1].kept === want[1] && askState[0] === 'stopped' && askState[1] === '0.5',
    `${JSON.stringify(stopRows.map((r) => [r.kept, r.answer]))} ${askState.join(' ')}`);
  await page.fill('#max-tokens', String(MAX_NEW_TOKENS));

  // ---- agreement (issue 13): Spearman's rho against the feature norm, and the overlap with a
  // second method, both computed here from the CLI's keep orders
  const wz = await waitRanked(page, seedParams);
  const normOrder = nativeRanking('feature-norm', 'per-tile').order;
  const rho = spearmanOfOrders(wz.order, normOrder);
  const shown = await page.$eval('#agreement', (a) => ({ text: a.textContent, s: a.dataset.spearman }));
  log(`agreement: ${shown.text}`);
  check('the agreement line shows Spearman\'s rho of the ranking against the feature norm\'s (= computed from the CLI\'s orders)',
    shown.s !== '' && Math.abs(Number(shown.s) - rho) < 1e-9 && /Spearman/.test(shown.text), `${shown.s} vs ${rho}: ${shown.text}`);
  await page.selectOption('#compare-method', 'divprune');
  await page.waitForFunction(() => document.getElementById('agreement').dataset.compare === 'divprune'
    || !document.getElementById('error').hidden, null, { timeout: ANSWER_TIMEOUT, polling: 50 });
  const divOrder = nativeRanking('divprune', 'per-tile').order;
  const overlaps = [];
  for (const r of [0.1, 0.5, 1]) {
    await setRatio(page, r);
    const o = await page.evaluate(() => ({ k: Number(document.getElementById('overlay').dataset.kept),
      both: document.getElementById('agreement').dataset.overlap, text: document.getElementById('agreement').textContent }));
    const want = wz.order.slice(0, o.k).filter((t) => divOrder.slice(0, o.k).includes(t)).length;
    overlaps.push({ ...o, want });
  }
  log(`compare with divprune: ${overlaps.map((o) => `${o.both}/${o.k} (want ${o.want})`).join(', ')}`);
  check('"Compare with divprune": the tokens both keep at each budget = the CLI\'s two orders\' prefixes, all at 100 %',
    overlaps.every((o) => Number(o.both) === o.want && o.text.includes('divprune keeps')) && overlaps[2].want === overlaps[2].k,
    JSON.stringify(overlaps));
  await page.selectOption('#compare-method', '');

  // ---- positions (issue 13): keep each kept token's position; the answer = the CLI's
  await page.selectOption('#positions', 'keep');
  const kept = await askAndWait(page, { question: QUESTION, ratio: KEEP });
  const cliKeep = expectedAnswer(['--method', 'zoo', '--keep', String(KEEP), '--seed', String(SEED), '--positions', 'keep']);
  const keptRow = (await rowsOf(page)).at(-1);
  log(`positions keep at ${KEEP}: page ${JSON.stringify(kept.answer)}, CLI ${JSON.stringify(cliKeep)}; renumbered: ${JSON.stringify(expectedZoo)}`);
  check('positions "keep": the answer equals the CLI\'s --positions keep, the table\'s positions column says keep',
    kept.error === null && kept.answer === cliKeep && keptRow.positions === 'keep',
    `${JSON.stringify(kept.answer)} vs ${JSON.stringify(cliKeep)}; row ${JSON.stringify(keptRow)}`);
  check('the URL holds the positions choice', new URL(page.url()).searchParams.get('pos') === 'keep', page.url());
  await page.selectOption('#positions', 'renumber');
  await setRatio(page, 0.1);

  // ---- URL state: written on every change, read on load
  const url = new URL(page.url());
  check('the URL holds method, keep ratio, tiling, question', url.searchParams.get('method') === 'zoo' && url.searchParams.get('keep') === '0.1'
    && url.searchParams.get('grid') === '0' && url.searchParams.get('q') === QUESTION, url.search);
  check('the URL writer keeps the parameters it does not own (?model=, ?test=)', url.searchParams.get('model') === `../${MODEL}/`
    && url.searchParams.get('test') === '1', url.search);
  const p3 = await page.context().newPage();
  await p3.goto(pageUrl(new URL(page.url()).origin, `method=info-horizon&keep=0.4&grid=1&q=${encodeURIComponent('Where is it?')}&budget=global&seed=7`
    + `&overlay=order&params=${encodeURIComponent('{"deep_keep":"0.25"}')}`));
  await p3.waitForSelector('#status[data-state="ready"]', { timeout: LOAD_TIMEOUT });
  const w3 = await waitRanked(p3, { method: 'info-horizon', budget: 'global', seed: 7 });
  const c3 = await p3.evaluate(() => ({ m: document.getElementById('method').value, r: document.getElementById('keep-ratio').value,
    g: document.getElementById('grid').value, q: document.getElementById('question').value, o: document.getElementById('overlay-mode').value,
    dk: document.getElementById('param-deep_keep').value, ranked: window.__zpw.state.ranking.params.deep_keep }));
  check('a URL with state restores method, its parameters, ratio, tiling, question, budget, seed, overlay mode',
    c3.m === 'info-horizon' && c3.r === '0.4' && c3.g === '1' && c3.q === 'Where is it?' && c3.o === 'order' && c3.dk === '0.25' && c3.ranked === 0.25
      && w3.kept === Math.max(1, Math.round(0.4 * w3.total)), `${JSON.stringify(c3)} kept ${w3.kept} of ${w3.total}`);
  // keyboard: arrow keys on the focused slider move the budget (and redraw, without the Worker)
  await p3.focus('#keep-ratio');
  const posts3 = await p3.evaluate(() => document.body.dataset.workerPosts);
  for (let i = 0; i < 5; i++) await p3.keyboard.press('ArrowRight');
  const kb = await p3.evaluate(() => [document.getElementById('keep-ratio').value, document.getElementById('keep-ratio-num').value,
    document.getElementById('overlay').dataset.kept, document.body.dataset.workerPosts]);
  check('arrow keys on the keep slider move it by 0.05 and redraw without the Worker', kb[0] === '0.45' && kb[1] === '0.45'
    && Number(kb[2]) === Math.max(1, Math.round(0.45 * w3.total)) && kb[3] === posts3, kb.join(' '));
  await p3.close();

  // ---- export the overlay as a PNG at the photo's size
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#export-png')]);
  const pngFile = path.join(OUT, 'export-overlay.png');
  await dl.saveAs(pngFile);
  const png = readFileSync(pngFile);
  const natural = await page.evaluate(() => [document.getElementById('preview').naturalWidth, document.getElementById('preview').naturalHeight]);
  const dims = png.length > 24 ? [png.readUInt32BE(16), png.readUInt32BE(20)] : [];
  check('Export overlay as PNG downloads a PNG of the photo\'s size', png.subarray(1, 4).toString() === 'PNG' && dims.join('x') === natural.join('x')
    && /^overlay-zoo-\d+of\d+\.png$/.test(dl.suggestedFilename()), `${dl.suggestedFilename()} ${dims.join('x')} vs ${natural.join('x')}`);

  // ---- the wasm instance dies (simulated worker messages): say why, keep the table, reload
  const rowsBefore = (await rowsOf(page)).length;
  for (const [kind, message, re] of [
    ['device-lost', 'answering: internal error (the model code crashed: panicked at wgpu: Device lost: the GPU device was lost)', /GPU device was lost/],
    ['oom', 'encoding the image: internal error (the model code crashed: unreachable; out of memory: the wasm memory had grown to 3.98 GiB of its 4 GiB)', /Out of memory/],
  ]) {
    await page.evaluate((msg) => window.__zpw.workerMessage({ type: 'fatal', message: msg }), message);
    const box = await page.evaluate(() => ({ visible: !document.getElementById('reload-box').hidden, kind: document.getElementById('reload-box').dataset.kind,
      text: document.getElementById('reload-text').textContent, ask: document.getElementById('ask').disabled,
      rows: document.querySelectorAll('#compare-rows tr').length }));
    if (kind === 'device-lost') await page.screenshot({ path: path.join(OUT, 'device-lost.png'), fullPage: true });
    check(`${kind}: the page says so, offers Reload model, keeps the table`, box.visible && box.kind === kind && re.test(box.text) && box.ask
      && box.rows === rowsBefore, JSON.stringify(box));
    await page.click('#reload-model');
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  }
  // a real loss: the Worker's own GPUDevice (caught by worker.js when wgpu requested it) is destroyed
  let destroyed = 0;
  for (const wk of page.workers()) {
    destroyed += await wk.evaluate(() => {
      const ds = self.__zpwGpuDevices || [];
      ds.forEach((d) => d.destroy());
      return ds.length;
    }).catch(() => 0);
  }
  await page.waitForSelector('#reload-box:not([hidden])', { timeout: 30_000 }).catch(() => {});
  const real = await page.evaluate(() => ({ visible: !document.getElementById('reload-box').hidden, kind: document.getElementById('reload-box').dataset.kind,
    text: document.getElementById('reload-text').textContent, status: document.getElementById('status').textContent }));
  log(`GPU device destroyed in the Worker (${destroyed} device): ${real.text}`);
  check('a real GPUDevice loss in the Worker is reported as such, with Reload model', destroyed === 1 && real.visible && real.kind === 'device-lost'
    && /The GPU device was lost \(GPUDevice\.lost, reason destroyed/.test(real.text), JSON.stringify(real));
  await page.click('#reload-model');
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  // a GPU out-of-memory error as the device reports it (an uncaptured GPUOutOfMemoryError event):
  // cubecl's handler panics inside the event callback; the Worker must report it at once, as memory
  await page.waitForFunction(() => document.getElementById('overlay').dataset.state === 'ranked', null, { timeout: ANSWER_TIMEOUT });
  let dispatched = 0;
  for (const wk of page.workers()) {
    dispatched += await wk.evaluate(() => {
      const d = (self.__zpwGpuDevices || [])[0];
      if (!d) return 0;
      d.dispatchEvent(new GPUUncapturedErrorEvent('uncapturederror', { error: new GPUOutOfMemoryError('e2e: no memory left') }));
      return 1;
    }).catch(() => 0);
  }
  await page.waitForSelector('#reload-box:not([hidden])', { timeout: 30_000 }).catch(() => {});
  const oom = await page.evaluate(() => ({ visible: !document.getElementById('reload-box').hidden, kind: document.getElementById('reload-box').dataset.kind,
    text: document.getElementById('reload-text').textContent, status: document.getElementById('status').textContent }));
  log(`GPU out-of-memory event in the Worker: ${oom.text.replace(/\s+/g, ' ')}`);
  check('a GPU out-of-memory error in the Worker is reported at once as out of memory, with Reload model', dispatched === 1 && oom.visible
    && oom.kind === 'oom' && /^Out of memory/.test(oom.text) && /wgpu error: Out of Memory/.test(oom.text) && /Out of memory/.test(oom.status), JSON.stringify(oom));
  await page.click('#reload-model');
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const again = await askAndWait(page, { question: QUESTION, ratio: 1 });
  check('after Reload model the page answers again, the table kept', again.error === null && again.answer === expected
    && (await rowsOf(page)).length === rowsBefore + 1, again.error || again.answer);

  // ---- image inputs (one tile and the random method: the encodes stay short)
  await page.selectOption('#grid', '1');
  await page.selectOption('#method', 'random');
  const random = { method: 'random', budget: 'per-tile', seed: SEED };
  await page.click('[data-sample="astronaut.jpg"]');
  await waitImage(page, /astronaut\.jpg/);
  let wi = await waitRanked(page, random);
  check('a sample photo from the row loads and is ranked', wi.error === null && /astronaut/.test(await page.textContent('#image-name')), wi.error || '');
  await giveImage(page, 'drop', { url: '/assets/samples/coffee.jpg', name: 'dropped-coffee.jpg', type: 'image/jpeg' });
  await waitImage(page, /dropped-coffee\.jpg/);
  wi = await waitRanked(page, random);
  check('an image dropped on the picture loads and is ranked', wi.error === null, wi.error || '');
  await giveImage(page, 'paste', { url: '/assets/samples/rocket.jpg', name: 'rocket-pasted.jpg', type: 'image/jpeg' });
  await waitImage(page, /rocket-pasted\.jpg/);
  wi = await waitRanked(page, random);
  check('a pasted image loads and is ranked', wi.error === null, wi.error || '');
  await giveImage(page, 'drop', { name: 'huge.png', type: 'image/png', canvas: { w: 3000, h: 1200 } });
  await waitImage(page, /huge\.png/);
  wi = await waitRanked(page, random);
  const huge = await page.evaluate(() => [document.getElementById('image-name').textContent, document.getElementById('preview').naturalWidth,
    document.getElementById('preview').naturalHeight]);
  check('a huge image is downscaled to 2048 px while decoding, and says so', wi.error === null && /downscaled from 3000×1200 to 2048×819/.test(huge[0])
    && huge[1] === 2048 && huge[2] === 819, `${huge.join(' ')} ${wi.error || ''}`);
  await giveImage(page, 'drop', { name: 'pic.webp', type: 'image/webp', canvas: { w: 300, h: 200 } });
  await waitImage(page, /pic\.webp/);
  wi = await waitRanked(page, random);
  check('a WebP image (which the model\'s decoder does not read) is converted to PNG and ranked', wi.error === null
    && /converted to PNG/.test(await page.textContent('#image-name')), wi.error || await page.textContent('#image-name'));
  // a JPEG whose EXIF orientation (6) says "turn 90°": the model must get the upright picture the
  // browser shows (tests/e2e/exif-orientation-6.jpg: chelsea at 90x60 saved by Pillow with orientation 6)
  await giveImage(page, 'drop', { url: '/tests/e2e/exif-orientation-6.jpg', name: 'turned.jpg', type: 'image/jpeg' });
  await waitImage(page, /turned\.jpg/);
  wi = await waitRanked(page, random);
  const turned = await page.evaluate(() => ({ name: document.getElementById('image-name').textContent,
    shown: [document.getElementById('preview').naturalWidth, document.getElementById('preview').naturalHeight],
    model: [window.__zpw.state.encoding.image_width, window.__zpw.state.encoding.image_height] }));
  check('a JPEG with an EXIF orientation reaches the model upright, as the browser shows it', wi.error === null && /EXIF/.test(turned.name)
    && turned.shown.join('x') === '60x90' && turned.model.join('x') === '60x90', JSON.stringify(turned));
  await giveImage(page, 'paste', { name: 'notes.txt', type: 'text/plain', url: '/README.md' });
  await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 30_000 });
  const notImage = await page.evaluate(() => [document.getElementById('error').textContent, document.getElementById('image-name').textContent]);
  check('pasting a file that is no image changes nothing (a text file is not taken as an image)',
    /notes\.txt/.test(notImage[0]) && /cannot read this file as an image/.test(notImage[0]) && /turned\.jpg/.test(notImage[1]), notImage.join(' | '));

  // ---- slider redraw time at 1088 tokens (17 tiles x 64): a synthetic layout over the photo
  await page.click('[data-sample="photo.png"]');
  await waitImage(page, /photo\.png/);
  await waitRanked(page, random);
  const redraw = await page.evaluate(() => {
    const img = document.getElementById('preview');
    const [W, H] = [img.naturalWidth, img.naturalHeight];
    const rects = [];
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) for (let hb = 0; hb < 8; hb++) for (let wb = 0; wb < 8; wb++) {
      rects.push([((c * 8 + wb) * W) / 32, ((r * 8 + hb) * H) / 32, W / 32, H / 32]);
    }
    for (let hb = 0; hb < 8; hb++) for (let wb = 0; wb < 8; wb++) rects.push([(wb * W) / 8, (hb * H) / 8, W / 8, H / 8]);
    const n = rects.length;
    let s = 12345;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const order = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
    const scores = order.map(() => rnd());
    const steps = order.map((t) => ({ token: t, score: scores[t], weight: 1, distance: rnd() }));
    window.__zpw.setSynthetic({ tiles: 17, rows: 4, cols: 4, tokens_per_tile: 64, visual_tokens: n, grid_tokens: 1024,
      image_width: W, image_height: H, token_rects: rects }, { method: 'synthetic', budget: 'per-tile', order, scores, steps, warnings: [], params: {} });
    const slider = document.getElementById('keep-ratio');
    const ov = document.getElementById('overlay');
    const ctx = ov.getContext('2d');
    const out = {};
    for (const mode of ['kept', 'order']) {
      const sel = document.getElementById('overlay-mode');
      sel.value = mode;
      sel.dispatchEvent(new Event('change'));
      const times = [];
      let wrong = 0;
      for (let i = 0; i < 80; i++) {
        const v = (0.01 + ((i * 37) % 99) / 100).toFixed(2);
        const t0 = performance.now();
        slider.value = v;
        slider.dispatchEvent(new Event('input', { bubbles: true }));
        ctx.getImageData(0, 0, 1, 1); // waits for the canvas to be drawn
        times.push(performance.now() - t0);
        if (Number(ov.dataset.kept) !== Math.max(1, Math.round(n * Number(v)))) wrong += 1;
      }
      times.sort((a, b) => a - b);
      out[mode] = { n, median: times[40], p95: times[76], max: times[79], wrong, state: ov.dataset.state };
    }
    return out;
  });
  log(`slider redraw at ${redraw.kept.n} tokens: kept/pruned median ${redraw.kept.median.toFixed(2)} ms, p95 ${redraw.kept.p95.toFixed(2)} ms, max ${redraw.kept.max.toFixed(2)} ms;`
    + ` pick-order colours median ${redraw.order.median.toFixed(2)} ms, max ${redraw.order.max.toFixed(2)} ms`);
  await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'synthetic-1088.png') });
  check(`a slider move redraws 1088 tokens within one frame (median ${redraw.kept.median.toFixed(2)} ms <= 16 ms), the right count every time`,
    redraw.kept.n === 1088 && redraw.kept.state === 'ranked' && redraw.kept.median <= 16 && redraw.kept.wrong === 0 && redraw.order.wrong === 0,
    JSON.stringify(redraw));
}

// The page's default: the built-in model (assets/builtin-model, trained by src/bin/train.rs). The page
// opens on it with a held-out scene and that scene's question; answers equal the native CLI's, and
// at full budget the generator's true answer, which the comparison table marks; a small keep ratio
// is compared with the CLI too; the accuracy plot is shown.
async function builtinModel(context, base, browser, noIsoBase) {
  const BUILTIN = 'assets/builtin-model';
  const scenes = JSON.parse(readFileSync(path.join(ROOT, 'assets/scenes/scenes.json'), 'utf8'));
  const p = await context.newPage();
  p.on('pageerror', (e) => check('no uncaught errors in the built-in model page', false, String(e)));
  await p.goto(pageUrl(base));
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const status = await p.textContent('#status');
  check('the page opens with the built-in model', /builtin-model \(built-in\)/.test(status)
    && (await p.getAttribute('#status', 'data-state')) === 'ready', status);
  check('the model note says what the built-in model knows', /synthetic scenes/.test(await p.textContent('#model-note'))
    && await p.isVisible('#model-note'));
  // Backend: Auto takes the CPU path on a software adapter (SwiftShader here) and says why; the
  // adapter, its f16 support and limits are in Model details
  const fallbackAdapter = await p.evaluate(async () => {
    const a = navigator.gpu && await navigator.gpu.requestAdapter();
    return a ? Boolean(a.isFallbackAdapter || (a.info && a.info.isFallbackAdapter)) : null;
  });
  const details = JSON.parse(await p.textContent('#info'));
  const autoBackend = await p.getAttribute('#status', 'data-backend');
  if (fallbackAdapter === true) {
    check('Backend Auto on a software WebGPU adapter loads on the CPU and says why', autoBackend === 'cpu (flex)'
      && /on the CPU, (one thread|\d+ threads): Auto: the WebGPU adapter \([^)]*\) is a software one/.test(status) && details.backend_choice === 'auto', status);
  } else {
    check('Backend Auto on a hardware adapter (or none) loads where it should', autoBackend === (fallbackAdapter === false ? 'webgpu' : 'cpu (flex)'), status);
  }
  // this server isolates the page (COOP/COEP): the CPU path gets the threaded build, one thread per core
  const cores = await p.evaluate(() => navigator.hardwareConcurrency);
  check('on the CPU path of a cross-origin isolated page the threaded SIMD build runs, one thread per core; on WebGPU the one-thread SIMD build',
    autoBackend === 'webgpu' ? details.wasm_build === 'simd'
      : details.wasm_build === 'simd+threads' && details.cpu_threads === cores && (cores < 2 || new RegExp(`on the CPU, ${cores} threads`).test(status)),
    `${details.wasm_build}, ${details.cpu_threads} threads, ${cores} cores: ${status}`);
  check('Model details name the WebGPU adapter with shader-f16 and its buffer limits', fallbackAdapter === null
    || (details.webgpu_adapter && typeof details.webgpu_adapter.name === 'string' && typeof details.webgpu_adapter.shaderF16 === 'boolean'
      && details.webgpu_adapter.maxStorageBufferBindingSize > 0 && details.webgpu_adapter.maxBufferSize > 0), JSON.stringify(details.webgpu_adapter));
  const buttons = await p.$$eval('#scenes button', (bs) => bs.map((b) => b.dataset.scene));
  check('the scene row lists one held-out scene per question kind', buttons.length === 7
    && JSON.stringify(buttons) === JSON.stringify(scenes.map((x) => x.file)), buttons.join(','));
  await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), scenes[0].file, { timeout: 30_000 });
  check('the page starts on the first scene with its question', (await p.inputValue('#question')) === scenes[0].question,
    await p.inputValue('#question'));
  const cases = [[0, 1], [2, 1], [6, 1], [0, 0.1]];
  for (const [i, ratio] of cases) {
    const sc = scenes[i];
    if (i !== 0 || ratio !== 1) {
      await p.click(`[data-scene="${sc.file}"]`);
      await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    }
    const r = await askAndWait(p, { question: sc.question, ratio });
    const args = ['answer', '--model', BUILTIN, '--image', `assets/scenes/${sc.file}`, '--prompt', sc.question,
      '--max-new-tokens', String(MAX_NEW_TOKENS), ...(ratio < 1 ? ['--method', 'zoo', '--keep', String(ratio)] : [])];
    const want = cli(args).trimEnd();
    const truthCell = await p.$eval('#compare-rows tr:last-child td:last-child', (td) => [td.textContent, td.dataset.right]);
    log(`built-in model, ${sc.kind} scene at keep ${ratio}: ${JSON.stringify(sc.question)} -> page ${JSON.stringify(r.answer)}, `
      + `CLI ${JSON.stringify(want)}, truth ${JSON.stringify(sc.answer)}; table: ${truthCell[0]}`);
    check(`built-in model (${sc.kind}, keep ${ratio}): the page's answer equals the CLI's`, r.error === null && r.answer === want,
      `page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} (${show(args)}) ${r.error || ''}`);
    if (ratio === 1) {
      check(`built-in model (${sc.kind}): the full-budget answer is the scene's true answer`, r.answer === sc.answer,
        `${JSON.stringify(r.answer)} vs ${JSON.stringify(sc.answer)}`);
    }
    check(`the table's true-answer column shows ${sc.answer} and marks the answer`, truthCell[0].startsWith(sc.answer)
      && truthCell[1] === String(r.answer === sc.answer), truthCell.join(' / '));
  }
  await p.locator('.image-panel').screenshot({ path: path.join(OUT, 'builtin-scene.png') });
  // a photo asked the last scene's question is not graded against that scene
  await giveImage(p, 'drop', { url: '/tests/fixtures/photo.png', name: 'not-a-scene.png', type: 'image/png' });
  await waitImage(p, /not-a-scene\.png/);
  const photoAsk = await askAndWait(p, { question: scenes[0].question, ratio: 1 });
  const photoTruth = await p.$eval('#compare-rows tr:last-child td:last-child', (td) => [td.textContent, td.dataset.right || '']);
  check('a new image clears the scene\'s true answer: a photo asked the scene\'s question is not graded', photoAsk.error === null
    && photoTruth[0] === '–' && photoTruth[1] === '', `${photoTruth.join(' / ')} ${photoAsk.error || ''}`);
  const plot = await p.$eval('#accuracy-plot', (im) => [im.complete, im.naturalWidth]);
  check('the accuracy-vs-keep plot is shown', plot[0] && plot[1] > 0, plot.join(' '));
  await p.screenshot({ path: path.join(OUT, 'builtin-page.png'), fullPage: true });
  // WebGPU can still be forced: the Backend control loads the model again on it, and the URL keeps it
  if (fallbackAdapter !== null) {
    const rowsBefore = await p.$$eval('#compare-rows tr', (rs) => rs.length);
    await p.click('#model-panel summary');
    await p.selectOption('#backend', 'webgpu');
    await p.waitForFunction(() => document.getElementById('status').dataset.backend === 'webgpu'
      || document.getElementById('download').dataset.state === 'failed', null, { timeout: LOAD_TIMEOUT });
    const forced = await p.textContent('#status');
    const again = await askAndWait(p, { question: scenes[0].question, ratio: 1 });
    const forcedBuild = await p.getAttribute('#status', 'data-wasm-build');
    check('Backend: WebGPU loads the model on WebGPU (the one-thread SIMD build) even on a software adapter, and it answers as on the CPU',
      (await p.getAttribute('#status', 'data-backend')) === 'webgpu' && forcedBuild === 'simd' && /backend: WebGPU/.test(forced) && p.url().includes('backend=webgpu')
      && again.error === null && again.answer === photoAsk.answer && await p.$$eval('#compare-rows tr', (rs) => rs.length) === rowsBefore + 1,
      `${forced} · ${forcedBuild} · ${p.url()} · ${JSON.stringify(again)}`);
  }
  await p.close();
  if (fallbackAdapter !== null) await bufferLimits(context, base);
  await plainBuild(context, base, scenes[0]);
  await isolation(browser, base, noIsoBase, scenes[0]);

  // a production load (no ?test=1): the test hooks are neither fetched nor defined
  const prod = await context.newPage();
  const prodRequests = [];
  prod.on('request', (r) => prodRequests.push(new URL(r.url()).pathname));
  prod.on('pageerror', (e) => check('no uncaught errors in the production page', false, String(e)));
  await prod.goto(`${base}/www/`);
  await prod.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const hooks = await prod.evaluate(() => typeof window.__zpw);
  check('a page opened without ?test=1 loads no test hooks (window.__zpw undefined, test-hooks.js not fetched)', hooks === 'undefined'
    && !prodRequests.some((u) => u.endsWith('/test-hooks.js')) && (await prod.getAttribute('#status', 'data-state')) === 'ready',
    `${hooks}; ${prodRequests.filter((u) => u.startsWith('/www/')).join(' ')}`);
  await prod.close();
}

// A server without COOP/COEP (a static host): the page registers coi-sw.js, reloads once through
// it and is then isolated, so the CPU path runs the threaded build; with the service worker skipped
// (?coi=0, tests only) the page is not isolated and runs the one-thread SIMD build. Both answer the
// first scene as the CLI does. Each in a context of its own (a service worker outlives its page).
async function isolation(browser, base, noIsoBase, sc) {
  const want = cli(['answer', '--model', 'assets/builtin-model', '--image', `assets/scenes/${sc.file}`, '--prompt', sc.question,
    '--max-new-tokens', String(MAX_NEW_TOKENS)]).trimEnd();
  // opens `url` in a context of its own, asks the scene's question: what the checks below read
  const run = async (url, what) => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const p = await ctx.newPage();
    p.on('pageerror', (e) => check(`no uncaught errors on the page ${what}`, false, String(e)));
    await p.goto(url);
    await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
    const details = JSON.parse((await p.textContent('#info')) || '{}');
    const status = await p.textContent('#status');
    const isolated = await p.evaluate(() => self.crossOriginIsolated);
    const controlled = await p.evaluate(() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller));
    await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    const r = await askAndWait(p, { question: sc.question, ratio: 1 });
    await ctx.close();
    const answered = r.error === null && r.answer === want;
    const detail = `isolated ${isolated}, controlled ${controlled}, ${details.wasm_build} x${details.cpu_threads}, ${status}: `
      + `page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`;
    return { details, status, isolated, controlled, answered, detail };
  };
  // an isolated page whose thread pool cannot start (?threads=0, tests only: the pool refuses it)
  // falls back to the one-thread SIMD build, says why, and answers
  let x = await run(pageUrl(base, 'backend=cpu&threads=0'), 'whose threads fail');
  check('when the thread pool cannot start, the page loads the one-thread SIMD build instead, says why, and answers as the CLI',
    x.details.wasm_build === 'simd' && x.details.cpu_threads === 1 && /on the CPU, one thread: .*threads could not start/.test(x.status)
      && x.answered, x.detail);
  // without the service worker (first, before one is registered for this origin)
  x = await run(pageUrl(noIsoBase, 'backend=cpu&coi=0'), 'without COOP/COEP');
  check('a page that is not cross-origin isolated runs the one-thread SIMD build, says so, and answers as the CLI',
    !x.isolated && !x.controlled && x.details.wasm_build === 'simd' && x.details.cpu_threads === 1 && /on the CPU, one thread/.test(x.status)
      && x.answered, x.detail);
  x = await run(pageUrl(noIsoBase, 'backend=cpu'), 'without COOP/COEP');
  check('served without COOP/COEP, the page isolates itself through its service worker (one reload) and the CPU path runs the threaded build',
    x.isolated && x.controlled && x.details.wasm_build === 'simd+threads' && x.details.cpu_threads >= 1 && x.answered, x.detail);
}

// The build without SIMD (pkg/plain/, for browsers without WebAssembly SIMD; ?wasm=plain, tests
// only, asks for it): it loads the built-in model and answers the first scene as the CLI does.
async function plainBuild(context, base, sc) {
  const p = await context.newPage();
  await p.goto(pageUrl(base, 'wasm=plain'));
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const details = JSON.parse((await p.textContent('#info')) || '{}');
  await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
  const r = await askAndWait(p, { question: sc.question, ratio: 1 });
  const want = cli(['answer', '--model', 'assets/builtin-model', '--image', `assets/scenes/${sc.file}`, '--prompt', sc.question,
    '--max-new-tokens', String(MAX_NEW_TOKENS)]).trimEnd();
  check('the plain build (no SIMD, for older browsers) loads and answers as the CLI', details.wasm_build === 'plain' && r.error === null
    && r.answer === want, `${details.wasm_build}: page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`);
  await p.close();
}

// A WebGPU device whose buffers are small (?maxbuf=, tests only, lowers the adapter's limit): on
// tiny_single (embed_tokens 92 160 bytes in f32, lm_head tied to it, every other tensor <= 32 768)
// a 50 000-byte limit splits embed_tokens in two (lookup and logits) and the answer is the CLI's; a 30 000-byte one cannot
// hold the connector, which the page names before it fetches model.safetensors.
async function bufferLimits(context, base) {
  const SINGLE = 'tests/fixtures/tiny_single';
  const want = cli(['answer', '--model', SINGLE, '--image', IMAGE, '--prompt', QUESTION, '--max-new-tokens', String(MAX_NEW_TOKENS)]).trimEnd();
  const p = await context.newPage();
  await p.goto(pageUrl(base, `model=../${SINGLE}/&backend=webgpu&maxbuf=50000`));
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const status = await p.textContent('#status');
  const details = JSON.parse((await p.textContent('#info')) || '{}');
  await waitImage(p, /photo\.png/);
  const r = await askAndWait(p, { question: QUESTION, ratio: 1 });
  check('on WebGPU with 50 000-byte buffers the (tied) vocabulary matrix is split in two and the answer is the CLI\'s',
    /backend: WebGPU/.test(status) && /split to fit this GPU's buffers: model\.text_model\.embed_tokens\.weight in 2\)/.test(status)
      && (details.split_tensors || []).length === 1 && r.error === null && r.answer === want, `${status} · page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`);
  await p.close();
  const q = await context.newPage();
  const fetched = [];
  q.on('request', (req) => fetched.push(new URL(req.url()).pathname));
  await q.goto(pageUrl(base, `model=../${SINGLE}/&backend=webgpu&maxbuf=30000`));
  await q.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const failed = await q.textContent('#status');
  check('a model with a tensor larger than the device\'s buffers is refused before its weights are fetched, naming the tensor and the limit',
    (await q.getAttribute('#status', 'data-state')) === 'failed' && /model\.connector\.modality_projection\.proj\.weight/.test(failed)
      && /largest buffer \(30000 bytes/.test(failed) && !fetched.some((u) => u.endsWith('model.safetensors')), `${failed} · fetched ${fetched.filter((u) => u.includes(SINGLE)).join(' ')}`);
  await q.close();
}

// Models: the hub buttons against the fake hub (progress, a failure + Retry, the Cache API on the
// second load, Clear), and local files.
async function modelLoading(context, base, expected) {
  const p2 = await context.newPage();
  p2.on('pageerror', (e) => check('no uncaught errors in the model page', false, String(e)));
  await p2.goto(pageUrl(base, 'hub=/fakehub/'));
  await p2.waitForSelector('#status[data-state="ready"]', { timeout: LOAD_TIMEOUT });
  await p2.evaluate(() => caches.delete('zoo-prune-web-models-v2'));
  await p2.evaluate(() => { document.getElementById('model-panel').open = true; });
  const name = 'SmolVLM-256M-Instruct';
  const hubLoad = `.hub-load[data-name="HuggingFaceTB/${name}"]`;
  const cacheKeys = () => p2.evaluate(async () => (await (await caches.open('zoo-prune-web-models-v2')).keys()).map((r) => new URL(r.url).pathname));
  // the hub announces one byte more than it sends: refused, not cached, and Retry asks the hub again
  FAKEHUB.misannounce.add(`${name}/model.safetensors`);
  let n0 = FAKEHUB.log.length;
  await p2.click(hubLoad);
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  FAKEHUB.misannounce.clear();
  const mis = await p2.textContent('#download-title');
  const keysMis = await cacheKeys();
  check('a file whose length is not what the hub announced for the commit is refused, not cached, and its manifest dropped',
    /model\.safetensors is \d+ bytes but the hub announced \d+ for this commit/.test(mis) && keysMis.length === 4
      && keysMis.every((k) => k.includes(`/resolve/${FAKEHUB.sha[name]}/`)), `${mis} · ${keysMis.join(' ')}`);
  // then a 503 on the weights
  FAKEHUB.failOnce.add(`${name}/model.safetensors`);
  await p2.click('#download-retry');
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const failed = await p2.evaluate(() => ({ title: document.getElementById('download-title').textContent,
    retry: !document.getElementById('download-retry').hidden, status: document.getElementById('status').dataset.state }));
  log(`hub download with a 503: ${failed.title}`);
  check('a failed download says what failed, keeps the current model, offers Retry',
    /HTTP 503/.test(failed.title) && /model\.safetensors/.test(failed.title) && /current model stays in use/.test(failed.title) && failed.retry && failed.status === 'ready',
    JSON.stringify(failed));
  await p2.click('#download-retry');
  await p2.waitForFunction((nm) => document.getElementById('status').dataset.state === 'ready' && document.getElementById('status').textContent.includes(nm)
    || document.getElementById('download').dataset.state === 'failed', name, { timeout: LOAD_TIMEOUT });
  const files = () => p2.$$eval('#download-files li', (ls) => ls.map((l) => ({ file: l.dataset.file, from: l.dataset.from, loaded: Number(l.dataset.loaded),
    total: Number(l.dataset.total), done: l.dataset.done === '1', bar: l.querySelector('progress').value, text: l.querySelector('.bytes').textContent })));
  const got1 = await files();
  const retryReqs = FAKEHUB.log.slice(n0);
  log(`hub requests (wrong length, 503, retry): ${retryReqs.join(', ')}`);
  const size = statSync(path.join(ROOT, MODEL, 'model.safetensors')).size;
  const st1 = got1.find((f) => f.file === 'model.safetensors');
  const wantReqs = [`api ${name}`, ...FAKEHUB_FILES.map((f) => `${name}/${f}`), `api ${name}`, `${name}/model.safetensors`, `${name}/model.safetensors`];
  check('Retry loads the model: the weights downloaded with their byte count, the small files from the cache, the hub asked for the commit only when none was kept',
    st1 && st1.from === 'network' && st1.loaded === size && st1.total === size && st1.bar === 1 && got1.length === 5
      && got1.filter((f) => f.file !== 'model.safetensors').every((f) => f.from === 'cache' && f.done)
      && JSON.stringify(retryReqs) === JSON.stringify(wantReqs),
    `${JSON.stringify(got1)} · requests ${retryReqs.join(', ')}`);
  const pinned = JSON.parse(await p2.textContent('#info')).hub_revision;
  check('the hub model is pinned to the commit the hub named: shown in the status line and Model details, every file cached under it',
    pinned && pinned.sha === FAKEHUB.sha[name] && pinned.repo === `HuggingFaceTB/${name}`
      && (await p2.textContent('#status')).includes(`hub commit ${FAKEHUB.sha[name].slice(0, 7)}`)
      && (await cacheKeys()).filter((k) => k.includes(name)).length === 6, JSON.stringify(pinned));
  const status2 = await p2.textContent('#status');
  check('the hub model is in use, the status line names it with its size and adapter', status2.includes(name) && /parameters/.test(status2) && /backend: /.test(status2), status2);
  await p2.screenshot({ path: path.join(OUT, 'model-download.png'), fullPage: false });
  // this page opened on the built-in model and its first scene: ask about the photo the CLI used
  await p2.click('[data-sample="photo.png"]');
  await p2.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 30_000 });
  const r2 = await askAndWait(p2, { question: QUESTION, ratio: 1 });
  check('the downloaded model answers (the fake hub serves the test model: the CLI\'s answer)', r2.error === null && r2.answer === expected, r2.error || r2.answer);

  // second visit: nothing downloaded
  await p2.reload();
  await p2.waitForSelector('#status[data-state="ready"]', { timeout: LOAD_TIMEOUT });
  await p2.evaluate(() => { document.getElementById('model-panel').open = true; });
  n0 = FAKEHUB.log.length;
  await p2.click(hubLoad);
  await p2.waitForFunction((nm) => document.getElementById('status').textContent.includes(nm) || document.getElementById('download').dataset.state === 'failed',
    name, { timeout: LOAD_TIMEOUT });
  const got2 = await files();
  check('the second visit loads every file from the browser cache, no request to the hub', FAKEHUB.log.length === n0 && got2.length === 5
    && got2.every((f) => f.from === 'cache'), `${FAKEHUB.log.slice(n0).join(', ')}; ${JSON.stringify(got2.map((f) => f.from))}`);
  await p2.waitForFunction(() => document.getElementById('cache-info').dataset.files === '5', null, { timeout: 30_000 }).catch(() => {});
  const cachedBefore = await p2.getAttribute('#cache-info', 'data-files');
  await p2.click('#clear-cache');
  await p2.waitForFunction(() => document.getElementById('cache-info').dataset.files === '0', null, { timeout: 30_000 });
  const left = await p2.evaluate(async () => (await caches.has('zoo-prune-web-models-v2')) ? (await (await caches.open('zoo-prune-web-models-v2')).keys()).length : 0);
  check('Clear cached models empties the cache', cachedBefore === '5' && left === 0, `${cachedBefore} files before, ${left} after`);

  // a slow download: its progress bar moves through intermediate values; Cancel ends it, keeps the
  // current model, caches the complete small files but not the partial weights
  const name5 = 'SmolVLM-500M-Instruct';
  FAKEHUB.slow.add(`${name5}/model.safetensors`);
  await p2.click(`.hub-load[data-name="HuggingFaceTB/${name5}"]`);
  await p2.waitForFunction(() => {
    const li = document.querySelector('#download-files li[data-file="model.safetensors"]');
    return li && Number(li.dataset.loaded) > 0 && Number(li.dataset.loaded) < Number(li.dataset.total);
  }, null, { timeout: 60_000, polling: 20 });
  const mid = await p2.$eval('#download-files li[data-file="model.safetensors"]', (l) => ({ loaded: Number(l.dataset.loaded),
    total: Number(l.dataset.total), bar: l.querySelector('progress').value, text: l.querySelector('.bytes').textContent }));
  log(`slow download, mid-way: ${JSON.stringify(mid)}`);
  await p2.click('#download-cancel');
  const cancelled = await p2.evaluate(async (nm) => {
    const c = await caches.open('zoo-prune-web-models-v2');
    const keys = (await c.keys()).map((r) => new URL(r.url).pathname).filter((u) => u.includes(nm) && !u.endsWith('/zoo-prune-web-manifest.json'));
    return { state: document.getElementById('download').dataset.state, title: document.getElementById('download-title').textContent,
      status: document.getElementById('status').dataset.state, retry: !document.getElementById('download-retry').hidden, keys };
  }, name5);
  FAKEHUB.slow.clear();
  check('a download shows its bytes as they arrive (a bar between 0 and 1)', mid.total === statSync(path.join(ROOT, MODEL, 'model.safetensors')).size
    && mid.bar > 0 && mid.bar < 1 && / of /.test(mid.text), JSON.stringify(mid));
  check('Cancel ends a download: the current model stays, the partial weights are not cached, Retry offered', cancelled.state === 'cancelled'
    && cancelled.status === 'ready' && cancelled.retry && cancelled.keys.length === 4 && !cancelled.keys.some((k) => k.endsWith('model.safetensors')),
    JSON.stringify(cancelled));

  // local files: a whole folder loads; a partial one is refused with the missing names
  const local = ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json'].map((f) => path.join(ROOT, MODEL, f));
  await p2.setInputFiles('#model-files', local);
  await p2.waitForFunction(() => /local files/.test(document.getElementById('status').textContent) || document.getElementById('download').dataset.state === 'failed',
    null, { timeout: LOAD_TIMEOUT });
  check('Load model from local files loads a model folder\'s files', /local files/.test(await p2.textContent('#status')), await p2.textContent('#status'));
  // dropped on the model panel: the three required files only (the processor takes SmolVLM's defaults)
  await p2.evaluate(async (urls) => {
    const dt = new DataTransfer();
    for (const u of urls) dt.items.add(new File([await (await fetch(u)).blob()], u.split('/').pop()));
    document.getElementById('model-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => `/${MODEL}/${f}`));
  await p2.waitForFunction(() => document.getElementById('download').dataset.state !== 'loading', null, { timeout: LOAD_TIMEOUT });
  const dropped = await p2.evaluate(() => [document.getElementById('status').textContent, document.getElementById('download-title').textContent,
    [...document.querySelectorAll('#download-files li')].map((l) => l.dataset.file).join(',')]);
  check('model files dropped on the model panel load (required files only)', /local files/.test(dropped[0]) && /loaded/.test(dropped[1])
    && dropped[2] === 'config.json,tokenizer.json,model.safetensors', dropped.join(' | '));
  await p2.click('#builtin-load');
  await p2.waitForFunction(() => /built-in/.test(document.getElementById('status').textContent) && document.getElementById('status').dataset.state === 'ready',
    null, { timeout: LOAD_TIMEOUT }).catch(() => {});
  check('"Built-in model" brings back the built-in model', /builtin-model \(built-in\)/.test(await p2.textContent('#status')) && await p2.isVisible('#model-note'),
    await p2.textContent('#status'));
  await p2.setInputFiles('#model-files', [local[0], local[2]]);
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: 30_000 });
  const partial = await p2.textContent('#download-title');
  check('local files without model.safetensors: a clear message, the model stays', /model\.safetensors missing/.test(partial)
    && (await p2.getAttribute('#status', 'data-state')) === 'ready', partial);
  await p2.close();
}

// A PNG's header rewritten to say width x height (its IHDR CRC fixed: the size is read, not the checksum error).
function pngWithSize(file, width, height) {
  const b = Buffer.from(readFileSync(file));
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
}

// Bad input and impatience at scale: images the browser shows but the model's decoder refuses, an
// image too large to decode, ten images given at once, controls changed faster than the Worker
// ranks, the slider dragged during an answer, Stop then Ask at once, a model loaded during an
// answer. Nothing may be lost: the previous image, its overlay and the comparison table stay.
async function stress(page, { expected }) {
  const look = () => page.evaluate(() => ({
    name: document.getElementById('image-name').textContent,
    overlay: document.getElementById('overlay').dataset.state,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    encodes: Number(document.body.dataset.encodes || 0),
    ranks: Number(document.body.dataset.ranks || 0),
    version: window.__zpw.state.imageVersion,
    rows: [...document.querySelectorAll('#compare-rows tr')].map((r) => r.textContent),
  }));
  const waitError = (re) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById('error').textContent)
    && !document.getElementById('error').hidden, re.source, { timeout: 60_000 });
  const random = { method: 'random', budget: 'per-tile', seed: SEED };
  await setControls(page, random);
  await page.selectOption('#grid', '0'); // the layout `expected` was computed with (earlier sections change it)
  await page.click('[data-sample="photo.png"]');
  await waitImage(page, /photo\.png/);
  await waitRanked(page, random);
  const before = await look();

  // a truncated PNG: Chromium shows what it has, our decoder (as the CLI) refuses it
  const square = readFileSync(path.join(ROOT, 'tests/fixtures/photo_square.png'));
  await page.setInputFiles('#image-file', { name: 'truncated.png', mimeType: 'image/png', buffer: square.subarray(0, Math.floor(square.length * 0.6)) });
  await waitError(/truncated\.png/);
  let now = await look();
  log(`truncated PNG -> ${now.error}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'stress-truncated.png') });
  check('a truncated PNG the browser can show is refused by name with the decoder\'s reason', /model's decoder cannot read it/.test(now.error)
    && /broken or truncated/.test(now.error) && /previous image is kept/.test(now.error), now.error);
  check('after the truncated PNG the previous image, its overlay and ranking stay (nothing encoded)', /photo\.png/.test(now.name)
    && now.overlay === 'ranked' && now.encodes === before.encodes && now.version === before.version, JSON.stringify({ ...now, rows: now.rows.length }));

  // 40000 x 40000: the browser cannot decode it; the page says it is too large, with the size and the limit
  await page.setInputFiles('#image-file', { name: 'giant.png', mimeType: 'image/png', buffer: pngWithSize(path.join(ROOT, IMAGE), 40000, 40000) });
  await waitError(/giant\.png/);
  now = await look();
  log(`40000 x 40000 PNG -> ${now.error}`);
  check('a 40000 x 40000 image is called too large, with its size and the limit; the previous image stays',
    /too large \(40000x40000\)/.test(now.error) && /64 megapixels/.test(now.error) && /previous image is kept/.test(now.error)
    && /photo\.png/.test(now.name) && now.overlay === 'ranked', now.error);

  // ten images given at once: only the last is taken and encoded
  await page.evaluate(async () => {
    const input = document.getElementById('image-file');
    const files = [];
    for (let i = 0; i < 10; i++) {
      const c = document.createElement('canvas');
      c.width = 40 + 8 * i;
      c.height = 30 + 4 * i;
      const ctx = c.getContext('2d');
      ctx.fillStyle = `hsl(${36 * i}, 80%, 50%)`;
      ctx.fillRect(0, 0, c.width, c.height);
      files.push(new File([await new Promise((r) => c.toBlob(r, 'image/png'))], `burst-${i}.png`, { type: 'image/png' }));
    }
    for (const f of files) {
      const dt = new DataTransfer();
      dt.items.add(f);
      input.files = dt.files;
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }
  });
  await waitImage(page, /burst-9\.png/);
  await waitRanked(page, random);
  await page.waitForFunction(() => !document.body.dataset.intakeBusy, null, { timeout: 60_000 });
  now = await look();
  check('ten images given at once: the page ends on the last, which alone is encoded', /burst-9\.png/.test(now.name) && now.error === null
    && now.encodes === before.encodes + 1 && now.version === before.version + 1 && now.overlay === 'ranked',
    `${now.name}; ${now.encodes - before.encodes} encodes, ${now.version - before.version} new images; ${now.error || ''}`);

  // five methods chosen at once: the Worker skips the rankings nobody will see
  const ranks0 = now.ranks;
  await page.evaluate(() => {
    const m = document.getElementById('method');
    for (const v of ['zoo', 'divprune', 'prompt-aware', 'random', 'feature-norm']) {
      m.value = v;
      m.dispatchEvent(new Event('change', { bubbles: true }));
    }
  });
  const fn = await waitRanked(page, { ...random, method: 'feature-norm' });
  now = await look();
  check('five methods chosen at once: at most the first and the last are ranked', fn.error === null && now.ranks - ranks0 <= 2
    && now.ranks - ranks0 >= 1, `${now.ranks - ranks0} rankings; ${fn.error || ''}`);

  // moving the slider copies nothing: the image's bytes travel only with a request to the Worker
  const copies = await page.evaluate(() => {
    const img = window.__zpw.state.image;
    let n = 0;
    const own = img.slice;
    img.slice = function (...a) { n += 1; return own.apply(this, a); };
    const s = document.getElementById('keep-ratio');
    for (let i = 0; i < 20; i++) {
      s.value = String(0.05 * (i + 1));
      s.dispatchEvent(new Event('input', { bubbles: true }));
    }
    delete img.slice;
    return n;
  });
  check('moving the slider copies nothing (20 moves, no copy of the image)', copies === 0, `${copies} copies`);

  // the ranking key holds the question only for the methods that read it
  const typedState = async (method) => {
    await setControls(page, { ...random, method });
    await waitRanked(page, { ...random, method });
    await page.fill('#question', 'Is there a dog in the picture?'); // input events only: no re-rank yet
    const typed = await page.evaluate(() => document.getElementById('overlay').dataset.state);
    await page.dispatchEvent('#question', 'change');
    const w = await waitRanked(page, { ...random, method });
    await page.fill('#question', QUESTION);
    await page.dispatchEvent('#question', 'change');
    await waitRanked(page, { ...random, method });
    return { typed, error: w.error };
  };
  const fastvTyped = await typedState('fastv');
  const normTyped = await typedState('feature-norm');
  check('another question typed: a FastV overlay turns stale (ranked again on change), a feature-norm one stays current',
    fastvTyped.typed === 'stale' && normTyped.typed === 'ranked' && fastvTyped.error === null, JSON.stringify({ fastvTyped, normTyped }));

  // the slider dragged through an answer: the answer is the one asked for, the overlay follows the slider
  await page.click('[data-sample="photo.png"]');
  await waitImage(page, /photo\.png/);
  await waitRanked(page, { ...random, method: 'feature-norm' });
  await page.fill('#question', QUESTION);
  await page.fill('#max-tokens', String(MAX_NEW_TOKENS));
  await setRatio(page, 1);
  const rows0 = (await look()).rows.length;
  await page.click('#ask');
  const moves = await page.evaluate(async () => {
    const s = document.getElementById('keep-ratio');
    let i = 0;
    while (['answering', ''].includes(document.getElementById('answer').dataset.state || '') && i < 5000) {
      s.value = String(0.05 + (i % 19) * 0.05);
      s.dispatchEvent(new Event('input', { bubbles: true }));
      i += 1;
      await new Promise((r) => setTimeout(r, 10));
    }
    return { i, last: Number(s.value) };
  });
  await page.waitForFunction(() => ['done', 'done-empty', 'stopped'].includes(document.getElementById('answer').dataset.state)
    || !document.getElementById('error').hidden, null, { timeout: ANSWER_TIMEOUT });
  const dragged = await page.evaluate(() => ({ answer: document.getElementById('answer').textContent,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    kept: Number(document.getElementById('overlay').dataset.kept), total: Number(document.getElementById('overlay').dataset.total) }));
  const rowsAfterDrag = await rowsOf(page);
  const lastRow = rowsAfterDrag[rowsAfterDrag.length - 1] || {};
  log(`slider moved ${moves.i} times during the answer; overlay ${dragged.kept}/${dragged.total}; row kept ${lastRow.kept}`);
  check('the slider dragged during an answer: the answer is the keep-1.0 answer asked for, its row says all tokens were kept',
    moves.i > 3 && dragged.error === null && dragged.answer === expected && rowsAfterDrag.length === rows0 + 1
    && new RegExp(`^${dragged.total}\\b`).test(lastRow.kept), `${moves.i} moves; ${JSON.stringify(dragged)}; row ${JSON.stringify({ ...lastRow, thumb: lastRow.thumb ? '(png)' : '' })}`);
  check('after the drag the overlay keeps what the slider says', dragged.kept === Math.max(1, Math.round(moves.last * dragged.total)),
    `${dragged.kept} of ${dragged.total} at ${moves.last}`);

  // Stop during a long answer, then Ask the moment it is possible
  await setRatio(page, 1);
  await page.fill('#max-tokens', '200');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('answer').textContent.length > 0 || !document.getElementById('error').hidden,
    null, { timeout: ANSWER_TIMEOUT, polling: 20 });
  await page.fill('#max-tokens', String(MAX_NEW_TOKENS));
  await page.click('#stop');
  await page.waitForSelector('#ask:not([disabled])', { timeout: ANSWER_TIMEOUT });
  await page.click('#ask');
  await page.waitForFunction(() => ['done', 'done-empty'].includes(document.getElementById('answer').dataset.state)
    || !document.getElementById('error').hidden, null, { timeout: ANSWER_TIMEOUT });
  const again = await page.evaluate(() => ({ answer: document.getElementById('answer').textContent,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent }));
  const rowsAfterStop = await rowsOf(page);
  check('Stop mid-answer then Ask at once: the new answer is complete and right, both rows in the table', again.error === null
    && again.answer === expected && rowsAfterStop.length === rowsAfterDrag.length + 2, `${JSON.stringify(again)}; ${rowsAfterStop.length} rows`);

  // a model loaded during an answer: the answer ends as stopped, the new model answers, the table stays
  const tableBefore = (await look()).rows;
  await page.fill('#max-tokens', '200');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('answer').textContent.length > 0 || !document.getElementById('error').hidden,
    null, { timeout: ANSWER_TIMEOUT, polling: 20 });
  const local = ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json'].map((f) => path.join(ROOT, MODEL, f));
  await page.setInputFiles('#model-files', local);
  await page.waitForFunction(() => /local files/.test(document.getElementById('status').textContent)
    && document.getElementById('status').dataset.state === 'ready' || document.getElementById('download').dataset.state === 'failed',
    null, { timeout: LOAD_TIMEOUT });
  const swapped = await page.evaluate(() => ({ status: document.getElementById('status').textContent,
    answer: document.getElementById('answer').dataset.state }));
  await page.fill('#max-tokens', String(MAX_NEW_TOKENS));
  const after = await askAndWait(page, { question: QUESTION, ratio: 1 });
  const tableAfter = (await look()).rows;
  log(`model loaded during an answer: ${swapped.status}; the answer was left ${swapped.answer}`);
  check('a model loaded during an answer takes over; the page answers with it, the table kept', /local files/.test(swapped.status)
    && ['stopped', 'done', 'done-empty'].includes(swapped.answer) && after.error === null && after.answer === expected
    && tableAfter.length >= tableBefore.length + 1 && tableBefore.every((r, i) => tableAfter[i] === r),
    `${JSON.stringify(swapped)}; ${after.error || after.answer}; rows ${tableBefore.length} -> ${tableAfter.length}`);
  check('nothing in the stress section lost a table row', tableAfter.length >= before.rows.length && before.rows.every((r, i) => tableAfter[i] === r),
    `${before.rows.length} -> ${tableAfter.length}`);
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  // ZPW_ONLY=builtin: only the built-in model's section (a quick check while working on it)
  const onlyBuiltin = process.env.ZPW_ONLY === 'builtin';
  // ZPW_ONLY=stress: only the stress section (bad input at scale) on the test checkpoint
  const onlyStress = process.env.ZPW_ONLY === 'stress';
  // ZPW_ONLY=models: only model loading (fake hub, local files)
  const onlyModels = process.env.ZPW_ONLY === 'models';
  const expected = onlyBuiltin ? null : expectedAnswer();
  const expectedZoo = onlyBuiltin || onlyStress || onlyModels ? null : expectedAnswer(['--method', 'zoo', '--keep', String(KEEP), '--seed', String(SEED)]);
  const native = {};
  if (!onlyBuiltin && !onlyStress && !onlyModels) {
    for (const m of METHODS) for (const b of BUDGETS) native[`${m}|${b}`] = nativeRanking(m, b);
    log(`native rankings: ${Object.keys(native).length} (CLI, flex), e.g. zoo per-tile ${native['zoo|per-tile'].order.join(',')}`);
  }

  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const noIsoServer = await serve({ isolate: false });
  const noIsoBase = `http://127.0.0.1:${noIsoServer.address().port}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  [browser console] ${m.text()}`); });
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') console.log(`  [worker console] ${m.text()}`); }));

  try {
    if (onlyBuiltin) {
      await builtinModel(context, base, browser, noIsoBase);
      return;
    }
    if (onlyModels) {
      await modelLoading(context, base, expected);
      return;
    }
    // this suite runs on the tiny random test checkpoint (fast on SwiftShader, and its rankings
    // and answers are compared with the CLI's); builtinModel() checks the page's default model
    await page.goto(pageUrl(base, `model=../${MODEL}/&backend=webgpu`));
    const adapter = await page.evaluate(async () => {
      if (!navigator.gpu) return 'no navigator.gpu';
      const a = await navigator.gpu.requestAdapter();
      if (!a) return 'no adapter';
      const i = a.info || {};
      return `${i.vendor || '?'} / ${i.architecture || '?'}${a.isFallbackAdapter || i.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
    });
    log(`page's WebGPU adapter: ${adapter}`);

    const tLoad = Date.now();
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
    const status = await page.textContent('#status');
    log(`model loaded in ${((Date.now() - tLoad) / 1000).toFixed(1)} s: ${status}`);
    const ready = (await page.getAttribute('#status', 'data-state')) === 'ready';
    check('the model of ?model= loads', ready && status.includes(MODEL), status);
    if (!ready) throw new Error('cannot go on without a model');
    log(`model info: ${(await page.textContent('#info')).replace(/\s+/g, ' ')}`);
    const onWebgpu = /backend: WebGPU/.test(status);
    check('the model runs on WebGPU', onWebgpu || process.env.ZPW_ALLOW_CPU === '1', status);
    check('no built-in model note for a model folder given by ?model=', !(await page.isVisible('#model-note')));
    await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 30_000 });
    if (onlyStress) {
      await stress(page, { expected });
      return;
    }

    // count the answer's updates to see it stream
    await page.evaluate(() => {
      window.__answerUpdates = 0;
      new MutationObserver(() => { window.__answerUpdates += 1; })
        .observe(document.getElementById('answer'), { childList: true, characterData: true, subtree: true });
    });
    const methods = await page.$$eval('#method option', (os) => os.map((o) => o.value));
    check('the method menu lists every pruning method', JSON.stringify(methods) === JSON.stringify(METHODS), methods.join(', '));

    // keep ratio 1: every visual token, the unpruned answer
    let tAsk = Date.now();
    let r = await askAndWait(page, { question: QUESTION, ratio: 1 });
    const updates = await page.evaluate(() => window.__answerUpdates);
    log(`answer in ${((Date.now() - tAsk) / 1000).toFixed(1)} s, ${updates} DOM updates: ${JSON.stringify(r.answer)}`);
    log(`timings shown: ${r.timings}`);
    check('no error on the sample question', r.error === null, r.error || '');
    check('the streamed answer (keep 1.0) equals the unpruned CLI answer', r.answer === expected,
      `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);
    check('timings are shown', /encode \d+ ms/.test(r.timings) && /tok\/s/.test(r.timings), r.timings);

    // empty question
    r = await askAndWait(page, { question: '   ' });
    log(`empty question -> ${JSON.stringify(r.error)}`);
    check('an empty question gives a readable error', r.error !== null && /question is empty/i.test(r.error), String(r.error));
    check('the page is usable after the empty question', r.askEnabled);

    // broken image: a few random bytes. The page refuses it before the Worker sees it and keeps
    // the previous image (the wasm decoder's own error is checked in the API section).
    await page.setInputFiles('#image-file', { name: 'broken.png', mimeType: 'image/png', buffer: randomBytes(48) });
    await page.waitForFunction(() => /broken\.png/.test(document.getElementById('error').textContent), null, { timeout: 30_000 });
    const broken = await page.evaluate(() => ({ error: document.getElementById('error').textContent,
      name: document.getElementById('image-name').textContent, overlay: document.getElementById('overlay').dataset.state }));
    log(`broken image -> ${JSON.stringify(broken)}`);
    await page.screenshot({ path: path.join(OUT, 'smoke-error.png'), fullPage: true });
    check('a broken image gives a readable error naming the file', /broken\.png/.test(broken.error) && /cannot read this file as an image/.test(broken.error)
      && /previous image is kept/.test(broken.error), broken.error);
    check('a broken image keeps the previous image and its overlay', /photo\.png/.test(broken.name) && broken.overlay === 'ranked', JSON.stringify(broken));

    // back to the sample (the row's first button): the page still answers, the same text
    await page.click('[data-sample="photo.png"]');
    await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent));
    // Stop: a long answer, stopped once its first piece is shown
    await page.fill('#question', QUESTION);
    await page.fill('#max-tokens', '200');
    await page.click('#ask');
    await page.waitForFunction(() => document.getElementById('answer').textContent.length > 0
      || !document.getElementById('error').hidden, null, { timeout: ANSWER_TIMEOUT, polling: 50 });
    await page.click('#stop');
    await page.waitForFunction(() => ['stopped', 'done', 'done-empty'].includes(document.getElementById('answer').dataset.state)
      || !document.getElementById('error').hidden, null, { timeout: ANSWER_TIMEOUT, polling: 100 });
    const stopped = await page.evaluate(() => ({
      state: document.getElementById('answer').dataset.state,
      timings: document.getElementById('timings').textContent,
      error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    }));
    log(`stop -> ${stopped.state}: ${stopped.timings}`);
    check('Stop ends a long answer early', stopped.state === 'stopped' && stopped.error === null && /stopped/.test(stopped.timings),
      JSON.stringify(stopped));

    tAsk = Date.now();
    r = await askAndWait(page, { question: QUESTION, ratio: 1 });
    log(`answer again in ${((Date.now() - tAsk) / 1000).toFixed(1)} s: ${JSON.stringify(r.answer)}`);
    check('the page still answers after the errors and Stop', r.error === null && r.answer === expected,
      r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);

    // ---- every method, both budget modes: the page's order vs the CLI's
    await setRatio(page, KEEP);
    const agreement = [];
    for (const budget of BUDGETS) {
      for (const method of METHODS) {
        const tRank = Date.now();
        await setControls(page, { method, budget, seed: SEED });
        const w = await waitRanked(page, { method, budget, seed: SEED });
        const secsRank = ((Date.now() - tRank) / 1000).toFixed(1);
        const nat = native[`${method}|${budget}`];
        if (w.error || !w.order) {
          check(`${method} (${budget}) ranks in the browser`, false, w.error || 'no order');
          continue;
        }
        const c = compareOrders(w.order, nat);
        agreement.push(`${method}/${budget}: ${c.identical ? 'identical' : c.ok ? `near-tie at step ${c.step}` : 'DIFFERENT'}`);
        log(`${method} (${budget}) ranked in ${secsRank} s: ${c.identical ? 'identical order' : c.detail}` +
          `${w.warnings ? `; warnings: ${w.warnings}` : ''}`);
        check(`${method} (${budget}): the browser's order equals the CLI's`, c.ok, c.identical ? '' : c.detail);
        check(`${method} (${budget}): warnings as the CLI's`,
          (nat.warnings || []).every((x) => w.warnings.includes(x)) && (w.warnings === '') === ((nat.warnings || []).length === 0),
          `page ${JSON.stringify(w.warnings)} vs CLI ${JSON.stringify(nat.warnings)}`);
        const k = Math.max(1, Math.round(KEEP * w.total));
        check(`${method} (${budget}): the overlay keeps ${k} tokens`, w.kept === k, w.label);
        if (budget === 'per-tile' || method === 'zoo') {
          await page.locator('.image-panel').screenshot({ path: path.join(OUT, `prune-${method}-${budget}.png`) });
        }
      }
    }
    log(`agreement: ${agreement.join('; ')}`);

    // ---- the slider redraws from the stored order: no Worker message
    await setControls(page, { method: 'zoo', budget: 'per-tile', seed: SEED });
    const zr = await waitRanked(page, { method: 'zoo', budget: 'per-tile', seed: SEED });
    const posts0 = await page.evaluate(() => document.body.dataset.workerPosts);
    for (const [ratio, via] of [[0.1, '#keep-ratio'], [0.5, '#keep-ratio-num'], [0.83, '#keep-ratio']]) {
      await setRatio(page, ratio, via);
      const o = await page.evaluate(() => ({ ...document.getElementById('overlay').dataset,
        label: document.getElementById('keep-label').textContent }));
      const k = Math.max(1, Math.round(ratio * zr.total));
      check(`slider ${ratio}: the overlay keeps round(${ratio} x ${zr.total}) = ${k} tokens`, Number(o.kept) === k && o.state === 'ranked',
        `data-kept ${o.kept}, ${o.label}`);
      if (ratio === 0.5) await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'prune-zoo-slider-0.5.png') });
    }
    const posts1 = await page.evaluate(() => document.body.dataset.workerPosts);
    check('moving the slider sends nothing to the Worker', posts0 === posts1, `${posts0} -> ${posts1} messages`);

    // ---- a pruned answer: zoo at keep 0.25
    tAsk = Date.now();
    r = await askAndWait(page, { question: QUESTION, ratio: KEEP });
    log(`zoo keep ${KEEP} answer in ${((Date.now() - tAsk) / 1000).toFixed(1)} s: ${JSON.stringify(r.answer)}; ${r.timings}`);
    check(`the zoo answer at keep ${KEEP} equals the CLI's`, r.error === null && r.answer === expectedZoo,
      r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expectedZoo)}`);
    const kZoo = Math.max(1, Math.round(KEEP * zr.total));
    check('the timings name the method and the kept tokens', new RegExp(`${kZoo} of ${zr.total} visual, zoo`).test(r.timings), r.timings);

    await page.screenshot({ path: path.join(OUT, 'smoke.png'), fullPage: true });
    log(`screenshot: ${path.relative(ROOT, path.join(OUT, 'smoke.png'))}`);

    // ---- an image that is not split (1 tile): every token on the photo, no global thumbnail
    await page.selectOption('#grid', '1');
    const g1 = await waitRanked(page, { method: 'zoo', budget: 'per-tile', seed: SEED });
    const g1Native = nativeRanking('zoo', 'per-tile', ['--grid', '1']);
    const g1c = g1.order ? compareOrders(g1.order, g1Native) : { ok: false, detail: g1.error };
    const thumb = await page.isVisible('#global-view');
    log(`one tile: ${g1.total} tokens, order ${g1.order}, ${g1.label}`);
    check('one tile: the order equals the CLI\'s (--grid 1)', g1c.ok, g1c.detail || '');
    check('one tile: the overlay keeps round(0.25 x n) tokens, no global thumbnail',
      g1.kept === Math.max(1, Math.round(KEEP * g1.total)) && !thumb, `${g1.label}; thumbnail visible: ${thumb}`);
    await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'prune-zoo-grid1.png') });

    // ---- the wasm API's own errors, on a second model instance (CPU backend, in the page)
    const apiErrors = await page.evaluate(async (modelUrl) => {
      const wasm = await import('/pkg/zoo_prune_web.js');
      await wasm.default();
      const get = async (p) => new Uint8Array(await (await fetch(modelUrl + p)).arrayBuffer());
      const weights = await get('model.safetensors');
      const m = await wasm.WebModel.load(await get('config.json'), weights, weights.length, (o, n) => weights.subarray(o, o + n),
        await get('tokenizer.json'), await get('preprocessor_config.json'), await get('generation_config.json'), false);
      const image = new Uint8Array(await (await fetch('/tests/fixtures/photo.png')).arrayBuffer());
      const msg = async (f) => { try { await f(); return null; } catch (e) { return String(e.message || e); } };
      const out = {};
      out.rankFirst = await msg(() => m.rank('zoo', {}, 'per-tile'));
      out.answerFirst = await msg(() => m.answer(3, 4));
      out.encode = await msg(() => m.encode(image, 'What colour is the cat?', 0));
      out.unknownMethod = await msg(() => m.rank('nope', {}, 'per-tile'));
      out.unknownParam = await msg(() => m.rank('zoo', { bogus: 1 }, 'per-tile'));
      out.wrongParam = await msg(() => m.rank('divprune', { m: 8 }, 'per-tile'));
      out.badValue = await msg(() => m.rank('zoo', { m: 'many' }, 'per-tile'));
      out.notObject = await msg(() => m.rank('zoo', '{"m": 8}', 'per-tile'));
      out.badBudget = await msg(() => m.rank('zoo', {}, 'sideways'));
      out.answerUnranked = await msg(() => m.answer(3, 4));
      out.rankOk = await msg(() => m.rank('random', { seed: 5 }, 'global'));
      out.answerZero = await msg(() => m.answer(0, 4));
      // the bare connector as ZOO's proxy: a constant sensitivity, which the ranking must flag
      out.linearWarnings = (await m.rank('zoo', { proxy: 'linear', m: 8 }, 'per-tile')).warnings;
      // the tiling choices predicted from the image size alone, and the grid encode then cuts
      out.tiling = m.tiling(96, 64);
      out.tilingEmpty = await msg(() => m.tiling(0, 64));
      out.encoded4 = await m.encode(image, 'What colour is the cat?', 4);
      // the wasm decoder's own message for bytes that are no image (the page refuses them earlier)
      out.badImage = await msg(() => m.encode(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 'What colour is the cat?', 0));
      m.free();
      return out;
    }, `${base}/${MODEL}/`);
    log(`wasm API errors: ${JSON.stringify(apiErrors)}`);
    const expectErr = (name, re) => check(`API error: ${name}`, apiErrors[name] !== null && re.test(apiErrors[name]), String(apiErrors[name]));
    expectErr('rankFirst', /no image is encoded yet/);
    expectErr('answerFirst', /no image is encoded yet/);
    check('API: encode then rank works', apiErrors.encode === null && apiErrors.rankOk === null, `${apiErrors.encode} / ${apiErrors.rankOk}`);
    expectErr('unknownMethod', /unknown pruning method "nope"/);
    expectErr('unknownParam', /unknown method parameter "bogus"/);
    expectErr('wrongParam', /parameter m does not apply to the method divprune/);
    expectErr('badValue', /parameter m must be/);
    expectErr('notObject', /must be an object/);
    expectErr('badBudget', /unknown budget mode "sideways"/);
    expectErr('answerUnranked', /no ranking of this image yet/);
    expectErr('answerZero', /between 1 and \d+ visual tokens/);
    check('API: a degenerate ZOO proxy is flagged in the warnings', apiErrors.linearWarnings.some((w) => /constant/.test(w)),
      JSON.stringify(apiErrors.linearWarnings));
    const t4 = apiErrors.tiling.find((c) => c.max_grid === 4);
    check('API: tiling() predicts the grid and tokens encode gives (up to 4x4)',
      t4 && t4.rows === apiErrors.encoded4.rows && t4.cols === apiErrors.encoded4.cols && t4.visual_tokens === apiErrors.encoded4.visual_tokens
      && apiErrors.tiling.length === 5, `${JSON.stringify(apiErrors.tiling)} vs encode ${apiErrors.encoded4.rows}x${apiErrors.encoded4.cols} ${apiErrors.encoded4.visual_tokens}`);
    expectErr('tilingEmpty', /empty/);
    check('API: bytes that are no image give a readable decode error', apiErrors.badImage !== null && /image/i.test(apiErrors.badImage)
      && !/unreachable|RuntimeError|panic/i.test(apiErrors.badImage), String(apiErrors.badImage));

    await pageFeatures(page, { expected, expectedZoo });
    await stress(page, { expected });
    await modelLoading(context, base, expected);
    await builtinModel(context, base, browser, noIsoBase);
  } catch (e) {
    check('the smoke test ran to its end', false, e.message.split('\n')[0]);
    await page.screenshot({ path: path.join(OUT, 'smoke-failure.png'), fullPage: true }).catch(() => {});
  } finally {
    check('no uncaught errors in the page', pageErrors.length === 0, pageErrors.join(' | '));
    const network = requests.filter((u) => /^(https?|wss?):/.test(u));
    const foreign = network.filter((u) => new URL(u).hostname !== '127.0.0.1');
    log(`${network.length} network requests seen`);
    check('every request went to 127.0.0.1', network.length > 0 && foreign.length === 0, foreign.join(' '));
    await browser.close();
    server.close();
    noIsoServer.close();
  }
}

try {
  await main();
} catch (e) {
  check('the smoke test ran', false, e.message);
}
log('done');
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
