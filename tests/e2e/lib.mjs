// What the browser test files (tests/e2e/*.test.mjs, run by `node --test`) share: the static
// server on 127.0.0.1 with its fake Hugging Face hub, the native CLI (expected answers and keep
// orders), the browser and its contexts, the page helpers, and `checker`, which makes every check
// a test point of its own (a failing check does not stop the checks after it).
//
// Each test file starts what it needs itself (its own server, browser, page and model load), so
// that one file runs alone: `node --test tests/e2e/stress.test.mjs`. scripts/test-web.sh runs
// them all, one file at a time.
//
// Needs: pkg/ built by scripts/build-web.sh, `npm ci`, /usr/bin/chromium (wasm-validate from
// Debian's wabt for the plain build's check in builtin.test.mjs).
// Env: CHROMIUM (browser path), ZPW_CLI (a built zoo-prune-web binary instead of `cargo build
// --release --bin zoo-prune-web`), ZPW_ALLOW_CPU=1 (accept the CPU fallback when the browser has no
// WebGPU), ZPW_SECTION_TIMEOUT (seconds a section may take; default: no limit, as each wait in it
// has its own timeout).

import { test as nodeTest } from 'node:test';
import { execFileSync } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { createReadStream, mkdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OUT = path.join(ROOT, 'tests/e2e/out');
export const MODEL = 'tests/fixtures/tiny_tiles';
export const BUILTIN = 'assets/builtin-model';
export const IMAGE = 'tests/fixtures/photo.png';
export const QUESTION = 'What colour is the cat?';
export const MAX_NEW_TOKENS = 8;
export const SEED = 3; // not the default 0: the seed must travel from the page to the ranking
export const KEEP = 0.25;
export const METHODS = ['zoo', 'divprune', 'prompt-aware', 'random', 'visionzip', 'fastv', 'info-horizon', 'feature-norm', 'cdpruner'];
export const BUDGETS = ['per-tile', 'global'];
// A near-tie: the two candidates' native scores differ by less than this, relatively (see compareOrders).
const NEAR_TIE = 1e-5;
export const LOAD_TIMEOUT = 300_000;
export const ANSWER_TIMEOUT = 300_000;
// node:test's options for a section: no time limit of its own (a model load takes minutes on two
// cores; every wait inside has its own timeout), unless ZPW_SECTION_TIMEOUT says otherwise.
export const SECTION = { timeout: Number(process.env.ZPW_SECTION_TIMEOUT) > 0 ? Number(process.env.ZPW_SECTION_TIMEOUT) * 1000 : Infinity };

// The URL of the page with `query`, plus test=1: the page then loads www/test-hooks.js
// (window.__zpw: its state, a synthetic layout, simulated Worker messages), which production
// loads never do. The page's URL writer keeps test=1, so a reload keeps the hooks.
export const pageUrl = (base, query = '') => `${base}/www/?${query ? `${query}&` : ''}test=1`;

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1);
export const log = (s) => console.log(`[${secs()} s] ${s}`);

// check(name, ok, detail): one test point under the section `t`, which passes or fails alone.
// Await it (it resolves once the point is reported; a failure does not throw here).
// node:test's test(), each section's thrown error also printed as a "FAIL - " line: with the
// checks' own "ok   - " / "FAIL - " lines (checker below) that is what scripts/test.sh counts (node's
// own totals count each section as a test too, and a failing check twice: it and its section).
export function test(name, options, fn) {
  return nodeTest(name, options, async (t) => {
    try {
      return await fn(t);
    } catch (e) {
      console.log(`FAIL - section "${name}" stopped: ${String((e && e.message) || e).split('\n')[0]}`);
      throw e;
    }
  });
}

