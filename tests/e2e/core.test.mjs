// The page's main flow on the tiny test checkpoint (WebGPU, SwiftShader here): the model of
// ?model= loads; the streamed answer equals the native CLI's answer computed now; an empty
// question and a broken image give readable errors; Stop ends an answer; the page still answers
// after all that.
//
// Pruning: for every method the page offers, in both budget modes, the page ranks the visual
// tokens in its Worker (WebGPU) and the order must equal the native CLI's `--ranking-json` order
// (flex, CPU) for the same image, question and seed. The overlay's kept count follows the keep
// slider without any message to the Worker; a zoo answer at keep 0.25 equals the CLI's; one tile
// ranks as the CLI's --grid 1. The wasm API's own errors (rank before encode, unknown method, bad
// parameters) are checked directly. Then: no uncaught page error, every request to 127.0.0.1.
//
// Run alone: node --test tests/e2e/core.test.mjs (see lib.mjs for what it needs).

import { after } from 'node:test';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  OUT, MODEL, QUESTION, KEEP, SEED, METHODS, BUDGETS, SECTION, log, checker, expectedAnswer, nativeRanking, compareOrders,
  startSuite, hygiene, openTinyPage, need, setRatio, setControls, waitRanked, askAndWait, test } from './lib.mjs';

const suite = await startSuite();
after(() => suite.close());
const context = await suite.newContext();
let page = null; // the page on the test checkpoint, once it loaded
let expected = null; // the CLI's unpruned answer

