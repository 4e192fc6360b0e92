// Model loading: the hub buttons against the fake hub served by lib.mjs (/fakehub/: a length the
// hub did not announce, a 503 then Retry, byte progress, the commit pinned, the Cache API on the
// second visit, Clear, a slow download cancelled), local files (a folder, a drop, an incomplete
// set), and a WebGPU device whose buffers are small (?maxbuf=: a split vocabulary matrix answers as
// the CLI; a tensor that cannot fit is named before the weights are fetched).
//
// Run alone: node --test tests/e2e/models.test.mjs (see lib.mjs for what it needs).

import { after } from 'node:test';
import { statSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT, OUT, MODEL, IMAGE, QUESTION, MAX_NEW_TOKENS, LOAD_TIMEOUT, SECTION, FAKEHUB, FAKEHUB_FILES, log, checker, cli,
  expectedAnswer, startSuite, hygiene, need, pageUrl, askAndWait, waitImage, fallbackAdapter, test } from './lib.mjs';

const suite = await startSuite();
after(() => suite.close());
const context = await suite.newContext();
let p2 = null; // the model page (opened on the built-in model, with ?hub= at the fake hub)
const name = 'SmolVLM-256M-Instruct';
const hubLoad = `.hub-load[data-name="HuggingFaceTB/${name}"]`;
const cacheKeys = () => p2.evaluate(async () => (await (await caches.open('zoo-prune-web-models-v2')).keys()).map((r) => new URL(r.url).pathname));
const files = () => p2.$$eval('#download-files li', (ls) => ls.map((l) => ({ file: l.dataset.file, from: l.dataset.from, loaded: Number(l.dataset.loaded),
  total: Number(l.dataset.total), done: l.dataset.done === '1', bar: l.querySelector('progress').value, text: l.querySelector('.bytes').textContent })));
const local = FAKEHUB_FILES.map((f) => path.join(ROOT, MODEL, f));

test('a hub model: a wrong length refused, a 503 then Retry, the commit pinned, the answer = the CLI\'s', SECTION, async (t) => {
  const check = checker(t);
  const expected = expectedAnswer();
  const p = await context.newPage();
  await p.goto(pageUrl(suite.base, 'hub=/fakehub/'));
  await p.waitForSelector('#status[data-state="ready"]', { timeout: LOAD_TIMEOUT });
  p2 = p;
  await p2.evaluate(() => caches.delete('zoo-prune-web-models-v2'));
  await p2.evaluate(() => { document.getElementById('model-panel').open = true; });
  const size = statSync(path.join(ROOT, MODEL, 'model.safetensors')).size;
  // the hub announces one byte more than it sends: refused, not cached, and Retry asks the hub again
  FAKEHUB.misannounce.add(`${name}/model.safetensors`);
  const n0 = FAKEHUB.log.length;
  await p2.click(hubLoad);
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  FAKEHUB.misannounce.clear();
  const mis = await p2.textContent('#download-title');
  const keysMis = await cacheKeys();
  await check('a file whose length is not what the hub announced for the commit is refused, not cached, and its manifest dropped',
    mis.includes(`model.safetensors is ${size} bytes but the hub announced ${size + 1} for this commit`) && keysMis.length === 4
      && keysMis.every((k) => k.includes(`/resolve/${FAKEHUB.sha[name]}/`)), `${mis} · ${keysMis.join(' ')}`);
  // then a 503 on the weights
  FAKEHUB.failOnce.add(`${name}/model.safetensors`);
  await p2.click('#download-retry');
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const failed = await p2.evaluate(() => ({ title: document.getElementById('download-title').textContent,
    retry: !document.getElementById('download-retry').hidden, status: document.getElementById('status').dataset.state }));
  log(`hub download with a 503: ${failed.title}`);
  await check('a failed download says what failed, keeps the current model, offers Retry',
    /HTTP 503/.test(failed.title) && /model\.safetensors/.test(failed.title) && /current model stays in use/.test(failed.title) && failed.retry && failed.status === 'ready',
    JSON.stringify(failed));
  await p2.click('#download-retry');
  await p2.waitForFunction((nm) => document.getElementById('status').dataset.state === 'ready' && document.getElementById('status').textContent.includes(nm)
    || document.getElementById('download').dataset.state === 'failed', name, { timeout: LOAD_TIMEOUT });
  const got1 = await files();
  const retryReqs = FAKEHUB.log.slice(n0);
  log(`hub requests (wrong length, 503, retry): ${retryReqs.join(', ')}`);
  const st1 = got1.find((f) => f.file === 'model.safetensors');
  const wantReqs = [`api ${name}`, ...FAKEHUB_FILES.map((f) => `${name}/${f}`), `api ${name}`, `${name}/model.safetensors`, `${name}/model.safetensors`];
  await check('Retry loads the model: the weights downloaded with their byte count, the small files from the cache, the hub asked for the commit only when none was kept',
    st1 && st1.from === 'network' && st1.loaded === size && st1.total === size && st1.bar === 1 && got1.length === 5
      && got1.filter((f) => f.file !== 'model.safetensors').every((f) => f.from === 'cache' && f.done)
      && JSON.stringify(retryReqs) === JSON.stringify(wantReqs),
    `${JSON.stringify(got1)} · requests ${retryReqs.join(', ')}`);
  const pinned = JSON.parse(await p2.textContent('#info')).hub_revision;
  await check('the hub model is pinned to the commit the hub named: shown in the status line and Model details, every file cached under it',
    pinned && pinned.sha === FAKEHUB.sha[name] && pinned.repo === `HuggingFaceTB/${name}`
      && (await p2.textContent('#status')).includes(`hub commit ${FAKEHUB.sha[name].slice(0, 7)}`)
      && (await cacheKeys()).filter((k) => k.includes(name)).length === 6, JSON.stringify(pinned));
  const status2 = await p2.textContent('#status');
  await check('the hub model is in use, the status line names it with its size and adapter', status2.includes(name) && /parameters/.test(status2) && /backend: /.test(status2), status2);
  await p2.screenshot({ path: path.join(OUT, 'model-download.png'), fullPage: false });
  // this page opened on the built-in model and its first scene: ask about the photo the CLI used
  await p2.click('[data-sample="photo.png"]');
  await p2.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 30_000 });
  const r2 = await askAndWait(p2, { question: QUESTION, ratio: 1 });
  await check('the downloaded model answers (the fake hub serves the test model: the CLI\'s answer)', r2.error === null && r2.answer === expected, r2.error || r2.answer);
});