export function checker(t) {
  return (name, ok, detail = '') => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} - ${name}${detail ? `: ${detail}` : ''}`);
    return t.test(name, () => {
      if (ok) return;
      const e = new Error(detail || 'failed');
      e.stack = detail || 'failed'; // the reporter prints this alone (no stack frames)
      throw e;
    });
  };
}

// ---- the native CLI: expected answers and rankings
let cliPath = process.env.ZPW_CLI ? path.resolve(ROOT, process.env.ZPW_CLI) : null;
export function cli(args) {
  if (!cliPath) {
    // one build (usually a no-op), then the binary itself: faster than `cargo run` per call
    log('building the native CLI: cargo build --release --bin zoo-prune-web');
    execFileSync('cargo', ['build', '--release', '--quiet', '--bin', 'zoo-prune-web'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    cliPath = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target'), 'release/zoo-prune-web');
  }
  return execFileSync(cliPath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
}

// The native `evaluate` bin (beside the CLI: the same cargo profile), e.g. for the Evaluate panel's
// numbers; stdout is its tables.
let evaluatePath = null;
export function evaluateCli(args) {
  if (!evaluatePath) {
    if (process.env.ZPW_CLI) {
      evaluatePath = path.join(path.dirname(path.resolve(ROOT, process.env.ZPW_CLI)), 'evaluate');
    } else {
      log('building the native evaluate bin: cargo build --release --bin evaluate');
      execFileSync('cargo', ['build', '--release', '--quiet', '--bin', 'evaluate'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
      evaluatePath = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target'), 'release/evaluate');
    }
  }
  return execFileSync(evaluatePath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 22 });
}

const BASE_ARGS = ['answer', '--model', MODEL, '--image', IMAGE, '--prompt', QUESTION];
export const show = (args) => args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ');

// The CLI's answer on the test checkpoint, the photo and QUESTION: stdout = the answer + '\n'
// (timings go to stderr).
export function expectedAnswer(extra = []) {
  const args = [...BASE_ARGS, '--max-new-tokens', String(MAX_NEW_TOKENS), ...extra];
  const out = cli(args);
  log(`CLI: zoo-prune-web ${show(args)} -> ${JSON.stringify(out)}`);
  if (!out.endsWith('\n')) throw new Error(`the CLI's stdout does not end with a newline: ${JSON.stringify(out)}`);
  return out.slice(0, -1);
}

// The CLI's answer for the built-in model on a scene (args: the answer's extra flags).
export function builtinAnswer(sc, extra = []) {
  const args = ['answer', '--model', BUILTIN, '--image', `assets/scenes/${sc.file}`, '--prompt', sc.question,
    '--max-new-tokens', String(MAX_NEW_TOKENS), ...extra];
  return { args, answer: cli(args).trimEnd() };
}

export const scenes = () => JSON.parse(readFileSync(path.join(ROOT, 'assets/scenes/scenes.json'), 'utf8'));

// The CLI's keep order (and scores, warnings) for a method and budget mode at SEED.
export function nativeRanking(method, budget, extra = []) {
  mkdirSync(OUT, { recursive: true });
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
export function compareOrders(web, native) {
  if (!web) return { ok: false, detail: 'no order from the page' };
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

// Spearman's rho of two keep orders (permutations), written out here as an independent check
export function spearmanOfOrders(a, b) {
  const n = a.length;
  const pa = new Array(n);
  const pb = new Array(n);
  a.forEach((t, i) => { pa[t] = i; });
  b.forEach((t, i) => { pb[t] = i; });
  let d2 = 0;
  for (let t = 0; t < n; t += 1) d2 += (pa[t] - pb[t]) ** 2;
  return 1 - (6 * d2) / (n * (n * n - 1));
}

// ---- image files
// The size of a PNG or JPEG file from its header (the stored pixels: an EXIF turn is not applied).
export function imageFileSize(file) {
  const b = readFileSync(path.resolve(ROOT, file));
  if (b.length > 24 && b.readUInt32BE(0) === 0x89504e47) return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (b[0] === 0xff && b[1] === 0xd8) {
    let off = 2;
    while (off + 9 < b.length && b[off] === 0xff) {
      const marker = b[off + 1];
      if (marker === 0xff) { off += 1; continue; } // fill byte
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) { off += 2; continue; } // no length
      // SOF0..SOF15 (not DHT c4, JPG c8, DAC cc): precision, height, width
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { width: b.readUInt16BE(off + 7), height: b.readUInt16BE(off + 5) };
      }
      off += 2 + b.readUInt16BE(off + 2);
    }
  }
  throw new Error(`cannot read the size of ${file}`);
}

