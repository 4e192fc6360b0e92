// The model Worker's side of the Evaluate panel: a run over held-out scenes (each scene one call
// to WebModel.evaluate_scene, which encodes it once, ranks it once per method and answers at every
// keep ratio: the library's accuracy::answer_scene, the same function the `evaluate` bin runs), and
// the fingerprint that tells one model's stored results from another's.

import { FromWorker } from './protocol.js';
import { post } from './worker-post.js';

// Runs msg's scenes from msg.start on, posting EVAL_PROGRESS after each answer, EVAL_SCENE after
// each scene and EVAL_DONE at the end. `goOn()` is asked after each answer (after a macrotask, so
// that the Worker has read the messages that came meanwhile): false stops the run there; the scene
// being answered is dropped, those before it were posted.
export async function runEvaluation(model, msg, goOn) {
  const { id, scenes, base, maxGrid = 0, specs, positions, ratios, rule, maxNewTokens, suffix = '', start = 0 } = msg;
  for (let i = start; i < scenes.length; i++) {
    const s = scenes[i];
    const res = await fetch(new URL(s.file, base));
    if (!res.ok) throw new Error(`${s.file}: HTTP ${res.status}`);
    const image = new Uint8Array(await res.arrayBuffer());
    const t0 = performance.now();
    const out = await model.evaluate_scene(image, maxGrid, s.question + suffix, s.answer, rule, specs, positions, ratios, maxNewTokens,
      async (done, total) => {
        post({ type: FromWorker.EVAL_PROGRESS, id, scene: i, done, total });
        await new Promise((resolve) => setTimeout(resolve, 0));
        return goOn();
      });
    if (out === undefined || out === null) {
      post({ type: FromWorker.EVAL_DONE, id, stopped: true });
      return;
    }
    post({ type: FromWorker.EVAL_SCENE, id, scene: i, tokens: out.tokens, answers: out.answers, right: out.right, ms: performance.now() - t0 });
  }
  post({ type: FromWorker.EVAL_DONE, id, stopped: false });
}

// A model's identity for its stored results: SHA-256 (hex) of its config, tokenizer and
// preprocessor files, the safetensors header (every tensor's name, dtype, shape and offsets), the
// file's length and 16 evenly spaced 64 KiB samples of its weights. Not the whole file (a gigabyte
// would take seconds and a second copy in memory): two checkpoints that differ only outside the
// samples share a fingerprint (each random or trained checkpoint differs everywhere).
export async function modelFingerprint(config, tokenizer, preprocessor, safetensors) {
  const parts = [config, tokenizer, preprocessor || new Uint8Array(0)];
  const n = safetensors.length;
  const headerLen = n >= 8 ? Math.min(n, 8 + Number(new DataView(safetensors.buffer, safetensors.byteOffset, 8).getBigUint64(0, true))) : n;
  parts.push(safetensors.subarray(0, headerLen));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(n), true);
  parts.push(len);
  const SAMPLE = 65536;
  const data = n - headerLen;
  for (let k = 0; k < 16 && data > 0; k++) {
    const at = headerLen + Math.floor((data - Math.min(SAMPLE, data)) * k / 15);
    parts.push(safetensors.subarray(at, at + Math.min(SAMPLE, data)));
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  if (!(self.crypto && crypto.subtle)) {
    // an insecure context (a page served over plain http to another machine) has no WebCrypto:
    // two 32-bit FNV-1a hashes instead, marked as such
    let h1 = 0x811c9dc5, h2 = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < all.length; i++) {
      h1 = Math.imul(h1 ^ all[i], 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ all[i] ^ (i & 0xff), 0x01000193) >>> 0;
    }
    return `fnv-${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
