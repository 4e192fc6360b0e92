// Bad input and impatience at scale, on the tiny test checkpoint (WebGPU): images the browser shows
// but the model's decoder refuses, an image too large to decode, ten images given at once,
// controls changed faster than the Worker ranks, the slider dragged during an answer, Stop then
// Ask at once, a model loaded during an answer. Nothing may be lost: the previous image, its
// overlay and the comparison table stay; the answers equal the native CLI's.
//
// Run alone: node --test tests/e2e/stress.test.mjs (see lib.mjs for what it needs).

import { after } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT, OUT, MODEL, IMAGE, QUESTION, SEED, MAX_NEW_TOKENS, ANSWER_TIMEOUT, LOAD_TIMEOUT, SECTION, log, checker, expectedAnswer,
  pngWithSize, startSuite, hygiene, openTinyPage, need, setRatio, setControls, waitRanked, askAndWait, rowsOf, waitImage, test, backToSample,
  giveImage, pageUrl } from './lib.mjs';

const suite = await startSuite();
after(() => suite.close());
const context = await suite.newContext();
let page = null;
let expected = null;
let startRows = null; // the table before the stress: none of its rows may be lost
const random = { method: 'random', budget: 'per-tile', seed: SEED };

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

test('the tiny checkpoint loads on WebGPU and answers as the CLI (the table\'s first row)', SECTION, async (t) => {
  const check = checker(t);
  const opened = await openTinyPage(context, suite.base);
  await check('the model of ?model= loads', opened.ready, opened.status);
  if (!opened.ready) return;
  expected = expectedAnswer();
  const r = await askAndWait(opened.page, { question: QUESTION, ratio: 1 });
  await check('the first answer equals the CLI\'s', r.error === null && r.answer === expected,
    r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);
  page = opened.page;
  startRows = (await look()).rows;
});

