// Image intake: the file picker, a drop on the picture, paste, the sample photos and scenes.
// Every image is read and checked (the browser can show it, the model's decoder in
// image-worker.js can read it) before it replaces the current one.

import { el } from './elements.js';
import { state, render } from './state.js';
import { clearError, showError, sameQuestion } from './ui.js';
import { showTiling, onQuestionChange } from './controls.js';
import { prepare, requestTiling } from './worker-link.js';
import { stopPlay } from './classroom.js';

// The largest side an image keeps: bigger ones are downscaled while decoding (createImageBitmap).
const MAX_SIDE = 2048;
// The Photos row, each with the question a click brings.
const SAMPLES = [
  { url: '../tests/fixtures/photo.png', name: 'photo.png', label: 'cat (tiny, 96×64)', question: 'What colour is the cat?' },
  { url: '../assets/samples/astronaut.jpg', name: 'astronaut.jpg', label: 'astronaut', question: 'What is the person wearing?' },
  { url: '../assets/samples/coffee.jpg', name: 'coffee.jpg', label: 'coffee', question: 'What is in the cup?' },
  { url: '../assets/samples/chelsea.jpg', name: 'chelsea.jpg', label: 'cat', question: 'What colour is the cat?' },
  { url: '../assets/samples/rocket.jpg', name: 'rocket.jpg', label: 'rocket', question: 'What is happening in this photo?' },
];

function isPngOrJpeg(bytes) {
  const b = new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength));
  return (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff);
}

// The EXIF orientation of a JPEG (1 = upright; 2..8 = mirrored / turned), read from its APP1 block.
// Browsers show such photos upright, but the model's decoder reads the stored pixels as they are.
function jpegOrientation(bytes) {
  try {
    const v = new DataView(bytes);
    if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return 1;
    let off = 2;
    while (off + 4 <= v.byteLength) {
      const marker = v.getUint16(off);
      if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) return 1; // image data: no EXIF before it
      const len = v.getUint16(off + 2);
      if (marker === 0xffe1 && v.getUint32(off + 4) === 0x45786966) { // "Exif"
        const tiff = off + 10;
        const little = v.getUint16(tiff) === 0x4949;
        const ifd = tiff + v.getUint32(tiff + 4, little);
        const n = v.getUint16(ifd, little);
        for (let i = 0; i < n; i++) {
          const e = ifd + 2 + i * 12;
          if (v.getUint16(e, little) === 0x0112) return v.getUint16(e + 8, little);
        }
        return 1;
      }
      off += 2 + len;
    }
  } catch (e) {
    // a truncated header: treat as upright
  }
  return 1;
}

// The image's size from its header (no full decode), or null when the browser cannot read it.
function probeSize(blob) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve({ width: img.naturalWidth, height: img.naturalHeight }); };
    img.onerror = () => { URL.revokeObjectURL(url); resolve(null); };
    img.src = url;
  });
}

// The model's own decoder on `bytes`, in image-worker.js: {ok: true, width, height},
// {ok: false, message} (it cannot read them), or {ok: null} (no check could be made).
function checkImage(bytes) {
  if (!state.checker) {
    state.checker = new Worker(new URL('image-worker.js', import.meta.url), { type: 'module' });
    const checker = state.checker;
    const settleAll = (r) => { for (const resolve of state.checks.values()) resolve(r); state.checks.clear(); };
    checker.onmessage = ({ data }) => {
      const resolve = state.checks.get(data.id);
      state.checks.delete(data.id);
      if (resolve) resolve(data);
      if (data.dead && state.checker === checker) {
        // its wasm instance crashed: the next image starts a new Worker; nothing waits on this one
        state.checker = null;
        checker.terminate();
        settleAll({ ok: null, message: data.message });
      }
    };
    checker.onerror = (e) => {
      e.preventDefault();
      if (state.checker === checker) state.checker = null;
      checker.terminate();
      settleAll({ ok: null, message: `the image check failed: ${e.message}` });
    };
  }
  const id = ++state.checkId;
  return new Promise((resolve) => {
    state.checks.set(id, resolve);
    const copy = bytes.slice(0);
    state.checker.postMessage({ id, image: copy }, [copy]);
  });
}

