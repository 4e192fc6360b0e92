// The Evaluate panel: the loaded model's accuracy on held-out scenes, measured in the page. On the
// built-in model its numbers equal the native `evaluate` bin's on the same scenes and settings
// (counts, intervals), with progress and a time estimate, export as CSV and JSON, results kept for
// the next visit, Stop keeping what was measured and Run going on from there; on a SmolVLM-layout
// checkpoint of random weights it runs end to end under the word rule and says the weights are
// random.
//
// Run alone: node --test tests/e2e/evaluate.test.mjs (see lib.mjs for what it needs).

import { after } from 'node:test';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT, OUT, MODEL, LOAD_TIMEOUT, ANSWER_TIMEOUT, SECTION, log, checker, show, evaluateCli, startSuite, hygiene, pageUrl, test,
} from './lib.mjs';

const suite = await startSuite();
after(() => suite.close());
const context = await suite.newContext({ acceptDownloads: true });

const N = 20;
// in the page's order of methods (the model's info.methods), which the panel's rows follow
const SPECS = ['zoo', 'random', 'cdpruner'];
const RATIOS = [1, 0.25, 0.0625];

async function openPage(query = '') {
  const page = await context.newPage();
  await page.goto(pageUrl(suite.base, query));
  await page.waitForSelector('#status[data-state="ready"], #status[data-state="failed"]', { timeout: LOAD_TIMEOUT });
  if ((await page.getAttribute('#status', 'data-state')) !== 'ready') throw new Error(`the model did not load: ${await page.textContent('#status')}`);
  await page.waitForFunction(() => document.getElementById('eval-methods').children.length > 0);
  return page;
}

// Sets the panel's controls as a person would (each change event reaches the panel).
async function setPanel(page, { specs, ratios, positions, n, grid = 0 }) {
  await page.evaluate(({ specs, ratios, positions, n, grid }) => {
    const fire = (e) => e.dispatchEvent(new Event('change', { bubbles: true }));
    for (const c of document.querySelectorAll('#eval-methods input')) { c.checked = specs.includes(c.value); fire(c); }
    for (const c of document.querySelectorAll('#eval-ratios input')) { c.checked = ratios.includes(Number(c.value)); fire(c); }
    const p = document.getElementById('eval-positions'); p.value = positions; fire(p);
    const s = document.getElementById('eval-n'); s.value = String(n); fire(s);
    const g = document.getElementById('eval-grid'); g.value = String(grid); fire(g);
  }, { specs, ratios, positions, n, grid });
}

const done = (page) => page.evaluate(() => Number(document.getElementById('eval-plot').dataset.done || 0));
const running = (page) => page.evaluate(() => !document.getElementById('eval-stop').disabled);
const waitIdle = (page, timeout = ANSWER_TIMEOUT) => page.waitForFunction(() => document.getElementById('eval-stop').disabled
  && Number(document.getElementById('eval-plot').dataset.done || 0) > 0, null, { timeout });
// table cells: [row][ratio] = {correct, text}
const cells = (page) => page.$$eval('#eval-table tbody tr', (rs) => rs.map((r) => ({
  label: r.querySelector('th').textContent,
  cells: [...r.querySelectorAll('td')].map((td) => ({ correct: Number(td.dataset.correct), text: td.textContent })),
})));

async function download(page, button) {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  return readFileSync(await d.path(), 'utf8');
}

