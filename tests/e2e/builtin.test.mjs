// The page's default: the built-in model (assets/builtin-model, trained by src/bin/train.rs). The
// page opens on it with a held-out scene and that scene's question; answers equal the native CLI's,
// and at full budget the generator's true answer, which the comparison table marks; a small keep
// ratio is compared with the CLI too; the accuracy plot is shown. Also: the Backend control (Auto on
// a software adapter takes the CPU and says why; WebGPU can be forced), the wasm builds (the plain
// build holds no SIMD instruction and answers as the CLI; cross-origin isolation picks the threaded
// build, with its fallbacks), and a production load (no ?test=1) that loads no test hooks.
//
// Run alone: node --test tests/e2e/builtin.test.mjs (see lib.mjs for what it needs).

import { after } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT, OUT, LOAD_TIMEOUT, SECTION, log, checker, show, builtinAnswer, scenes as readScenes, startSuite, hygiene, need, pageUrl,
  askAndWait, waitImage, giveImage, fallbackAdapter, test } from './lib.mjs';

const suite = await startSuite({ noIso: true });
after(() => suite.close());
const context = await suite.newContext();
const scenes = readScenes();
let p = null; // the built-in model's page
let adapterKind; // fallbackAdapter(): true (software), false (hardware), null (none)
let photoAnswer = null; // the answer to the first scene's question about the photo

test('the page opens on the built-in model: note, backend, build, scenes', SECTION, async (t) => {
  const check = checker(t);
  const page = await context.newPage();
  await page.goto(pageUrl(suite.base));
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const status = await page.textContent('#status');
  const ready = (await page.getAttribute('#status', 'data-state')) === 'ready';
  await check('the page opens with the built-in model', /builtin-model \(built-in\)/.test(status) && ready, status);
  if (!ready) throw new Error('cannot go on without the built-in model');
  p = page;
  await check('the model note says what the built-in model knows', /synthetic scenes/.test(await p.textContent('#model-note'))
    && await p.isVisible('#model-note'));
  // Backend: Auto takes the CPU path on a software adapter (SwiftShader here) and says why; the
  // adapter, its f16 support and limits are in Model details
  adapterKind = await fallbackAdapter(p);
  const details = JSON.parse(await p.textContent('#info'));
  const autoBackend = await p.getAttribute('#status', 'data-backend');
  if (adapterKind === true) {
    await check('Backend Auto on a software WebGPU adapter loads on the CPU and says why', autoBackend === 'cpu (flex)'
      && /on the CPU, (one thread|\d+ threads): Auto: the WebGPU adapter \([^)]*\) is a software one/.test(status) && details.backend_choice === 'auto', status);
  } else {
    await check('Backend Auto on a hardware adapter (or none) loads where it should', autoBackend === (adapterKind === false ? 'webgpu' : 'cpu (flex)'), status);
  }
  // this server isolates the page (COOP/COEP): the CPU path gets the threaded build, one thread per core
  const cores = await p.evaluate(() => navigator.hardwareConcurrency);
  await check('on the CPU path of a cross-origin isolated page the threaded SIMD build runs, one thread per core; on WebGPU the one-thread SIMD build',
    autoBackend === 'webgpu' ? details.wasm_build === 'simd'
      : details.wasm_build === 'simd+threads' && details.cpu_threads === cores && (cores < 2 || new RegExp(`on the CPU, ${cores} threads`).test(status)),
    `${details.wasm_build}, ${details.cpu_threads} threads, ${cores} cores: ${status}`);
  await check('Model details name the WebGPU adapter with shader-f16 and its buffer limits', adapterKind === null
    || (details.webgpu_adapter && typeof details.webgpu_adapter.name === 'string' && typeof details.webgpu_adapter.shaderF16 === 'boolean'
      && details.webgpu_adapter.maxStorageBufferBindingSize > 0 && details.webgpu_adapter.maxBufferSize > 0), JSON.stringify(details.webgpu_adapter));
  const buttons = await p.$$eval('#scenes button', (bs) => bs.map((b) => b.dataset.scene));
  await check('the scene row lists one held-out scene per question kind', buttons.length === 7
    && JSON.stringify(buttons) === JSON.stringify(scenes.map((x) => x.file)), buttons.join(','));
  await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), scenes[0].file, { timeout: 30_000 });
  await check('the page starts on the first scene with its question', (await p.inputValue('#question')) === scenes[0].question,
    await p.inputValue('#question'));
});