test('the tiny checkpoint loads on WebGPU', SECTION, async (t) => {
  const check = checker(t);
  const opened = await openTinyPage(context, suite.base);
  const p = opened.page;
  const adapter = await p.evaluate(async () => {
    if (!navigator.gpu) return 'no navigator.gpu';
    const a = await navigator.gpu.requestAdapter();
    if (!a) return 'no adapter';
    const i = a.info || {};
    return `${i.vendor || '?'} / ${i.architecture || '?'}${a.isFallbackAdapter || i.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
  });
  log(`page's WebGPU adapter: ${adapter}`);
  await check('the model of ?model= loads', opened.ready, opened.status);
  if (!opened.ready) throw new Error('cannot go on without a model');
  log(`model info: ${(await p.textContent('#info')).replace(/\s+/g, ' ')}`);
  await check('the model runs on WebGPU', opened.onWebgpu || process.env.ZPW_ALLOW_CPU === '1', opened.status);
  await check('no built-in model note for a model folder given by ?model=', !(await p.isVisible('#model-note')));
  page = p;
});

test('answers equal the CLI\'s; an empty question, a broken image, Stop', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  expected = expectedAnswer();
  // count the answer's updates to see it stream
  await page.evaluate(() => {
    window.__answerUpdates = 0;
    new MutationObserver(() => { window.__answerUpdates += 1; })
      .observe(document.getElementById('answer'), { childList: true, characterData: true, subtree: true });
  });
  const methods = await page.$$eval('#method option', (os) => os.map((o) => o.value));
  await check('the method menu lists every pruning method', JSON.stringify(methods) === JSON.stringify(METHODS), methods.join(', '));

  // keep ratio 1: every visual token, the unpruned answer
  let tAsk = Date.now();
  let r = await askAndWait(page, { question: QUESTION, ratio: 1 });
  const updates = await page.evaluate(() => window.__answerUpdates);
  log(`answer in ${((Date.now() - tAsk) / 1000).toFixed(1)} s, ${updates} DOM updates: ${JSON.stringify(r.answer)}`);
  log(`timings shown: ${r.timings}`);
  await check('no error on the sample question', r.error === null, r.error || '');
  await check('the streamed answer (keep 1.0) equals the unpruned CLI answer', r.answer === expected,
    `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);
  await check('timings are shown', /encode \d+ ms/.test(r.timings) && /tok\/s/.test(r.timings), r.timings);

  // empty question
  r = await askAndWait(page, { question: '   ' });
  log(`empty question -> ${JSON.stringify(r.error)}`);
  await check('an empty question gives a readable error', r.error !== null && /question is empty/i.test(r.error), String(r.error));
  await check('the page is usable after the empty question', r.askEnabled);

  // broken image: a few random bytes. The page refuses it before the Worker sees it and keeps
  // the previous image (the wasm decoder's own error is checked in the API section).
  await page.setInputFiles('#image-file', { name: 'broken.png', mimeType: 'image/png', buffer: randomBytes(48) });
  await page.waitForFunction(() => /broken\.png/.test(document.getElementById('error').textContent), null, { timeout: 30_000 });
  const broken = await page.evaluate(() => ({ error: document.getElementById('error').textContent,
    name: document.getElementById('image-name').textContent, overlay: document.getElementById('overlay').dataset.state }));
  log(`broken image -> ${JSON.stringify(broken)}`);
  await page.screenshot({ path: path.join(OUT, 'smoke-error.png'), fullPage: true });
  await check('a broken image gives a readable error naming the file', /broken\.png/.test(broken.error) && /cannot read this file as an image/.test(broken.error)
    && /previous image is kept/.test(broken.error), broken.error);
  await check('a broken image keeps the previous image and its overlay', /photo\.png/.test(broken.name) && broken.overlay === 'ranked', JSON.stringify(broken));

  // back to the sample (the row's first button): the page still answers, the same text
  await page.click('[data-sample="photo.png"]');
  await page.waitForFunction(() => /photo\.png/.test(document.getElementById('image-name').textContent));
  // Stop: a long answer, stopped once its first piece is shown
  await page.fill('#question', QUESTION);
  await page.fill('#max-tokens', '200');
  await page.click('#ask');
  await page.waitForFunction(() => document.getElementById('answer').textContent.length > 0
    || !document.getElementById('error').hidden, null, { timeout: 300_000, polling: 50 });
  await page.click('#stop');
  await page.waitForFunction(() => ['stopped', 'done', 'done-empty'].includes(document.getElementById('answer').dataset.state)
    || !document.getElementById('error').hidden, null, { timeout: 300_000, polling: 100 });
  const stopped = await page.evaluate(() => ({
    state: document.getElementById('answer').dataset.state,
    timings: document.getElementById('timings').textContent,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
  }));
  log(`stop -> ${stopped.state}: ${stopped.timings}`);
  await check('Stop ends a long answer early', stopped.state === 'stopped' && stopped.error === null && /stopped/.test(stopped.timings),
    JSON.stringify(stopped));

  tAsk = Date.now();
  r = await askAndWait(page, { question: QUESTION, ratio: 1 });
  log(`answer again in ${((Date.now() - tAsk) / 1000).toFixed(1)} s: ${JSON.stringify(r.answer)}`);
  await check('the page still answers after the errors and Stop', r.error === null && r.answer === expected,
    r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expected)}`);
});

test('every method, both budget modes: the page\'s order equals the CLI\'s', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  const native = {};
  for (const m of METHODS) for (const b of BUDGETS) native[`${m}|${b}`] = nativeRanking(m, b);
  log(`native rankings: ${Object.keys(native).length} (CLI, flex), e.g. zoo per-tile ${native['zoo|per-tile'].order.join(',')}`);
  await page.fill('#question', QUESTION);
  await page.dispatchEvent('#question', 'change');
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
        // the three checks of this pair fail: none of them can be made
        for (const what of ['the browser\'s order equals the CLI\'s', 'warnings as the CLI\'s', 'the overlay keeps the budget']) {
          await check(`${method} (${budget}): ${what}`, false, `no ranking in the browser: ${w.error || 'no order'}`);
        }
        continue;
      }
      const c = compareOrders(w.order, nat);
      agreement.push(`${method}/${budget}: ${c.identical ? 'identical' : c.ok ? `near-tie at step ${c.step}` : 'DIFFERENT'}`);
      log(`${method} (${budget}) ranked in ${secsRank} s: ${c.identical ? 'identical order' : c.detail}`
        + `${w.warnings ? `; warnings: ${w.warnings}` : ''}`);
      await check(`${method} (${budget}): the browser's order equals the CLI's`, c.ok, c.identical ? '' : c.detail);
      await check(`${method} (${budget}): warnings as the CLI's`,
        (nat.warnings || []).every((x) => w.warnings.includes(x)) && (w.warnings === '') === ((nat.warnings || []).length === 0),
        `page ${JSON.stringify(w.warnings)} vs CLI ${JSON.stringify(nat.warnings)}`);
      const k = Math.max(1, Math.round(KEEP * w.total));
      await check(`${method} (${budget}): the overlay keeps ${k} tokens`, w.kept === k, w.label);
      if (budget === 'per-tile' || method === 'zoo') {
        await page.locator('.image-panel').screenshot({ path: path.join(OUT, `prune-${method}-${budget}.png`) });
      }
    }
  }
  log(`agreement: ${agreement.join('; ')}`);
});

const zooParams = { method: 'zoo', budget: 'per-tile', seed: SEED };

test('the slider redraws from the stored order: no Worker message', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  await setControls(page, zooParams);
  const zr = await waitRanked(page, zooParams);
  const posts0 = await page.evaluate(() => document.body.dataset.workerPosts);
  for (const [ratio, via] of [[0.1, '#keep-ratio'], [0.5, '#keep-ratio-num'], [0.83, '#keep-ratio']]) {
    await setRatio(page, ratio, via);
    const o = await page.evaluate(() => ({ ...document.getElementById('overlay').dataset,
      label: document.getElementById('keep-label').textContent }));
    const k = Math.max(1, Math.round(ratio * zr.total));
    await check(`slider ${ratio}: the overlay keeps round(${ratio} x ${zr.total}) = ${k} tokens`, Number(o.kept) === k && o.state === 'ranked',
      `data-kept ${o.kept}, ${o.label}`);
    if (ratio === 0.5) await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'prune-zoo-slider-0.5.png') });
  }
  const posts1 = await page.evaluate(() => document.body.dataset.workerPosts);
  await check('moving the slider sends nothing to the Worker', posts0 === posts1, `${posts0} -> ${posts1} messages`);
});