// Reads an image the person gave: checks that the browser can decode it, downscales it while
// decoding when its longest side is over MAX_SIDE, re-encodes it as PNG when it is neither PNG
// nor JPEG (the model's decoder reads those two), and has the model's decoder read it. An image
// that fails any of these changes nothing: the previous image, its overlay and ranking stay. When
// images come faster than they are read, only the last one given is taken.
async function takeImage(blob, name) {
  clearError();
  const intake = ++state.intake;
  const superseded = () => intake !== state.intake;
  document.body.dataset.intakeBusy = '1';
  try {
    return await readImage(blob, name, superseded);
  } finally {
    if (!superseded()) delete document.body.dataset.intakeBusy;
  }
}

async function readImage(blob, name, superseded) {
  const size = await probeSize(blob);
  if (superseded()) return false;
  let bytes = await blob.arrayBuffer();
  if (!size || !size.width || !size.height) {
    // the model's decoder tells the one cause the browser does not: an image too large to decode
    const c = await checkImage(bytes);
    if (superseded()) return false;
    const tooLarge = c.ok === false && /too large/.test(c.message);
    showError(`${name}: ${tooLarge ? c.message : 'the browser cannot read this file as an image (use PNG, JPEG or WebP)'}. The previous image is kept.`);
    return false;
  }
  let note = '';
  const long = Math.max(size.width, size.height);
  const turned = jpegOrientation(bytes) > 1;
  if (long > MAX_SIDE || !isPngOrJpeg(bytes) || turned) {
    const s = Math.min(1, MAX_SIDE / long);
    const w = Math.max(1, Math.round(size.width * s));
    const h = Math.max(1, Math.round(size.height * s));
    try {
      // resizeWidth/Height lets the decoder produce the small image directly
      const bmp = await createImageBitmap(blob, s < 1 ? { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' } : {});
      const c = document.createElement('canvas');
      c.width = bmp.width;
      c.height = bmp.height;
      c.getContext('2d').drawImage(bmp, 0, 0);
      bmp.close();
      const out = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
      if (!out) throw new Error('the browser could not re-encode it');
      bytes = await out.arrayBuffer();
      note = s < 1 ? `, downscaled from ${size.width}×${size.height} to ${w}×${h} before decoding it fully` : ', converted to PNG';
      if (turned) note += ', turned upright as its EXIF orientation says';
    } catch (e) {
      if (superseded()) return false;
      showError(`${name}: the image could not be decoded (${e.message}). The previous image is kept.`);
      return false;
    }
    if (superseded()) return false;
  }
  const c = await checkImage(bytes);
  if (superseded()) return false;
  if (c.ok === false) {
    showError(`${name}: the browser shows this file, but the model's decoder cannot read it (${c.message}). The previous image is kept.`);
    return false;
  }
  setImage(bytes, name, note);
  return true;
}

// The image read is now the current one: shown, and encoded and ranked in the Worker.
function setImage(bytes, name, note = '') {
  stopPlay();
  state.truth = null; // a scene's true answer belongs to that scene only (loadSample sets it again)
  state.image = bytes;
  state.imageName = name;
  state.imageVersion += 1;
  state.imageSize = null;
  state.tiling = null;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(new Blob([bytes]));
  el.imageName.textContent = `${name} (${bytes.byteLength} bytes${note})`;
  el.preview.src = state.previewUrl;
  showTiling();
  render();
  prepare();
}

async function loadSample(s) {
  try {
    const res = await fetch(s.url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    if (await takeImage(await res.blob(), `sample: ${s.name}`)) state.truth = s.answer ? s : null;
  } catch (e) {
    showError(`The sample image ${s.name} could not be fetched: ${e.message}`);
  }
}

// A sample's question replaces the question box unless the person wrote one of their own.
function isSampleQuestion(q) {
  return !q.trim() || SAMPLES.some((x) => x.question === q) || scenes.some((x) => sameQuestion(x.question, q));
}

// One button of a sample row: a thumbnail and a caption; a click brings the image and its question.
function sampleButton(s, { cls, key, title }) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.dataset[key] = s.name;
  b.title = title;
  const img = document.createElement('img');
  img.src = s.url;
  img.alt = '';
  const cap = document.createElement('span');
  cap.textContent = s.label;
  b.append(img, cap);
  b.addEventListener('click', () => {
    el.file.value = '';
    if (isSampleQuestion(el.question.value)) {
      el.question.value = s.question;
      onQuestionChange();
    }
    loadSample(s);
  });
  return b;
}

export function buildSamples() {
  for (const s of SAMPLES) {
    el.samples.append(sampleButton(s, { cls: 'sample', key: 'sample', title: `${s.label}: ${s.question}` }));
  }
}

// Held-out scenes for the built-in model: one per question kind, each with its question and the
// generator's answer (shown in the comparison table's "true answer" column). Written by
// `evaluate --samples`: PNGs + scenes.json with each scene's question and answer.
const SCENES_DIR = '../assets/scenes/';
let scenes = [];
async function buildScenes() {
  try {
    const res = await fetch(`${SCENES_DIR}scenes.json`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    scenes = (await res.json()).map((x) => ({
      url: `${SCENES_DIR}${x.file}`, name: x.file, label: x.kind.replace(/_/g, ' '), question: x.question, answer: x.answer,
    }));
  } catch (e) {
    el.scenesTitle.textContent = `Scenes for the built-in model could not be loaded (${e.message}).`;
    return;
  }
  for (const s of scenes) {
    el.scenes.append(sampleButton(s, { cls: 'sample scene', key: 'scene', title: `${s.question} (answer: ${s.answer})` }));
  }
}

// The first image: the built-in model starts on a held-out scene with its question, another model
// on the photo.
export async function firstImage(builtin) {
  await buildScenes();
  const scene = builtin && scenes[0];
  if (scene && isSampleQuestion(el.question.value)) {
    el.question.value = scene.question;
    onQuestionChange();
  }
  loadSample(scene || SAMPLES[0]);
}

export function initIntake() {
  el.preview.addEventListener('error', () => {
    el.preview.classList.add('broken');
    render();
    if (state.image) el.imageName.textContent = `${state.imageName}: the browser cannot show this file as an image`;
  });
  el.preview.addEventListener('load', () => {
    el.preview.classList.remove('broken');
    state.imageSize = { width: el.preview.naturalWidth, height: el.preview.naturalHeight };
    requestTiling();
    render();
  });
  el.file.addEventListener('change', async () => {
    const f = el.file.files && el.file.files[0];
    if (!f) return;
    await takeImage(f, f.name);
  });

  // the picture is focusable: Enter or Space there opens the file picker
  el.dropZone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      el.file.click();
    }
  });
  el.dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    el.dropZone.classList.add('dragging');
  });
  el.dropZone.addEventListener('dragleave', () => el.dropZone.classList.remove('dragging'));
  el.dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    el.dropZone.classList.remove('dragging');
    const f = e.dataTransfer && [...e.dataTransfer.files][0];
    if (!f) {
      showError('Nothing to read in what was dropped: drop an image file. The previous image is kept.');
      return;
    }
    takeImage(f, f.name);
  });
  document.addEventListener('paste', (e) => {
    const items = e.clipboardData ? [...e.clipboardData.items] : [];
    // an image first; any other file is tried too (and refused with a message when it is no image)
    const item = items.find((i) => i.kind === 'file' && i.type.startsWith('image/')) || items.find((i) => i.kind === 'file');
    if (!item) return; // text pasted into the question stays text
    e.preventDefault();
    const f = item.getAsFile();
    takeImage(f, f.name && f.name !== 'image.png' ? f.name : 'pasted image');
  });
}
