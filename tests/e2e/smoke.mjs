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
// Needs: pkg/ built by scripts/build-web.sh, `npm ci`, /usr/bin/chromium.
// Env: CHROMIUM (browser path), ZPW_CLI (a built zoo-prune-web binary instead of `cargo run
// --release`), ZPW_ALLOW_CPU=1 (accept the CPU fallback when the browser has no WebGPU).
// Prints `N passed, M failed` last; exits 1 on any failure.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.ts': 'text/plain; charset=utf-8',
};
function serve() {
  const server = http.createServer((req, res) => {
    let file;
    try {
      const p = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
      file = path.join(ROOT, path.normalize(p));
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

async function main() {
  mkdirSync(OUT, { recursive: true });
  const expected = expectedAnswer();
  const expectedZoo = expectedAnswer(['--method', 'zoo', '--keep', String(KEEP), '--seed', String(SEED)]);
  const native = {};
  for (const m of METHODS) for (const b of BUDGETS) native[`${m}|${b}`] = nativeRanking(m, b);
  log(`native rankings: ${Object.keys(native).length} (CLI, flex), e.g. zoo per-tile ${native['zoo|per-tile'].order.join(',')}`);

  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
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
    await page.goto(`${base}/www/`);
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
    check('the built-in model loads', ready, ready ? '' : status);
    if (!ready) throw new Error('cannot go on without a model');
    log(`model info: ${(await page.textContent('#info')).replace(/\s+/g, ' ')}`);
    const onWebgpu = /backend: WebGPU/.test(status);
    check('the model runs on WebGPU', onWebgpu || process.env.ZPW_ALLOW_CPU === '1', status);
    check('the page says the built-in model answers gibberish',
      /meaningless/.test(await page.textContent('#model-note')) && await page.isVisible('#model-note'));
    await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 30_000 });

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

    // broken image: a few random bytes
    await page.setInputFiles('#image-file', { name: 'broken.png', mimeType: 'image/png', buffer: randomBytes(48) });
    await page.waitForFunction(() => /broken\.png/.test(document.getElementById('image-name').textContent));
    r = await askAndWait(page, { question: QUESTION });
    log(`broken image -> ${JSON.stringify(r.error)}`);
    await page.screenshot({ path: path.join(OUT, 'smoke-error.png'), fullPage: true });
    check('a broken image gives a readable error', r.error !== null && /image/i.test(r.error) && !/unreachable|RuntimeError|panic/i.test(r.error), String(r.error));
    check('the page is usable after the broken image', r.askEnabled);

    // back to the sample: the page still answers, the same text
    await page.click('#sample');
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
      const m = await wasm.WebModel.load(await get('config.json'), await get('model.safetensors'),
        await get('tokenizer.json'), await get('preprocessor_config.json'), await get('generation_config.json'), false);
      const image = new Uint8Array(await (await fetch('/tests/fixtures/photo.png')).arrayBuffer());
      const msg = async (f) => { try { await f(); return null; } catch (e) { return String(e.message || e); } };
      const out = {};
      out.rankFirst = await msg(() => m.rank('zoo', '{}', 'per-tile'));
      out.answerFirst = await msg(() => m.answer(3, 4));
      out.encode = await msg(() => m.encode(image, 'What colour is the cat?', 0));
      out.unknownMethod = await msg(() => m.rank('nope', '{}', 'per-tile'));
      out.unknownParam = await msg(() => m.rank('zoo', '{"bogus": 1}', 'per-tile'));
      out.wrongParam = await msg(() => m.rank('divprune', '{"m": 8}', 'per-tile'));
      out.badValue = await msg(() => m.rank('zoo', '{"m": "many"}', 'per-tile'));
      out.badJson = await msg(() => m.rank('zoo', '{m: 8', 'per-tile'));
      out.badBudget = await msg(() => m.rank('zoo', '{}', 'sideways'));
      out.answerUnranked = await msg(() => m.answer(3, 4));
      out.rankOk = await msg(() => m.rank('random', '{"seed": 5}', 'global'));
      out.answerZero = await msg(() => m.answer(0, 4));
      // the bare connector as ZOO's proxy: a constant sensitivity, which the ranking must flag
      out.linearWarnings = JSON.parse(await m.rank('zoo', '{"proxy": "linear", "m": 8}', 'per-tile')).warnings;
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
    expectErr('badJson', /not valid JSON/);
    expectErr('badBudget', /unknown budget mode "sideways"/);
    expectErr('answerUnranked', /no ranking of this image yet/);
    expectErr('answerZero', /between 1 and \d+ visual tokens/);
    check('API: a degenerate ZOO proxy is flagged in the warnings', apiErrors.linearWarnings.some((w) => /constant/.test(w)),
      JSON.stringify(apiErrors.linearWarnings));
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