test('the second visit loads from the browser cache; Clear cached models empties it', SECTION, async (t) => {
  const check = checker(t);
  need(p2);
  await p2.reload();
  await p2.waitForSelector('#status[data-state="ready"]', { timeout: LOAD_TIMEOUT });
  await p2.evaluate(() => { document.getElementById('model-panel').open = true; });
  const n0 = FAKEHUB.log.length;
  await p2.click(hubLoad);
  await p2.waitForFunction((nm) => document.getElementById('status').textContent.includes(nm) || document.getElementById('download').dataset.state === 'failed',
    name, { timeout: LOAD_TIMEOUT });
  const got2 = await files();
  await check('the second visit loads every file from the browser cache, no request to the hub', FAKEHUB.log.length === n0 && got2.length === 5
    && got2.every((f) => f.from === 'cache'), `${FAKEHUB.log.slice(n0).join(', ')}; ${JSON.stringify(got2.map((f) => f.from))}`);
  await p2.waitForFunction(() => document.getElementById('cache-info').dataset.files === '5', null, { timeout: 30_000 }).catch(() => {});
  const cachedBefore = await p2.getAttribute('#cache-info', 'data-files');
  await p2.click('#clear-cache');
  await p2.waitForFunction(() => document.getElementById('cache-info').dataset.files === '0', null, { timeout: 30_000 });
  const left = await p2.evaluate(async () => (await caches.has('zoo-prune-web-models-v2')) ? (await (await caches.open('zoo-prune-web-models-v2')).keys()).length : 0);
  await check('Clear cached models empties the cache', cachedBefore === '5' && left === 0, `${cachedBefore} files before, ${left} after`);
});

test('a slow download: its bytes as they arrive; Cancel ends it', SECTION, async (t) => {
  const check = checker(t);
  need(p2);
  // its progress bar moves through intermediate values; Cancel ends it, keeps the current model,
  // caches the complete small files but not the partial weights
  const name5 = 'SmolVLM-500M-Instruct';
  await p2.evaluate(() => { document.getElementById('model-panel').open = true; });
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
  await check('a download shows its bytes as they arrive (a bar between 0 and 1)', mid.total === statSync(path.join(ROOT, MODEL, 'model.safetensors')).size
    && mid.bar > 0 && mid.bar < 1 && / of /.test(mid.text), JSON.stringify(mid));
  await check('Cancel ends a download: the current model stays, the partial weights are not cached, Retry offered', cancelled.state === 'cancelled'
    && cancelled.status === 'ready' && cancelled.retry && cancelled.keys.length === 4 && !cancelled.keys.some((k) => k.endsWith('model.safetensors')),
    JSON.stringify(cancelled));
});

