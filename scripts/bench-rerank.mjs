// ZOO's ranking time in the page: its first ranking of an image, then again after DivPrune (the
// plan kept by the Session: zoo::PlanCache), each asked with one new token. Run by hand:
//   node scripts/bench-rerank.mjs [--model target/bench-web-256m] [--threads 2] [--rounds 4]
// (the folder as scripts/bench-web.sh writes it; the shipping builds in pkg/). CI does not run it.
import { chromium } from 'playwright-core';
import { serve } from './static-server.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const MODEL = opt('--model', 'target/bench-web-256m');
const THREADS = opt('--threads', '2');
const ROUNDS = Number(opt('--rounds', '4'));
const server = await serve();
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const page = await (await browser.newContext()).newPage();
const q = new URLSearchParams({ test: '1', model: `../${MODEL}/`, backend: 'cpu', grid: '1', method: 'zoo', keep: '0.5', q: 'What colour is the cat?' });
if (Number(THREADS) > 1) q.set('threads', THREADS); else q.set('wasm', 'simd');
await page.goto(`${base}/www/?${q}`);
await page.waitForSelector('#status[data-state="ready"]', { timeout: 600000 });
await page.waitForFunction(() => window.__zpw.state.encodes >= 1, null, { timeout: 600000 });
await page.fill('#max-tokens', '1');
async function ask() {
  await page.waitForSelector('#ask:not([disabled])', { timeout: 600000 });
  const before = await page.evaluate(() => window.__zpw.state.timings);
  await page.click('#ask');
  await page.waitForFunction((prev) => { const a = document.getElementById('answer').dataset.state; return (a === 'done' || a === 'done-empty') && window.__zpw.state.timings !== prev; }, before, { timeout: 600000, polling: 50 });
  return page.evaluate(() => window.__zpw.state.timings.rank_ms);
}
const out = [];
out.push(['zoo (first)', await ask()]);
for (let i = 0; i < ROUNDS; i += 1) {
  await page.selectOption('#method', 'divprune');
  out.push(['divprune', await ask()]);
  await page.selectOption('#method', 'zoo');
  out.push(['zoo', await ask()]);
}
console.log(out.map(([m, t]) => `${m} ${t?.toFixed(1)} ms`).join('\n'));
await browser.close();
server.close();