test('a pruned answer: zoo at keep 0.25 equals the CLI\'s', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  const expectedZoo = expectedAnswer(['--method', 'zoo', '--keep', String(KEEP), '--seed', String(SEED)]);
  await setControls(page, zooParams);
  const zr = await waitRanked(page, zooParams);
  const tAsk = Date.now();
  const r = await askAndWait(page, { question: QUESTION, ratio: KEEP });
  log(`zoo keep ${KEEP} answer in ${((Date.now() - tAsk) / 1000).toFixed(1)} s: ${JSON.stringify(r.answer)}; ${r.timings}`);
  await check(`the zoo answer at keep ${KEEP} equals the CLI's`, r.error === null && r.answer === expectedZoo,
    r.error || `page ${JSON.stringify(r.answer)} vs CLI ${JSON.stringify(expectedZoo)}`);
  const kZoo = Math.max(1, Math.round(KEEP * zr.total));
  await check('the timings name the method and the kept tokens', new RegExp(`${kZoo} of ${zr.total} visual, zoo`).test(r.timings), r.timings);
  await page.screenshot({ path: path.join(OUT, 'smoke.png'), fullPage: true });
});

test('an image that is not split (1 tile): every token on the photo, no global thumbnail', SECTION, async (t) => {
  const check = checker(t);
  need(page);
  await setControls(page, zooParams);
  await setRatio(page, KEEP);
  await page.selectOption('#grid', '1');
  const g1 = await waitRanked(page, zooParams);
  const g1Native = nativeRanking('zoo', 'per-tile', ['--grid', '1']);
  const g1c = g1.order ? compareOrders(g1.order, g1Native) : { ok: false, detail: g1.error };
  const thumb = await page.isVisible('#global-view');
  log(`one tile: ${g1.total} tokens, order ${g1.order}, ${g1.label}`);
  await check('one tile: the order equals the CLI\'s (--grid 1)', g1c.ok, g1c.detail || '');
  await check('one tile: the overlay keeps round(0.25 x n) tokens, no global thumbnail',
    g1.kept === Math.max(1, Math.round(KEEP * g1.total)) && !thumb, `${g1.label}; thumbnail visible: ${thumb}`);
  await page.locator('.image-panel').screenshot({ path: path.join(OUT, 'prune-zoo-grid1.png') });
});

test('the wasm API\'s own errors, on a second model instance (CPU backend, in the page)', SECTION, async (t) => {
  const check = checker(t);
  need(page);
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
  }, `${suite.base}/${MODEL}/`);
  log(`wasm API errors: ${JSON.stringify(apiErrors)}`);
  const expectErr = (name, re) => check(`API error: ${name}`, apiErrors[name] !== null && re.test(apiErrors[name]), String(apiErrors[name]));
  await expectErr('rankFirst', /no image is encoded yet/);
  await expectErr('answerFirst', /no image is encoded yet/);
  await check('API: encode then rank works', apiErrors.encode === null && apiErrors.rankOk === null, `${apiErrors.encode} / ${apiErrors.rankOk}`);
  await expectErr('unknownMethod', /unknown pruning method "nope"/);
  await expectErr('unknownParam', /unknown method parameter "bogus"/);
  await expectErr('wrongParam', /parameter m does not apply to the method divprune/);
  await expectErr('badValue', /parameter m must be a non-negative integer, got "many"/);
  await expectErr('notObject', /the method parameters must be (an|a JSON) object/);
  await expectErr('badBudget', /unknown budget mode "sideways"/);
  await expectErr('answerUnranked', /no ranking of this image yet/);
  await expectErr('answerZero', /between 1 and \d+ visual tokens/);
  await check('API: a degenerate ZOO proxy is flagged in the warnings',
    apiErrors.linearWarnings.some((w) => /ZOO sensitivity is constant on this proxy \(the connector is linear\)/.test(w)),
    JSON.stringify(apiErrors.linearWarnings));
  const t4 = apiErrors.tiling.find((c) => c.max_grid === 4);
  await check('API: tiling() predicts the grid and tokens encode gives (up to 4x4)',
    t4 && t4.rows === apiErrors.encoded4.rows && t4.cols === apiErrors.encoded4.cols && t4.visual_tokens === apiErrors.encoded4.visual_tokens
    && apiErrors.tiling.length === 5, `${JSON.stringify(apiErrors.tiling)} vs encode ${apiErrors.encoded4.rows}x${apiErrors.encoded4.cols} ${apiErrors.encoded4.visual_tokens}`);
  await expectErr('tilingEmpty', /the image is empty \(0 pixels\)/);
  // the decoder's reason for these bytes (no format it knows), not just any message with "image" in it
  await check('API: bytes that are no image give a readable decode error', apiErrors.badImage !== null
    && /not an image file this page can read \(use PNG or JPEG\)/.test(apiErrors.badImage)
    && !/unreachable|RuntimeError|panic/i.test(apiErrors.badImage), String(apiErrors.badImage));
});

test('no uncaught errors; every request went to 127.0.0.1', SECTION, (t) => hygiene(t, suite));