test('scenes: the page\'s answers = the CLI\'s, at full budget the true answer, marked in the table', SECTION, async (t) => {
  const check = checker(t);
  need(p);
  const cases = [[0, 1], [2, 1], [6, 1], [0, 0.1]];
  for (const [i, ratio] of cases) {
    const sc = scenes[i];
    if (i !== 0 || ratio !== 1) {
      await p.click(`[data-scene="${sc.file}"]`);
      await p.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    }
    const r = await askAndWait(p, { question: sc.question, ratio });
    const { args, answer: want } = builtinAnswer(sc, ratio < 1 ? ['--method', 'zoo', '--keep', String(ratio)] : []);
    const truthCell = await p.$eval('#compare-rows tr:last-child td:last-child', (td) => [td.textContent, td.dataset.right]);
    log(`built-in model, ${sc.kind} scene at keep ${ratio}: ${JSON.stringify(sc.question)} -> page ${JSON.stringify(r.answer)}, `
      + `CLI ${JSON.stringify(want)}, truth ${JSON.stringify(sc.answer)}; table: ${truthCell[0]}`);
    await check(`built-in model (${sc.kind}, keep ${ratio}): the page's answer equals the CLI's`, r.error === null && r.answer === want,
      `page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} (${show(args)}) ${r.error || ''}`);
    if (ratio === 1) {
      await check(`built-in model (${sc.kind}): the full-budget answer is the scene's true answer`, r.answer === sc.answer,
        `${JSON.stringify(r.answer)} vs ${JSON.stringify(sc.answer)}`);
    }
    await check(`the table's true-answer column shows ${sc.answer} and marks the answer (${sc.kind}, keep ${ratio})`, truthCell[0].startsWith(sc.answer)
      && truthCell[1] === String(r.answer === sc.answer), truthCell.join(' / '));
  }
  await p.locator('.image-panel').screenshot({ path: path.join(OUT, 'builtin-scene.png') });
});

test('a photo is not graded against the last scene; the accuracy plot is shown', SECTION, async (t) => {
  const check = checker(t);
  need(p);
  // a photo asked the last scene's question is not graded against that scene
  await giveImage(p, 'drop', { url: '/tests/fixtures/photo.png', name: 'not-a-scene.png', type: 'image/png' });
  await waitImage(p, /not-a-scene\.png/);
  const photoAsk = await askAndWait(p, { question: scenes[0].question, ratio: 1 });
  const photoTruth = await p.$eval('#compare-rows tr:last-child td:last-child', (td) => [td.textContent, td.dataset.right || '']);
  await check('a new image clears the scene\'s true answer: a photo asked the scene\'s question is not graded', photoAsk.error === null
    && photoTruth[0] === '–' && photoTruth[1] === '', `${photoTruth.join(' / ')} ${photoAsk.error || ''}`);
  if (photoAsk.error === null) photoAnswer = photoAsk.answer;
  const plot = await p.$eval('#accuracy-plot', (im) => [im.complete, im.naturalWidth]);
  await check('the accuracy-vs-keep plot is shown', plot[0] && plot[1] > 0, plot.join(' '));
  await p.screenshot({ path: path.join(OUT, 'builtin-page.png'), fullPage: true });
});

test('Backend: WebGPU forced loads the model on WebGPU and answers as on the CPU', SECTION, async (t) => {
  const check = checker(t);
  need(p);
  if (adapterKind === null) {
    t.skip('this browser has no WebGPU adapter');
    return;
  }
  if (photoAnswer === null) throw new Error('no answer on the CPU to compare with (see the section before)');
  const rowsBefore = await p.$$eval('#compare-rows tr', (rs) => rs.length);
  await p.click('#model-panel summary');
  await p.selectOption('#backend', 'webgpu');
  await p.waitForFunction(() => document.getElementById('status').dataset.backend === 'webgpu'
    || document.getElementById('download').dataset.state === 'failed', null, { timeout: LOAD_TIMEOUT });
  const forced = await p.textContent('#status');
  const again = await askAndWait(p, { question: scenes[0].question, ratio: 1 });
  const forcedBuild = await p.getAttribute('#status', 'data-wasm-build');
  await check('Backend: WebGPU loads the model on WebGPU (the one-thread SIMD build) even on a software adapter, and it answers as on the CPU',
    (await p.getAttribute('#status', 'data-backend')) === 'webgpu' && forcedBuild === 'simd' && /backend: WebGPU/.test(forced) && p.url().includes('backend=webgpu')
    && again.error === null && again.answer === photoAnswer && await p.$$eval('#compare-rows tr', (rs) => rs.length) === rowsBefore + 1,
    `${forced} · ${forcedBuild} · ${p.url()} · ${JSON.stringify(again)}`);
  await p.close();
});