// A PNG's header rewritten to say width x height (its IHDR CRC fixed: the size is read, not the checksum error).
export function pngWithSize(file, width, height) {
  const b = Buffer.from(readFileSync(path.resolve(ROOT, file)));
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
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
export const FAKEHUB = { log: [], failOnce: new Set(), slow: new Set(), misannounce: new Set(),
  sha: { 'SmolVLM-256M-Instruct': '1'.repeat(40), 'SmolVLM-500M-Instruct': '5'.repeat(40) } };
const FAKEHUB_MODELS = ['SmolVLM-256M-Instruct', 'SmolVLM-500M-Instruct'];
export const FAKEHUB_FILES = ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json', 'model.safetensors'];
// isolate: every response carries COOP/COEP, as scripts/serve.sh sends them, so the page is
// cross-origin isolated and its CPU path runs the threaded wasm build; a server without them checks
// the service worker (coi-sw.js) and the one-thread fallback.
export function serve({ isolate = true } = {}) {
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

// ---- the browser
// One test file's world: its servers (`base`: with COOP/COEP; `noIsoBase`: without, when asked
// for), one headless Chromium, and newContext(), whose contexts record every request and every
// uncaught page error (checked by hygiene() at the end of the file).
export async function startSuite({ noIso = false } = {}) {
  mkdirSync(OUT, { recursive: true });
  const servers = [await serve()];
  const base = `http://127.0.0.1:${servers[0].address().port}`;
  let noIsoBase = null;
  if (noIso) {
    servers.push(await serve({ isolate: false }));
    noIsoBase = `http://127.0.0.1:${servers[1].address().port}`;
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const pageErrors = [];
  const requests = [];
  const watchPage = (p) => {
    p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e}`));
    p.on('console', (m) => { if (m.type() === 'error') console.log(`  [browser console] ${m.text()}`); });
    p.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') console.log(`  [worker console] ${m.text()}`); }));
  };
  const newContext = async (opts = {}) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, ...opts });
    context.on('request', (r) => requests.push(r.url()));
    context.on('page', watchPage);
    return context;
  };
  const close = async () => {
    await browser.close().catch(() => {});
    for (const s of servers) {
      s.close();
      s.closeAllConnections();
    }
  };
  return { browser, base, noIsoBase, newContext, pageErrors, requests, close };
}

// The checks every file ends with, over all the pages it opened.
export async function hygiene(t, suite) {
  const check = checker(t);
  await check('no uncaught errors in the pages', suite.pageErrors.length === 0, suite.pageErrors.join(' | '));
  const network = suite.requests.filter((u) => /^(https?|wss?):/.test(u));
  const foreign = network.filter((u) => new URL(u).hostname !== '127.0.0.1');
  log(`${network.length} network requests seen`);
  await check('every request went to 127.0.0.1', network.length > 0 && foreign.length === 0, foreign.join(' '));
}

// Opens the page on the tiny test checkpoint (`?model=`, WebGPU), waits for the model, and returns
// {page, status, ready, onWebgpu}. This suite runs on it: fast on SwiftShader, and its rankings and
// answers are compared with the CLI's; builtin.test.mjs checks the page's default model.
export async function openTinyPage(context, base) {
  const page = await context.newPage();
  await page.goto(pageUrl(base, `model=../${MODEL}/&backend=webgpu`));
  const tLoad = Date.now();
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const status = await page.textContent('#status');
  log(`model loaded in ${((Date.now() - tLoad) / 1000).toFixed(1)} s: ${status}`);
  const ready = (await page.getAttribute('#status', 'data-state')) === 'ready' && status.includes(MODEL);
  const onWebgpu = /backend: WebGPU/.test(status);
  if (ready) await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 30_000 });
  return { page, status, ready, onWebgpu };
}

// A section that needs the page of the first section throws at once when it could not load.
export function need(page) {
  if (!page) throw new Error('the page with the model did not load (see the first section): nothing to check');
  return page;
}

// ---- page helpers
export async function setRatio(page, r, via = '#keep-ratio') {
  await page.evaluate(([sel, v]) => {
    const e = document.querySelector(sel);
    e.value = String(v);
    e.dispatchEvent(new Event('input', { bubbles: true }));
  }, [via, r]);
}

export async function setControls(page, { method, budget, seed }) {
  if (seed !== undefined) {
    await page.fill('#seed', String(seed));
    await page.dispatchEvent('#seed', 'change');
  }
  if (budget) await page.selectOption('#budget', budget);
  if (method) await page.selectOption('#method', method);
}

// Waits until the overlay shows the ranking for the current controls (or an error is shown).
export async function waitRanked(page, { method, budget, seed }) {
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

export async function askAndWait(page, { question, maxTokens = MAX_NEW_TOKENS, ratio }) {
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

export const rowsOf = (page) => page.$$eval('#compare-rows tr', (rs) => rs.map((r) => ({
  kept: r.children[4].textContent, method: r.children[2].textContent, positions: r.children[3].textContent,
  answer: r.children[8].textContent, thumb: (r.querySelector('img') || {}).src || '', firstToken: r.children[5].textContent,
  kv: r.children[7].textContent,
})));

// a hash of the overlay canvas's pixels: tells two drawings apart
export const overlayHash = (page) => page.evaluate(() => {
  const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 3) h = (h * 31 + d[i]) >>> 0;
  return h;
});

// Back to the sample photo with `params` chosen: clicked again while it is shown it is a new image
// whose name is already there, so this waits until the Worker has encoded that very version (and
// the intake is idle), then for its ranking.
export async function backToSample(page, params) {
  await setControls(page, params);
  await page.click('[data-sample="photo.png"]');
  await waitImage(page, /photo\.png/);
  await page.waitForFunction(() => {
    const s = window.__zpw.state;
    return s.encoding && s.encoding.imageVersion === s.imageVersion && !document.body.dataset.intakeBusy;
  }, null, { timeout: 60_000 });
  await waitRanked(page, params);
}

export async function waitImage(page, re) {
  await page.waitForFunction((src) => new RegExp(src).test(document.getElementById('image-name').textContent)
    || !document.getElementById('error').hidden, re.source, { timeout: 60_000 });
}

// What the page encoded last, and for which image: {version (the page's image), encoded (the
// encoding's image), width, height (the encoding's), name (the caption), error}.
export const encodedImage = (page) => page.evaluate(() => {
  const st = window.__zpw.state;
  return {
    version: st.imageVersion,
    encoded: st.encoding ? st.encoding.imageVersion : null,
    width: st.encoding ? st.encoding.image_width : null,
    height: st.encoding ? st.encoding.image_height : null,
    name: document.getElementById('image-name').textContent,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
  };
});

// Drops a file (made in the page from a URL or a canvas) on the image area, or pastes it.
export async function giveImage(page, how, { url, name, type, canvas }) {
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

// Whether the browser has a WebGPU adapter, and whether it is a software (fallback) one:
// true / false, or null without one.
export const fallbackAdapter = (page) => page.evaluate(async () => {
  const a = navigator.gpu && await navigator.gpu.requestAdapter();
  return a ? Boolean(a.isFallbackAdapter || (a.info && a.info.isFallbackAdapter)) : null;
});
