// The browser benchmark (scripts/bench-web.sh runs it): the page in headless Chromium against the
// native CLI, in the same run, on a SmolVLM-256M-shaped checkpoint (published config + tokenizer,
// random bf16 weights). For each backend the page can use here (the CPU always; WebGPU only with
// --webgpu: on a software adapter it takes tens of minutes per tile) it prints: load time, the wasm
// memory after the load (its peak: wasm memory never shrinks) and after the answers, encode per
// tile, ZOO scoring, prefill + first token at keep 1.0 / 0.5 / 0.25 / 0.1, decode tok/s, and the
// page / native ratio of each. Run by hand; nothing here is a test.
//
//   node scripts/bench-web.mjs --model DIR --cli PATH [--webgpu | --webgpu-load] [--grid N]
//                              [--tokens N] [--threads N] [--native-threads N] [--runs N] [--wasm plain]
//                              [--image FILE]
//                              [--out FILE.json]
//
// Prefill and decode figures are medians of --runs (3) answers per keep ratio (natively, of as many
// CLI runs; its load, encode and ranking are medians over all of them); the page's load and
// ranking happen once, its encode once with the answers and then --runs times more (the image
// given anew), the median of those as the peer's is (the first run is shown beside it).
//
// --webgpu-load measures WebGPU's load time and memory only (no answers: on a software adapter an
// encode takes tens of minutes).
//
// --peer FILE.onnx also runs the peer a visitor's browser would otherwise run: ONNX Runtime Web
// (node_modules/onnxruntime-web, its wasm backend with SIMD and threads) on the same vision encoder +
// connector exported by scripts/export_onnx.py, in the same browser at the same thread count
// (scripts/bench-peer.html), and prints our page's encode per tile against it.

import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, serve } from './static-server.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const MODEL = opt('--model', 'target/bench-web-256m');
const CLI = opt('--cli', 'target/release/zoo-prune-web');
const GRID = Number(opt('--grid', '1'));
const TOKENS = Number(opt('--tokens', '16'));
// --threads N: the page's CPU path on N threads (the threaded build on a cross-origin isolated page;
// 1: the one-thread SIMD build); the CLI on as many unless --native-threads says otherwise
const THREADS = Number(opt('--threads', '1'));
const NATIVE_THREADS = opt('--native-threads', String(THREADS));
const RUNS = Number(opt('--runs', '3'));
// --wasm plain: the page runs the build without SIMD (pkg/plain/), as a browser without SIMD would
const WASM = opt('--wasm', THREADS > 1 ? null : 'simd');
const OUT = opt('--out', null);
const WEBGPU = args.includes('--webgpu');
const WEBGPU_LOAD = !WEBGPU && args.includes('--webgpu-load');
const PEER = opt('--peer', null);
const KEEPS = [1, 0.5, 0.25, 0.1];
// --image FILE: the photo asked about (default the page's own sample, tests/fixtures/photo.png:
// one tile at --grid 1, 4 x 3 + global at the model's tiling); e.g. assets/samples/astronaut.jpg
// with --grid 4 is 4 x 4 tiles + the global image (17)
const IMAGE = opt('--image', 'tests/fixtures/photo.png');
const QUESTION = 'What colour is the cat?';
const TIMEOUT = 3_600_000;

const median = (v) => {
  const x = v.filter((y) => y !== null && y !== undefined).sort((p, q) => p - q);
  return x.length ? x[Math.floor(x.length / 2)] : null;
};
const medianOf = (rows) => Object.fromEntries(Object.keys(rows[0]).map((k) => [k, typeof rows[0][k] === 'number' || rows[0][k] === null
  ? median(rows.map((r) => r[k])) : rows[0][k]]));