// wasm-validate (Debian's wabt) on a module, with or without SIMD: {ok, out}.
function wasmValidate(file, { simd }) {
  const args = [...(simd ? [] : ['--disable-simd']), path.join(ROOT, file)];
  const r = spawnSync('wasm-validate', args, { encoding: 'utf8' });
  if (r.error) return { ok: false, out: `wasm-validate ${args.join(' ')}: ${r.error.message} (apt-get install wabt)` };
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim().split('\n').slice(0, 3).join(' / ') };
}

// The target features the linker wrote into a module (its target_features section), for a message.
function targetFeatures(file) {
  const r = spawnSync('wasm-objdump', ['-x', '-j', 'target_features', path.join(ROOT, file)], { encoding: 'utf8' });
  const used = (r.stdout || '').split('\n').map((l) => /\[\+\]\s+(\S+)/.exec(l)).filter(Boolean).map((m) => m[1]);
  return `its target_features section: ${used.length ? used.join(' ') : '(none read)'}`;
}

// The build without SIMD (pkg/plain/, for browsers without WebAssembly SIMD; ?wasm=plain, tests
// only, asks for it): its code holds no SIMD instruction, and it loads the built-in model and
// answers the first scene as the CLI does.
test('the plain build: no SIMD instruction in its code; it loads and answers as the CLI', SECTION, async (t) => {
  const check = checker(t);
  const PLAIN = 'pkg/plain/zoo_prune_web_bg.wasm';
  const SIMD = 'pkg/zoo_prune_web_bg.wasm';
  // the module itself, not a label: validated with SIMD off, which any SIMD instruction or v128
  // value fails. The SIMD build fails the same validation and passes it with SIMD on: the tool
  // tells the two kinds of module apart (a validator that passed everything would fail here).
  const plainNoSimd = wasmValidate(PLAIN, { simd: false });
  log(`wasm-validate --disable-simd ${PLAIN}: ${plainNoSimd.ok ? 'valid' : plainNoSimd.out}`);
  await check(`${PLAIN} holds no SIMD instruction (wasm-validate --disable-simd accepts it)`, existsSync(path.join(ROOT, PLAIN)) && plainNoSimd.ok,
    `${plainNoSimd.out}; ${targetFeatures(PLAIN)}`);
  const simdOff = wasmValidate(SIMD, { simd: false });
  const simdOn = wasmValidate(SIMD, { simd: true });
  log(`wasm-validate ${SIMD}: with SIMD ${simdOn.ok ? 'valid' : simdOn.out}; --disable-simd ${simdOff.ok ? 'valid' : simdOff.out}`);
  await check(`the same validation refuses the SIMD build ${SIMD}, which is valid with SIMD on (the check tells them apart)`,
    existsSync(path.join(ROOT, SIMD)) && !simdOff.ok && simdOn.ok, `--disable-simd: ${simdOff.ok ? 'valid' : simdOff.out}; with SIMD: ${simdOn.ok ? 'valid' : simdOn.out}`);

  const sc = scenes[0];
  const page = await context.newPage();
  const fetched = [];
  page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
  try {
    await page.goto(pageUrl(suite.base, 'wasm=plain'));
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
    const details = JSON.parse((await page.textContent('#info')) || '{}');
    await page.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    const r = await askAndWait(page, { question: sc.question, ratio: 1 });
    const want = builtinAnswer(sc).answer;
    const wasm = fetched.filter((u) => u.endsWith('.wasm'));
    // the image check's Worker always runs pkg/plain/; nothing on this page may fetch another build
    await check('the plain build (no SIMD, for older browsers) loads and answers as the CLI; no other build was fetched',
      details.wasm_build === 'plain' && r.error === null && r.answer === want && wasm.includes(`/${PLAIN}`) && wasm.every((u) => u === `/${PLAIN}`),
      `${details.wasm_build}: page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}; wasm fetched: ${wasm.join(' ')}`);
  } finally {
    await page.close();
  }
});

// A build whose files are not there yet: a first scripts/serve.sh serves the page once the plain
// build exists and builds the SIMD and threaded ones after. Here their files answer 404 (routed in
// this page's context, its Workers included); the page must load the plain build, say why in the
// status line (on the CPU: the plain build has no WebGPU), and answer as the CLI.
test('wasm builds not there yet (a first serve.sh): the page runs the plain build, says so, answers as the CLI', SECTION, async (t) => {
  const check = checker(t);
  const sc = scenes[0];
  const ctx = await suite.newContext();
  const missing = /\/pkg\/(threads\/)?zoo_prune_web(_bg\.wasm|\.js)$/;
  const refused = [];
  await ctx.route(missing, (route) => {
    refused.push(new URL(route.request().url()).pathname);
    return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not built yet' });
  });
  try {
    const page = await ctx.newPage();
    // WebGPU asked for: the SIMD build (the only one with WebGPU) is the one missing
    await page.goto(pageUrl(suite.base, 'backend=webgpu'));
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
    const status = await page.textContent('#status');
    const build = await page.getAttribute('#status', 'data-wasm-build');
    await page.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    const r = await askAndWait(page, { question: sc.question, ratio: 1 });
    const want = builtinAnswer(sc).answer;
    log(`SIMD build missing: ${status}; refused ${refused.join(' ')}`);
    await check('with pkg/ missing the page loads the plain build on the CPU, names the missing build, and answers as the CLI',
      build === 'plain' && refused.includes('/pkg/zoo_prune_web.js') && /the simd build \(pkg\/zoo_prune_web\.js\) could not be loaded/.test(status)
      && /so the plain build/.test(status) && /the plain wasm build has no WebGPU/.test(status)
      && (await page.getAttribute('#status', 'data-backend')) !== 'webgpu' && r.error === null && r.answer === want,
      `${build}: ${status}; page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`);
    await page.close();
  } finally {
    await ctx.close();
  }
});

