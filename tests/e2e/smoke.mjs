// Browser smoke test of the web page: headless Chromium (Debian's, driven by playwright-core) opens
// www/ from a static server on 127.0.0.1 that this script starts, waits for the built-in model to
// load, asks the sample question about the sample image, and compares the streamed answer with the
// native CLI's answer computed now. Also: an empty question and a broken image give readable
// errors, Stop ends an answer, the page still answers after all that; every request went to
// 127.0.0.1.
//
// Needs: pkg/ built by scripts/build-web.sh, `npm ci`, /usr/bin/chromium.
// Env: CHROMIUM (browser path), ZPW_CLI (a built zoo-prune-web binary instead of `cargo run
// --release`), ZPW_ALLOW_CPU=1 (accept the CPU fallback when the browser has no WebGPU).
// Prints `N passed, M failed` last; exits 1 on any failure.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'tests/e2e/out');
const MODEL = 'tests/fixtures/tiny_tiles';
const IMAGE = 'tests/fixtures/photo.png';
const QUESTION = 'What colour is the cat?';
const MAX_NEW_TOKENS = 12;
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

// ---- the expected answer, from the native CLI (stdout = the answer + '\n', timings on stderr)
function expectedAnswer() {
  const args = ['answer', '--model', MODEL, '--image', IMAGE, '--prompt', QUESTION,
    '--max-new-tokens', String(MAX_NEW_TOKENS)];
  const [cmd, cmdArgs] = process.env.ZPW_CLI
    ? [process.env.ZPW_CLI, args]
    : ['cargo', ['run', '--release', '--quiet', '--bin', 'zoo-prune-web', '--', ...args]];
  log(`expected answer from: ${cmd} ${cmdArgs.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
  const out = execFileSync(cmd, cmdArgs, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
  if (!out.endsWith('\n')) throw new Error(`the CLI's stdout does not end with a newline: ${JSON.stringify(out)}`);
  return out.slice(0, -1);
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

async function askAndWait(page, { question, maxTokens = MAX_NEW_TOKENS }) {
  await page.fill('#question', question);
  await page.fill('#max-tokens', String(maxTokens));
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
  const expected = expectedAnswer();
  log(`expected answer (CLI, flex): ${JSON.stringify(expected)}`);
  mkdirSync(OUT, { recursive: true });

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
    let tAsk = Date.now();
    let r = await askAndWait(page, { question: QUESTION });
    const updates = await page.evaluate(() => window.__answerUpdates);
    log(`answer in ${((Date.now() - tAsk) / 1000).toFixed(1)} s, ${updates} DOM updates: ${JSON.stringify(r.answer)}`);
    log(`timings shown: ${r.timings}`);
    check('no error on the sample question', r.error === null, r.error || '');
    check('the streamed answer equals the CLI answer', r.answer === expected,
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
    r = await askAndWait(page, { question: QUESTION });
    log(`answer again in ${((Date.now() - tAsk) / 1000).toFixed(1)} s: ${JSON.stringify(r.answer)}`);
    check('the page still answers after the errors and Stop', r.error === null && r.answer === expected,
      r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);

    await page.screenshot({ path: path.join(OUT, 'smoke.png'), fullPage: true });
    log(`screenshot: ${path.relative(ROOT, path.join(OUT, 'smoke.png'))}`);
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