test('the built-in model: the panel\'s numbers equal evaluate\'s; progress, export, the next visit', SECTION, async (t) => {
  const check = checker(t);
  const args = ['--model', 'assets/builtin-model', '--n', String(N), '--methods', SPECS.join(','), '--ratios', RATIOS.join(','),
    '--positions', 'both', '--json', path.join(OUT, 'evaluate-panel.json')];
  evaluateCli(args);
  const native = JSON.parse(readFileSync(path.join(OUT, 'evaluate-panel.json'), 'utf8'));
  log(`evaluate ${show(args)}: correct ${JSON.stringify(native.correct)}`);

  const page = await openPage();
  await check('the panel states the built-in model\'s rule (the answer equals the scene\'s)', /equals the scene's answer/.test(await page.textContent('#eval-rule')));
  await check('the built-in model is not called random', await page.isHidden('#eval-random'));
  await setPanel(page, { specs: SPECS, ratios: RATIOS, positions: 'both', n: N });
  const t0 = Date.now();
  await page.click('#eval-run');
  // while it runs: the progress bar and, after the first scene, a time estimate
  const seen = { progress: false, estimate: false, partialPlot: false };
  while (await running(page) || Date.now() - t0 < 500) {
    seen.progress ||= await page.isVisible('#eval-progress-box');
    seen.estimate ||= /scene \d+ of 20 · about .* left/.test(await page.textContent('#eval-status'));
    const d = await done(page);
    seen.partialPlot ||= d > 0 && d < N && (await page.$$('#eval-plot polyline')).length === SPECS.length * 2;
    if (!(await running(page)) && d > 0) break;
    await page.waitForTimeout(100);
  }
  await waitIdle(page);
  log(`the panel: ${N} scenes x ${SPECS.length * 2} rows x ${RATIOS.length} ratios in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await check('a progress bar and a time estimate show while it runs', seen.progress && seen.estimate, JSON.stringify(seen));
  await check('the plot fills in as scenes are answered (a line per row before the end)', seen.partialPlot, JSON.stringify(seen));
  await check(`all ${N} scenes answered`, (await done(page)) === N, String(await done(page)));
  const got = await cells(page);
  await check('the rows are evaluate\'s, in its order', JSON.stringify(got.map((r) => r.label)) === JSON.stringify(native.methods),
    `${JSON.stringify(got.map((r) => r.label))} vs ${JSON.stringify(native.methods)}`);
  const counts = got.map((r) => r.cells.map((c) => c.correct));
  await check('every count of right answers equals evaluate\'s (the same scenes, questions, rankings and answers)',
    JSON.stringify(counts) === JSON.stringify(native.correct), `${JSON.stringify(counts)} vs ${JSON.stringify(native.correct)}`);
  // the page's Wilson intervals (JS) against evaluate's (src/stats.rs), as printed to 0.1
  const texts = got.map((r) => r.cells.map((c) => c.text));
  const want = native.interval95.map((row, m) => row.map(([lo, hi], r) => `${native.accuracy[m][r].toFixed(1)} (${lo.toFixed(1)}–${hi.toFixed(1)})`));
  await check('each cell shows the accuracy and its 95 % interval as evaluate computes them', JSON.stringify(texts) === JSON.stringify(want),
    `${JSON.stringify(texts[0])} vs ${JSON.stringify(want[0])}`);
  await check('the plot has a line and an interval bar per row and ratio', (await page.$$('#eval-plot polyline')).length === SPECS.length * 2
    && (await page.$$('#eval-plot path')).length === SPECS.length * 2 * RATIOS.length);

  const json = JSON.parse(await download(page, '#eval-json'));
  await check('Export JSON: the counts, intervals and each answer', JSON.stringify(json.correct) === JSON.stringify(native.correct)
    && json.scenes === N && json.answers.length === SPECS.length * 2 && json.answers[0][0].length === N && json.rule === 'exact',
  JSON.stringify({ correct: json.correct, scenes: json.scenes, rule: json.rule }));
  const csv = (await download(page, '#eval-csv')).trim().split('\n');
  const scenes = JSON.parse(readFileSync(path.join(ROOT, 'assets/scenes/eval.json'), 'utf8')).scenes;
  const rightInCsv = csv.slice(1).filter((l) => l.endsWith(',1')).length;
  await check('Export CSV: a line per scene, row and ratio, with the question, the expected and the given answer',
    csv.length === 1 + N * SPECS.length * 2 * RATIOS.length && csv[1].includes(JSON.stringify(scenes[0].question))
      && rightInCsv === native.correct.flat().reduce((a, b) => a + b, 0), `${csv.length} lines; ${csv[1]}`);

  // the next visit (same browser profile): the results are there at once, without a run
  await page.close();
  const again = await openPage();
  await again.waitForFunction(() => document.getElementById('eval-plot').dataset.done !== undefined);
  const kept = await cells(again);
  await check('a second visit opens on the last settings and shows their stored results at once', (await done(again)) === N
    && JSON.stringify(kept.map((r) => r.cells.map((c) => c.correct))) === JSON.stringify(native.correct)
    && await again.isDisabled('#eval-run'), await again.textContent('#eval-status'));
  // Stop keeps what was measured, Run goes on from there
  await setPanel(again, { specs: ['zoo'], ratios: [0.25], positions: 'renumber', n: 50 });
  await check('other settings: no stored result', (await done(again)) === 0);
  await again.click('#eval-run');
  await again.waitForFunction(() => Number(document.getElementById('eval-plot').dataset.done || 0) >= 3, null, { timeout: ANSWER_TIMEOUT });
  await again.click('#eval-stop');
  await again.waitForFunction(() => document.getElementById('eval-stop').disabled, null, { timeout: ANSWER_TIMEOUT });
  const stoppedAt = await done(again);
  await check('Stop ends the run and keeps the scenes answered', stoppedAt >= 3 && stoppedAt < 50
    && /stopped/.test(await again.textContent('#eval-status')), `${stoppedAt}: ${await again.textContent('#eval-status')}`);
  await check('Run then says it goes on from the next scene', (await again.textContent('#eval-run')).includes(`go on from scene ${stoppedAt + 1}`),
    await again.textContent('#eval-run'));
  await again.click('#eval-run');
  await again.waitForFunction((k) => Number(document.getElementById('eval-plot').dataset.done || 0) >= k + 2, stoppedAt, { timeout: ANSWER_TIMEOUT });
  await again.click('#eval-stop');
  await again.waitForFunction(() => document.getElementById('eval-stop').disabled, null, { timeout: ANSWER_TIMEOUT });
  const resumed = JSON.parse(await download(again, '#eval-json'));
  // the native counts on those scenes: evaluate on the same first scenes
  evaluateCli(['--model', 'assets/builtin-model', '--n', String(resumed.scenes), '--methods', 'zoo', '--ratios', '0.25',
    '--json', path.join(OUT, 'evaluate-panel-resumed.json')]);
  const nat2 = JSON.parse(readFileSync(path.join(OUT, 'evaluate-panel-resumed.json'), 'utf8'));
  await check('a run stopped and resumed counts as one run over the same first scenes (evaluate\'s count)',
    resumed.scenes > stoppedAt && resumed.correct[0][0] === nat2.correct[0][0], `${resumed.scenes} scenes: ${resumed.correct} vs ${nat2.correct}`);
  await again.click('#eval-clear');
  await check('Clear results empties the plot', (await done(again)) === 0 && (await again.$$('#eval-plot svg')).length === 0);
  await again.close();
});

// tiny_tiles (the SmolVLM layout in small, random weights) with its file marked as random.
function randomTiny() {
  const dir = path.join(OUT, 'random_tiny');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'generation_config.json']) {
    if (existsSync(path.join(ROOT, MODEL, f))) copyFileSync(path.join(ROOT, MODEL, f), path.join(dir, f));
  }
  const buf = readFileSync(path.join(ROOT, MODEL, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  header.__metadata__ = { ...(header.__metadata__ || {}), weights: 'random' };
  let h = Buffer.from(JSON.stringify(header), 'utf8');
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, h, buf.subarray(8 + n)]));
  return path.relative(ROOT, dir);
}

test('a SmolVLM-layout checkpoint of random weights: the word rule, the note, a run end to end', SECTION, async (t) => {
  const check = checker(t);
  const page = await openPage(`model=../${randomTiny()}/`);
  await check('the panel says the weights are random', await page.isVisible('#eval-random'));
  await check('the panel states the word rule', /one of its words/.test(await page.textContent('#eval-rule')));
  await setPanel(page, { specs: ['zoo', 'divprune'], ratios: [1, 0.25], positions: 'renumber', n: 20, grid: 1 });
  await page.click('#eval-run');
  await waitIdle(page);
  await page.waitForFunction(() => Number(document.getElementById('eval-plot').dataset.done || 0) === 20
    && document.getElementById('eval-stop').disabled, null, { timeout: ANSWER_TIMEOUT });
  const json = JSON.parse(await download(page, '#eval-json'));
  await check('20 scenes answered, each answer asked for one word and judged by the word rule',
    json.scenes === 20 && json.rule === 'word' && json.question_suffix === ' Answer with one word.' && json.max_grid === 1
      && json.answers.every((row) => row.every((r) => r.length === 20 && r.every((a) => typeof a === 'string'))),
    JSON.stringify({ scenes: json.scenes, rule: json.rule, first: json.answers[0][0].slice(0, 3) }));
  await check('the table and plot are drawn', (await cells(page)).length === 2 && (await page.$$('#eval-plot polyline')).length === 2);
  // one tile: the tokens of one tile per scene (Model details: tokens_per_tile)
  const perTile = JSON.parse(await page.textContent('#info')).tokens_per_tile;
  await check('Tiling "1 tile": each scene is one tile', json.tokens === perTile, `${json.tokens} tokens, ${perTile} a tile`);
  await page.close();
});

test('no uncaught errors; every request went to 127.0.0.1', SECTION, (t) => hygiene(t, suite));