test('images the decoder refuses: a truncated PNG, a 40000 x 40000 one', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  await page.selectOption('#grid', '0');
  await backToSample(page, random);
  const before = await look();

  // a truncated PNG: Chromium shows what it has, our decoder (as the CLI) refuses it
  const square = readFileSync(path.join(ROOT, 'tests/fixtures/photo_square.png'));
  await page.setInputFiles('#image-file', { name: 'truncated.png', mimeType: 'image/png', buffer: square.subarray(0, Math.floor(square.length * 0.6)) });
  await waitError(/truncated\.png/);
  let now = await look();
  log(`truncated PNG -> ${now.error}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(OUT, 'stress-truncated.png') });
  await check('a truncated PNG the browser can show is refused by name with the decoder\'s reason', /model's decoder cannot read it/.test(now.error)
    && /broken or truncated/.test(now.error) && /previous image is kept/.test(now.error), now.error);
  await check('after the truncated PNG the previous image, its overlay and ranking stay (nothing encoded)', /photo\.png/.test(now.name)
    && now.overlay === 'ranked' && now.encodes === before.encodes && now.version === before.version, JSON.stringify({ ...now, rows: now.rows.length }));

  // 40000 x 40000: the browser cannot decode it; the page says it is too large, with the size and the limit
  await page.setInputFiles('#image-file', { name: 'giant.png', mimeType: 'image/png', buffer: pngWithSize(IMAGE, 40000, 40000) });
  await waitError(/giant\.png/);
  now = await look();
  log(`40000 x 40000 PNG -> ${now.error}`);
  await check('a 40000 x 40000 image is called too large, with its size and the limit; the previous image stays',
    /too large \(40000x40000\)/.test(now.error) && /64 megapixels/.test(now.error) && /previous image is kept/.test(now.error)
    && /photo\.png/.test(now.name) && now.overlay === 'ranked', now.error);
});

test('faster than the Worker: ten images at once, five methods at once, the slider, a question typed', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  await backToSample(page, random);
  const before = await look();
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
  let now = await look();
  await check('ten images given at once: the page ends on the last, which alone is encoded', /burst-9\.png/.test(now.name) && now.error === null
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
  await check('five methods chosen at once: at most the first and the last are ranked', fn.error === null && now.ranks - ranks0 <= 2
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
  await check('moving the slider copies nothing (20 moves, no copy of the image)', copies === 0, `${copies} copies`);

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
  await check('another question typed: a FastV overlay turns stale (ranked again on change), a feature-norm one stays current',
    fastvTyped.typed === 'stale' && normTyped.typed === 'ranked' && fastvTyped.error === null, JSON.stringify({ fastvTyped, normTyped }));
});

test('answers under pressure: the slider dragged, Stop then Ask, a model loaded mid-answer', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  // the slider dragged through an answer: the answer is the one asked for, the overlay follows the slider
  await backToSample(page, { ...random, method: 'feature-norm' });
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
  await check('the slider dragged during an answer: the answer is the keep-1.0 answer asked for, its row says all tokens were kept',
    moves.i > 3 && dragged.error === null && dragged.answer === expected && rowsAfterDrag.length === rows0 + 1
    && new RegExp(`^${dragged.total}\\b`).test(lastRow.kept), `${moves.i} moves; ${JSON.stringify(dragged)}; row ${JSON.stringify({ ...lastRow, thumb: lastRow.thumb ? '(png)' : '' })}`);
  await check('after the drag the overlay keeps what the slider says', dragged.kept === Math.max(1, Math.round(moves.last * dragged.total)),
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
  await check('Stop mid-answer then Ask at once: the new answer is complete and right, both rows in the table', again.error === null
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
  const after2 = await askAndWait(page, { question: QUESTION, ratio: 1 });
  const tableAfter = (await look()).rows;
  log(`model loaded during an answer: ${swapped.status}; the answer was left ${swapped.answer}`);
  await check('a model loaded during an answer takes over; the page answers with it, the table kept', /local files/.test(swapped.status)
    && ['stopped', 'done', 'done-empty'].includes(swapped.answer) && after2.error === null && after2.answer === expected
    && tableAfter.length >= tableBefore.length + 1 && tableBefore.every((r, i) => tableAfter[i] === r),
    `${JSON.stringify(swapped)}; ${after2.error || after2.answer}; rows ${tableBefore.length} -> ${tableAfter.length}`);
  await check('nothing in the stress sections lost a table row', startRows.length > 0 && tableAfter.length >= startRows.length
    && startRows.every((r, i) => tableAfter[i] === r), `${startRows.length} -> ${tableAfter.length}`);
});

test('a new image during a many-tile encode: the encode stops after its current tile; the time is estimated', SECTION, async (t) => {
  const check = checker(t);
  // tiles made slow (?tiledelay=: each tile's yield to the Worker's messages waits 400 ms), as on a
  // slow device: a 1600 x 1600 image is 3 x 3 tiles + global on the tiny checkpoint (10 tiles)
  const p = await context.newPage();
  await p.goto(pageUrl(suite.base, `model=../${MODEL}/&backend=webgpu&tiledelay=400`));
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  await p.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent), null, { timeout: 60_000 });
  await p.selectOption('#grid', '0');
  await p.waitForFunction(() => window.__zpw.state.encoding && window.__zpw.state.tileMs > 0, null, { timeout: 60_000 });
  const tilingText = await p.$$eval('#grid option', (os) => os.map((o) => o.textContent));
  await check('once a tile has been timed, each Tiling choice says about how long it takes',
    tilingText.filter((x) => /tokens, about [0-9.]+ s/.test(x)).length >= 2, JSON.stringify(tilingText));
  const encodes0 = await p.evaluate(() => Number(document.body.dataset.encodes || 0));
  await giveImage(p, 'drop', { name: 'wide.png', type: 'image/png', canvas: { w: 1600, h: 1600 } });
  await p.waitForFunction(() => {
    const e = window.__zpw.state.encodeProgress;
    return /wide\.png/.test(document.getElementById('image-name').textContent) && e && e.open && e.done >= 1 && e.total >= 8;
  }, null, { timeout: 60_000 });
  const during = await p.evaluate(() => ({ text: document.getElementById('encode-progress-text').textContent,
    total: window.__zpw.state.encodeProgress.total, tileMs: window.__zpw.state.tileMs }));
  await check('a many-tile encode shows its tiles and the time left', /tile [0-9]+ of [0-9]+ · about [0-9.]+ s left/.test(during.text), during.text);
  const t0 = Date.now();
  await giveImage(p, 'drop', { name: 'second.png', type: 'image/png', canvas: { w: 60, h: 40 } });
  await p.waitForFunction(() => {
    const s = window.__zpw.state;
    return /second\.png/.test(document.getElementById('image-name').textContent) && s.encoding && s.encoding.imageVersion === s.imageVersion;
  }, null, { timeout: 60_000 });
  const elapsed = Date.now() - t0;
  const after = await p.evaluate(() => ({ encodes: Number(document.body.dataset.encodes || 0), tiles: window.__zpw.state.encoding.tiles,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent }));
  log(`second image encoded ${elapsed} ms after it was given (a tile ${during.tileMs.toFixed(0)} ms; the first had ${during.total} tiles)`);
  await check('the first image\'s encode stopped (never finished): only the second was encoded, no error shown',
    after.encodes === encodes0 + 1 && after.error === null, JSON.stringify(after));
  // at most the tile in progress, then the second image's own tiles (+ 2 s for the image intake and the page)
  const bound = during.tileMs * (1 + after.tiles) + 2000;
  await check(`the second image was encoded within one tile's time plus its own (${elapsed} ms, bound ${bound.toFixed(0)} ms)`,
    elapsed <= bound, `${elapsed} ms`);
  await p.close();
});

test('no uncaught errors; every request went to 127.0.0.1', SECTION, (t) => hygiene(t, suite));