// A server without COOP/COEP (a static host): the page registers coi-sw.js, reloads once through
// it and is then isolated, so the CPU path runs the threaded build; with the service worker skipped
// (?coi=0, tests only) the page is not isolated and runs the one-thread SIMD build. Both answer the
// first scene as the CLI does. Each in a context of its own (a service worker outlives its page).
async function isolatedRun(url) {
  const sc = scenes[0];
  const want = builtinAnswer(sc).answer;
  const ctx = await suite.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(url);
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
    const details = JSON.parse((await page.textContent('#info')) || '{}');
    const status = await page.textContent('#status');
    const isolated = await page.evaluate(() => self.crossOriginIsolated);
    const controlled = await page.evaluate(() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller));
    await page.waitForFunction((f) => document.getElementById('image-name').textContent.includes(f), sc.file, { timeout: 30_000 });
    const r = await askAndWait(page, { question: sc.question, ratio: 1 });
    const answered = r.error === null && r.answer === want;
    const detail = `isolated ${isolated}, controlled ${controlled}, ${details.wasm_build} x${details.cpu_threads}, ${status}: `
      + `page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`;
    return { details, status, isolated, controlled, answered, detail };
  } finally {
    await ctx.close();
  }
}

test('an isolated page whose thread pool cannot start falls back to one thread', SECTION, async (t) => {
  const check = checker(t);
  // ?threads=0 (tests only): the pool refuses it
  const x = await isolatedRun(pageUrl(suite.base, 'backend=cpu&threads=0'));
  await check('when the thread pool cannot start, the page loads the one-thread SIMD build instead, says why, and answers as the CLI',
    x.details.wasm_build === 'simd' && x.details.cpu_threads === 1 && /on the CPU, one thread: .*threads could not start/.test(x.status)
      && x.answered, x.detail);
});

test('served without COOP/COEP: one thread without the service worker, threads through it', SECTION, async (t) => {
  const check = checker(t);
  // without the service worker (first, before one is registered for this origin)
  let x = await isolatedRun(pageUrl(suite.noIsoBase, 'backend=cpu&coi=0'));
  await check('a page that is not cross-origin isolated runs the one-thread SIMD build, says why, and answers as the CLI',
    !x.isolated && !x.controlled && x.details.wasm_build === 'simd' && x.details.cpu_threads === 1
      && /on the CPU, one thread: .*not cross-origin isolated, which threads need\)/.test(x.status)
      && x.answered, x.detail);
  x = await isolatedRun(pageUrl(suite.noIsoBase, 'backend=cpu'));
  await check('served without COOP/COEP, the page isolates itself through its service worker (one reload) and the CPU path runs the threaded build',
    x.isolated && x.controlled && x.details.wasm_build === 'simd+threads' && x.details.cpu_threads >= 1 && x.answered, x.detail);
});

test('a production load (no ?test=1) loads no test hooks', SECTION, async (t) => {
  const check = checker(t);
  const prod = await context.newPage();
  const prodRequests = [];
  prod.on('request', (r) => prodRequests.push(new URL(r.url()).pathname));
  await prod.goto(`${suite.base}/www/`);
  await prod.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const hooks = await prod.evaluate(() => typeof window.__zpw);
  await check('a page opened without ?test=1 loads no test hooks (window.__zpw undefined, test-hooks.js not fetched)', hooks === 'undefined'
    && !prodRequests.some((u) => u.endsWith('/test-hooks.js')) && (await prod.getAttribute('#status', 'data-state')) === 'ready',
    `${hooks}; ${prodRequests.filter((u) => u.startsWith('/www/')).join(' ')}`);
  await prod.close();
});

test('no uncaught errors; every request went to 127.0.0.1', SECTION, (t) => hygiene(t, suite));
