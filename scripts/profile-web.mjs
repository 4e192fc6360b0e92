// Profiles the page's CPU path in headless Chromium with Linux perf: V8 writes /tmp/perf-PID.map
// (--perf-basic-prof) so that perf names the wasm functions (the module's name section) and the JS.
// The page loads the model, is given the image, and once the encode has begun perf samples every
// thread of the machine for --seconds; the report is per thread (the model's Worker, the rayon
// pool's Workers) and per function. Run by hand (root or perf_event_paranoid <= 0):
//   node scripts/profile-web.mjs --model target/bench-web-256m --threads 2 --grid 4 \
//        --seconds 30 --out /tmp/prof [--phase answer --tokens 200]
import { mkdirSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, serve } from './static-server.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const MODEL = opt('--model', 'target/bench-web-256m');
const THREADS = Number(opt('--threads', '2'));
const GRID = Number(opt('--grid', '4'));
const SECONDS = Number(opt('--seconds', '30'));
const OUT = opt('--out', '/tmp/prof');
const FREQ = opt('--freq', '999');
// --phase encode (default): the sample photo's encode; answer: an answer of --tokens new tokens
// (prefill, then decoding), after the encode; load: the model's load, from the page's start (wasm
// module and threads, the files, the model built from them), sampled for --seconds; prefill:
// one-token answers asked one after another (prefill + first token each) while perf samples
const PHASE = opt('--phase', 'encode');
const TOKENS = opt('--tokens', '200');
mkdirSync(OUT, { recursive: true });

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--no-first-run', '--js-flags=--perf-basic-prof --logfile=/dev/null --no-logfile-per-isolate'] });
const page = await (await browser.newContext()).newPage();
page.on('pageerror', (e) => console.error(`[page error] ${e}`));
const q = new URLSearchParams({ test: '1', model: `../${MODEL}/`, backend: 'cpu', grid: String(GRID), method: 'zoo', keep: '1', q: 'What colour is the cat?' });
if (THREADS > 1) q.set('threads', String(THREADS)); else q.set('wasm', 'simd');
const record = () => ['record', '-F', FREQ, '-a', '-g', '-o', path.join(OUT, 'perf.data'), '--', 'sleep', String(SECONDS)];
let loadPerf = null;
if (PHASE === 'load') {
  console.error(`perf: ${SECONDS} s of every thread from the page's start`);
  loadPerf = new Promise((resolve) => spawn('perf', record(), { stdio: 'inherit' }).on('exit', resolve));
  await new Promise((r) => setTimeout(r, 1000)); // perf started
}
await page.goto(`${base}/www/?${q}`);
await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: 600_000 });
console.error(`loaded: ${await page.textContent('#status')}; phases (ms) ${JSON.stringify(await page.evaluate(() => window.__zpw.state.loadPhases))}`);
if (loadPerf) {
  if ((await loadPerf) !== 0) console.error('perf record failed');
  await browser.close();
  server.close();
  process.exit(0);
}
// the page encodes its sample photo (at --grid 4: 4 x 3 tiles + the global image) as soon as the
// model is ready: sampled after V8 has had 10 s to tier the hot wasm functions up
// one-token answers one after another until `stop` says so (the prefill phase)
async function askAgainUntil(stop) {
  await page.fill('#max-tokens', '1');
  let n = 0;
  while (!stop()) {
    await page.waitForSelector('#ask:not([disabled])', { timeout: 600_000 });
    const before = await page.evaluate(() => window.__zpw.state.timings);
    await page.click('#ask');
    await page.waitForFunction((prev) => {
      const a = document.getElementById('answer').dataset.state;
      return (a === 'done' || a === 'done-empty') && window.__zpw.state.timings !== prev;
    }, before, { timeout: 600_000, polling: 20 });
    n += 1;
  }
  const t = await page.evaluate(() => window.__zpw.state.timings);
  console.error(`${n} one-token answers; the last: first token ${t.first_token_ms?.toFixed(0)} ms, ${t.prompt_tokens ?? '?'} prompt tokens`);
}
if (PHASE === 'prefill') {
  await page.waitForFunction(() => window.__zpw.state.encodes >= 1, null, { timeout: 3_600_000, polling: 500 });
  let done = false;
  const asking = askAgainUntil(() => done);
  await new Promise((r) => setTimeout(r, 5000)); // V8 tiers the code up
  console.error(`perf: ${SECONDS} s of every thread`);
  // not spawnSync: the asking goes on in this process's event loop meanwhile
  const status = await new Promise((resolve) => spawn('perf', record(), { stdio: 'inherit' }).on('exit', resolve));
  if (status !== 0) console.error('perf record failed');
  done = true;
  await asking;
  await browser.close();
  server.close();
  process.exit(0);
}
if (PHASE === 'answer') {
  await page.waitForFunction(() => window.__zpw.state.encodes >= 1, null, { timeout: 3_600_000, polling: 500 });
  await page.fill('#max-tokens', TOKENS);
  await page.waitForSelector('#ask:not([disabled])', { timeout: 600_000 });
  await page.click('#ask');
  await new Promise((r) => setTimeout(r, 3000));
} else {
  await page.waitForFunction(() => window.__zpw.state.encodes === 0, null, { timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 10_000));
}
console.error(`perf: ${SECONDS} s of every thread`);
const perf = spawnSync('perf', ['record', '-F', FREQ, '-a', '-g', '-o', path.join(OUT, 'perf.data'), '--', 'sleep', String(SECONDS)], { stdio: 'inherit' });
if (perf.status !== 0) console.error('perf record failed');
await page.waitForFunction(() => window.__zpw.state.encodes >= 1, null, { timeout: 3_600_000, polling: 500 });
await browser.close();
server.close();