test('local files: a model folder, files dropped on the panel, an incomplete set', SECTION, async (t) => {
  const check = checker(t);
  need(p2);
  // a whole folder loads; a partial one is refused with the missing names
  await p2.setInputFiles('#model-files', local);
  await p2.waitForFunction(() => /local files/.test(document.getElementById('status').textContent) || document.getElementById('download').dataset.state === 'failed',
    null, { timeout: LOAD_TIMEOUT });
  await check('Load model from local files loads a model folder\'s files', /local files/.test(await p2.textContent('#status')), await p2.textContent('#status'));
  // dropped on the model panel: the three required files only (the processor takes SmolVLM's defaults)
  await p2.evaluate(async (urls) => {
    const dt = new DataTransfer();
    for (const u of urls) dt.items.add(new File([await (await fetch(u)).blob()], u.split('/').pop()));
    document.getElementById('model-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => `/${MODEL}/${f}`));
  await p2.waitForFunction(() => document.getElementById('download').dataset.state !== 'loading', null, { timeout: LOAD_TIMEOUT });
  const dropped = await p2.evaluate(() => [document.getElementById('status').textContent, document.getElementById('download-title').textContent,
    [...document.querySelectorAll('#download-files li')].map((l) => l.dataset.file).join(',')]);
  await check('model files dropped on the model panel load (required files only)', /local files/.test(dropped[0]) && /: loaded\.$/.test(dropped[1].trim())
    && dropped[2] === 'config.json,tokenizer.json,model.safetensors', dropped.join(' | '));
  await p2.click('#builtin-load');
  await p2.waitForFunction(() => /built-in/.test(document.getElementById('status').textContent) && document.getElementById('status').dataset.state === 'ready',
    null, { timeout: LOAD_TIMEOUT }).catch(() => {});
  await check('"Built-in model" brings back the built-in model', /builtin-model \(built-in\)/.test(await p2.textContent('#status')) && await p2.isVisible('#model-note'),
    await p2.textContent('#status'));
  await p2.setInputFiles('#model-files', [local[0], local[1]]);
  await p2.waitForSelector('#download[data-state="failed"]', { timeout: 30_000 });
  const partial = await p2.textContent('#download-title');
  await check('local files without model.safetensors: a clear message, the model stays', /model\.safetensors missing/.test(partial)
    && (await p2.getAttribute('#status', 'data-state')) === 'ready', partial);
  await p2.close();
});

// A WebGPU device whose buffers are small (?maxbuf=, tests only, lowers the adapter's limit): on
// tiny_single (embed_tokens 92 160 bytes in f32, lm_head tied to it, every other tensor <= 32 768)
// a 50 000-byte limit splits embed_tokens in two (lookup and logits) and the answer is the CLI's; a
// 30 000-byte one cannot hold the connector, which the page names before it fetches model.safetensors.
test('WebGPU buffers smaller than a tensor: split, or refused before the download', SECTION, async (t) => {
  const check = checker(t);
  const SINGLE = 'tests/fixtures/tiny_single';
  const p = await context.newPage();
  await p.goto(`${suite.base}/www/coi-sw.js`); // any page of this origin, to ask for an adapter
  const adapter = await fallbackAdapter(p);
  if (adapter === null) {
    await p.close();
    t.skip('this browser has no WebGPU adapter');
    return;
  }
  const want = cli(['answer', '--model', SINGLE, '--image', IMAGE, '--prompt', QUESTION, '--max-new-tokens', String(MAX_NEW_TOKENS)]).trimEnd();
  await p.goto(pageUrl(suite.base, `model=../${SINGLE}/&backend=webgpu&maxbuf=50000`));
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const status = await p.textContent('#status');
  const details = JSON.parse((await p.textContent('#info')) || '{}');
  await waitImage(p, /photo\.png/);
  const r = await askAndWait(p, { question: QUESTION, ratio: 1 });
  await check('on WebGPU with 50 000-byte buffers the (tied) vocabulary matrix is split in two and the answer is the CLI\'s',
    /backend: WebGPU/.test(status) && /split to fit this GPU's buffers: model\.text_model\.embed_tokens\.weight in 2\)/.test(status)
      && (details.split_tensors || []).length === 1 && r.error === null && r.answer === want, `${status} · page ${JSON.stringify(r.answer)} / CLI ${JSON.stringify(want)} ${r.error || ''}`);
  await p.close();
  const q = await context.newPage();
  const fetched = [];
  q.on('request', (req) => fetched.push(new URL(req.url()).pathname));
  await q.goto(pageUrl(suite.base, `model=../${SINGLE}/&backend=webgpu&maxbuf=30000`));
  await q.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  const failed = await q.textContent('#status');
  await check('a model with a tensor larger than the device\'s buffers is refused before its weights are fetched, naming the tensor and the limit',
    (await q.getAttribute('#status', 'data-state')) === 'failed' && /model\.connector\.modality_projection\.proj\.weight/.test(failed)
      && /largest buffer \(30000 bytes/.test(failed) && !fetched.some((u) => u.endsWith('model.safetensors')), `${failed} · fetched ${fetched.filter((u) => u.includes(SINGLE)).join(' ')}`);
  await q.close();
});

test('no uncaught errors; every request went to 127.0.0.1', SECTION, (t) => hygiene(t, suite));