// The CLI's figures for one keep ratio, from its stderr line (load, encode, ranking, prefill, decode).
function nativeFigures(keep) {
  const a = ['answer', '--model', MODEL, '--image', IMAGE, '--prompt', QUESTION, '--grid', String(GRID), '--max-new-tokens', String(TOKENS),
    '--method', 'zoo', '--keep', String(keep)];
  const r = spawnSync(CLI, a, { cwd: ROOT, env: { ...process.env, RAYON_NUM_THREADS: NATIVE_THREADS }, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${CLI} ${a.join(' ')} failed: ${r.stderr}`);
  const num = (re) => {
    const m = re.exec(r.stderr);
    return m ? Number(m[1]) : null;
  };
  return {
    load_ms: num(/load (\d+(?:\.\d+)?) ms/),
    encode_ms: num(/encode \d+ tiles (\d+(?:\.\d+)?) ms/),
    tiles: num(/encode (\d+) tiles/),
    rank_ms: num(/ranking (\d+(?:\.\d+)?) ms/),
    first_token_ms: num(/prefill\+first token (\d+(?:\.\d+)?) ms/),
    tokens_per_s: num(/\((\d+(?:\.\d+)?) tok\/s\)/),
    kept: num(/prompt \d+ tokens \((\d+) of/),
  };
}

// `between`, when given, runs after each of the encodes timed again (the peer's runs, alternated
// with ours so that a host whose speed drifts moves both alike).
async function pageFigures(browser, base, backend, loadOnly = false, between = null) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`  [page error] ${e}`));
  const q = new URLSearchParams({ test: '1', model: `../${MODEL}/`, backend, grid: String(GRID), method: 'zoo', keep: '1', q: QUESTION });
  if (WASM) q.set('wasm', WASM);
  if (THREADS > 1) q.set('threads', String(THREADS));
  const t0 = Date.now();
  await page.goto(`${base}/www/?${q}`);
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: TIMEOUT });
  const status = await page.textContent('#status');
  if ((await page.getAttribute('#status', 'data-state')) !== 'ready') throw new Error(`the page did not load the model: ${status}`);
  const loaded = await page.evaluate(() => {
    const info = JSON.parse(document.getElementById('info').textContent || '{}');
    return { loadMs: window.__zpw.state.loadMs, phases: window.__zpw.state.loadPhases, wasm: window.__zpw.state.wasmBytes, backend: window.__zpw.state.backend,
      build: info.wasm_build, threads: info.cpu_threads };
  });
  console.error(`  page (${backend}): loaded in ${(loaded.loadMs / 1000).toFixed(1)} s on ${loaded.backend}, wasm memory ${(loaded.wasm / 1e6).toFixed(0)} MB (${((Date.now() - t0) / 1000).toFixed(0)} s in all)`);
  const rows = [];
  if (loadOnly) {
    await context.close();
    return { loaded, rows };
  }
  await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 60_000 });
  if (path.basename(IMAGE) !== 'photo.png') {
    await page.setInputFiles('#image-file', path.join(ROOT, IMAGE));
    await page.waitForFunction((name) => document.getElementById('image-name').textContent.includes(name), path.basename(IMAGE), { timeout: 60_000 });
  }
  await page.fill('#max-tokens', String(TOKENS));
  for (const keep of KEEPS) {
    await page.evaluate((r) => {
      const s = document.getElementById('keep-ratio');
      s.value = String(r);
      s.dispatchEvent(new Event('input', { bubbles: true }));
    }, keep);
    const runs = [];
    for (let j = 0; j < RUNS; j += 1) {
      await page.waitForSelector('#ask:not([disabled])', { timeout: TIMEOUT });
      const before = await page.evaluate(() => window.__zpw.state.timings);
      await page.click('#ask');
      await page.waitForFunction((prev) => {
        const a = document.getElementById('answer').dataset.state;
        const t = window.__zpw.state.timings;
        return (!document.getElementById('error').hidden) || ((a === 'done' || a === 'done-empty') && t !== prev);
      }, before, { timeout: TIMEOUT, polling: 200 });
      const err = await page.evaluate(() => (document.getElementById('error').hidden ? null : document.getElementById('error').textContent));
      if (err) throw new Error(`the page failed at keep ${keep}: ${err}`);
      runs.push(await page.evaluate(() => ({ ...window.__zpw.state.timings, wasm: window.__zpw.state.wasmBytes })));
    }
    // encode and ranking happen in the first answer only
    const t = { ...medianOf(runs), encode_ms: runs[0].encode_ms, rank_ms: runs[0].rank_ms, wasm: runs.at(-1).wasm };
    console.error(`  page (${backend}) keep ${keep}: first token ${t.first_token_ms?.toFixed(0)} ms, ${t.tokens_per_s?.toFixed(1)} tok/s, kept ${t.kept_tokens}`);
    rows.push(t);
  }
  // the encode again, RUNS times, as the peer is timed: the image given anew (the page encodes
  // it again) and one short answer each; the first encode above was V8's first run of the code
  const again = [];
  for (let j = 0; j < RUNS && !loadOnly; j += 1) {
    const encodes = await page.evaluate(() => window.__zpw.state.encodes);
    await page.setInputFiles('#image-file', []);
    await page.setInputFiles('#image-file', path.join(ROOT, IMAGE));
    await page.waitForFunction((n) => window.__zpw.state.encodes > n, encodes, { timeout: TIMEOUT, polling: 200 });
    await page.waitForSelector('#ask:not([disabled])', { timeout: TIMEOUT });
    const before = await page.evaluate(() => window.__zpw.state.timings);
    await page.click('#ask');
    await page.waitForFunction((prev) => {
      const a = document.getElementById('answer').dataset.state;
      return (!document.getElementById('error').hidden) || ((a === 'done' || a === 'done-empty') && window.__zpw.state.timings !== prev);
    }, before, { timeout: TIMEOUT, polling: 200 });
    again.push(await page.evaluate(() => window.__zpw.state.timings.encode_ms));
    if (between) await between();
  }
  if (again.length) {
    rows[0].first_encode_ms = rows[0].encode_ms;
    rows[0].encode_ms = median(again);
    rows[0].again_ms = again;
    console.error(`  page (${backend}) encode: first ${rows[0].first_encode_ms.toFixed(0)} ms, then ${again.map((x) => x.toFixed(0)).join(', ')} (median ${rows[0].encode_ms.toFixed(0)})`);
  }
  await context.close();
  return { loaded, rows };
}

// ONNX Runtime Web on one tile (scripts/bench-peer.html): loaded and warmed up here, then timed one
// run at a time by `run`, between our page's encodes; `close` gives the figures.
async function openPeer(browser, base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const size = JSON.parse(readFileSync(path.join(ROOT, MODEL, 'config.json'), 'utf8')).vision_config.image_size;
  const q = new URLSearchParams({ model: `/${path.relative(ROOT, path.resolve(PEER))}`, size: String(size), threads: String(THREADS), runs: '0' });
  // a module the page cannot import (a wrong MIME type, a missing file) never sets __peer: say so
  page.on('pageerror', (e) => console.error(`  [peer page error] ${e}`));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`  [peer console] ${m.text()}`); });
  await page.goto(`${base}/scripts/bench-peer.html?${q}`);
  await page.waitForFunction(() => window.__peer, null, { timeout: 600_000, polling: 500 });
  const r = await page.evaluate(() => window.__peer);
  if (r.error) throw new Error(`ONNX Runtime Web failed: ${r.error}`);
  console.error(`  peer (ONNX Runtime Web, ${r.threads} thread(s), isolated ${r.isolated}): load ${r.loadMs.toFixed(0)} ms, warm-up ${r.warmMs.toFixed(0)} ms`);
  const pause = () => new Promise((res) => setTimeout(res, 1000)); // both pools idle before the other runs
  return {
    async run() {
      await pause();
      r.times.push(await page.evaluate(() => window.__peerOnce()));
      console.error(`  peer: a tile ${r.times.at(-1).toFixed(0)} ms`);
      await pause();
    },
    async close() {
      await context.close();
      r.tileMs = median(r.times);
      return r;
    },
  };
}

const peerVersion = () => JSON.parse(readFileSync(path.join(ROOT, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;
const fmt = (x, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '–');

async function main() {
  const fileBytes = statSync(path.join(ROOT, MODEL, 'model.safetensors')).size;
  // the weights in f32, from the safetensors header: what the CPU path must hold
  const fd = openSync(path.join(ROOT, MODEL, 'model.safetensors'), 'r');
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const headerBuf = Buffer.alloc(Number(lenBuf.readBigUInt64LE(0)));
  readSync(fd, headerBuf, 0, headerBuf.length, 8);
  closeSync(fd);
  const f32Bytes = Object.entries(JSON.parse(headerBuf.toString('utf8'))).filter(([k]) => k !== '__metadata__')
    .reduce((a, [, v]) => a + 4 * v.shape.reduce((x, y) => x * y, 1), 0);
  const chromiumVersion = execFileSync(process.env.CHROMIUM || '/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim();
  console.error(`native CLI (${NATIVE_THREADS} thread${NATIVE_THREADS === '1' ? '' : 's'}): warm-up run, then one per keep ratio`);
  nativeFigures(1);
  const nat = KEEPS.map((k) => medianOf(Array.from({ length: RUNS }, () => nativeFigures(k))));
  // load, encode and ranking do not depend on the keep ratio: medians over every run
  for (const f of ['load_ms', 'encode_ms', 'rank_ms']) nat[0][f] = median(nat.map((n) => n[f]));
  for (const [i, k] of KEEPS.entries()) console.error(`  native keep ${k}: first token ${fmt(nat[i].first_token_ms)} ms, ${fmt(nat[i].tokens_per_s, 1)} tok/s`);
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--no-first-run'] });
  const backends = WEBGPU ? ['cpu', 'webgpu'] : ['cpu'];
  const pages = {};
  const peerRuns = PEER ? await openPeer(browser, base) : null;
  for (const b of backends) pages[b] = await pageFigures(browser, base, b, false, b === 'cpu' && peerRuns ? () => peerRuns.run() : null);
  const peer = peerRuns ? await peerRuns.close() : null;
  const webgpuLoad = WEBGPU_LOAD ? await pageFigures(browser, base, 'webgpu', true) : null;
  await browser.close();
  server.close();

  const lines = [];
  const say = (s) => lines.push(s);
  say(`# bench-web: the page (headless ${chromiumVersion}) against the native CLI, ${new Date().toISOString().slice(0, 10)}`);
  say(`machine: ${os.cpus().length} cores (${os.cpus()[0].model}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const tc = JSON.parse(readFileSync(path.join(ROOT, MODEL, 'config.json'), 'utf8')).text_config || {};
  say(`model: ${MODEL} (SmolVLM-256M-Instruct's published config and tokenizer, decoder hidden ${tc.hidden_size} x ${tc.num_hidden_layers} layers, ` +
    `random bf16 weights, ${fileBytes} bytes, ${f32Bytes} in f32); ` +
    `${IMAGE}, ${GRID === 1 ? 'one 512 px tile' : `up to ${GRID}x${GRID} tiles`}, zoo ranking, ${TOKENS} new tokens at most, medians of ${RUNS} answers per keep ratio; ` +
    `native = the CLI on ${NATIVE_THREADS} thread(s) (RAYON_NUM_THREADS), the page's ${backends.map((b) => `${b} on its ${pages[b].loaded.build} build, ${pages[b].loaded.threads} thread(s)`).join('; ')}`);
  if (!WEBGPU && !webgpuLoad) say('WebGPU not measured (run with --webgpu; on a software adapter such as SwiftShader it takes tens of minutes per tile)');
  if (webgpuLoad) {
    say(`WebGPU (${webgpuLoad.loaded.backend}), load only: ${fmt(webgpuLoad.loaded.loadMs)} ms, wasm memory after load ${fmt(webgpuLoad.loaded.wasm / 1e6)} MB ` +
      `(${(webgpuLoad.loaded.wasm / fileBytes).toFixed(2)}x the file)`);
  }
  say('');
  const head = ['stage', 'native', ...backends.flatMap((b) => [`page ${b}`, `${b} / native`])];
  say(`| ${head.join(' | ')} |`);
  say(`| ${head.map((_, i) => (i ? '---:' : '---')).join(' | ')} |`);
  const row = (name, nv, pv, d = 0) => say(`| ${[name, fmt(nv, d), ...backends.flatMap((b) => [fmt(pv(pages[b]), d), ratio(pv(pages[b]), nv)])].join(' | ')} |`);
  row('load (ms)', nat[0].load_ms, (p) => p.loaded.loadMs);
  say(`| load: wasm module + threads / files / model from them (ms) | – | ${backends.map((b) => { const ph = pages[b].loaded.phases; return ph ? `${fmt(ph.wasm)} / ${fmt(ph.files)} / ${fmt(ph.model)} | –` : '– | –'; }).join(' | ')} |`);
  const mem = (b, bytes) => `${fmt(bytes / 1e6)} | ${b === 'cpu' ? `${(bytes / f32Bytes).toFixed(2)}x the f32 weights` : `${(bytes / fileBytes).toFixed(2)}x the file`}`;
  say(`| wasm memory after load (MB) | – | ${backends.map((b) => mem(b, pages[b].loaded.wasm)).join(' | ')} |`);
  say(`| wasm memory at the end (MB) | – | ${backends.map((b) => mem(b, pages[b].rows.at(-1).wasm)).join(' | ')} |`);
  row(`encode, ${nat[0].tiles} tile(s), first run (ms)`, nat[0].encode_ms, (p) => p.rows[0].first_encode_ms ?? p.rows[0].encode_ms);
  row(`encode, ${nat[0].tiles} tile(s), median of ${RUNS} more (ms)`, nat[0].encode_ms, (p) => p.rows[0].encode_ms);
  row('ZOO scoring (ms)', nat[0].rank_ms, (p) => p.rows[0].rank_ms, 1);
  for (const [i, k] of KEEPS.entries()) row(`prefill + first token, keep ${k} (${nat[i].kept} visual) (ms)`, nat[i].first_token_ms, (p) => p.rows[i].first_token_ms);
  for (const [i, k] of KEEPS.entries()) {
    const nv = nat[i].tokens_per_s;
    say(`| ${[`decode tok/s, keep ${k}`, fmt(nv, 1), ...backends.flatMap((b) => {
      const pv = pages[b].rows[i].tokens_per_s;
      return [fmt(pv, 1), pv && nv ? `${(nv / pv).toFixed(2)}x slower` : '–'];
    })].join(' | ')} |`);
  }
  if (peer) {
    const ours = pages.cpu.rows[0].encode_ms / nat[0].tiles;
    say('');
    say(`peer: ONNX Runtime Web ${peerVersion()} (wasm, SIMD, ${peer.threads} thread(s)) on the same encoder + connector (scripts/export_onnx.py, f32), one tile: ` +
      `${fmt(peer.tileMs)} ms (median of ${peer.times.length} after a warm-up, each run right after one of our page's encodes timed again; load ${fmt(peer.loadMs)} ms). ` +
      `Our page on the CPU: ${fmt(ours)} ms a tile (its encode / tiles, median of ${RUNS} after the first). **page / peer: ${(ours / peer.tileMs).toFixed(2)}**` +
      ` (run by run, each encode against the peer's run after it: ${(pages.cpu.rows[0].again_ms || []).map((x, i) => (x / nat[0].tiles / peer.times[i]).toFixed(2)).join(', ')})`);
  }
  console.log(lines.join('\n'));
  if (OUT) writeFileSync(OUT, JSON.stringify({ native: nat, pages, webgpuLoad, peer, fileBytes, f32Bytes, runs: RUNS, grid: GRID, tokens: TOKENS, nativeThreads: NATIVE_THREADS }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
