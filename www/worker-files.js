// The model Worker's model files: from this server, the person's own files, or the hub (at one
// commit, through the browser's Cache API), each with its bytes reported as they arrive.

import { SourceKind, MODEL_CACHE, MODEL_FILES, REQUIRED_FILES, HUB_MANIFEST } from './protocol.js';
import { status, progress } from './worker-post.js';

// Fetches one file, reporting its bytes as they arrive (content-length gives the total). A
// missing optional file (404) is undefined.
async function download(url, file, required) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot download ${file} from ${url}: ${e.message} (offline, or the server refused)`);
  }
  if (!res.ok) {
    if (!required && res.status === 404) {
      progress(file, 0, 0, { absent: true, done: true });
      return undefined;
    }
    throw new Error(`cannot download ${file}: HTTP ${res.status} from ${url}`);
  }
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    progress(file, b.length, b.length, { done: true });
    return b;
  }
  const reader = res.body.getReader();
  // With a known size the bytes go straight into one buffer (a 1 GB file is not held twice);
  // chunks are kept only when the size is unknown or turns out wrong (a compressed transfer).
  let buf = total ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  let last = 0;
  progress(file, 0, total);
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      throw new Error(`the download of ${file} broke off after ${loaded} bytes: ${e.message}`);
    }
    if (r.done) break;
    if (buf && loaded + r.value.length <= buf.length) {
      buf.set(r.value, loaded);
    } else {
      if (buf) {
        chunks.push(buf.subarray(0, loaded));
        buf = null;
      }
      chunks.push(r.value);
    }
    loaded += r.value.length;
    const now = performance.now();
    if (now - last > 100) {
      last = now;
      progress(file, loaded, total > loaded ? total : 0);
    }
  }
  // a compressed transfer counts more bytes than content-length: only a shortfall is an error
  if (total && loaded < total) throw new Error(`the download of ${file} is incomplete: ${loaded} of ${total} bytes`);
  if (buf) {
    progress(file, loaded, loaded, { done: true });
    return buf;
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  progress(file, loaded, loaded, { done: true });
  return out;
}

// The commit a hub model is downloaded at and each file's size, as the hub announced them
// (GET api/models/<owner/model>/revision/main?blobs=true: `sha`, and `siblings` with sizes). Kept in
// the model cache beside the files: a Retry, a later visit (even offline) and every file of a
// model come from that one commit until the cache is cleared. Returns {sha, sizes, key, cache}.
async function hubManifest(source) {
  let cache = null;
  try {
    cache = await caches.open(MODEL_CACHE);
  } catch (e) {
    cache = null; // no Cache API here (or it failed): download every time
  }
  const key = new URL(`${source.name}/${HUB_MANIFEST}`, source.hub).href;
  if (cache) {
    try {
      const hit = await cache.match(key);
      const m = hit ? await hit.json() : null;
      if (m && typeof m.sha === 'string' && m.sizes) return { ...m, key, cache };
    } catch (e) {
      // an unreadable manifest: ask the hub again
    }
  }
  const api = new URL(`api/models/${source.name}/revision/main?blobs=true`, source.hub).href;
  status(`asking the hub for the current commit of ${source.name}…`);
  let res;
  try {
    res = await fetch(api);
  } catch (e) {
    throw new Error(`cannot ask the hub which commit of ${source.name} to download (${api}): ${e.message} (offline, or the server refused)`);
  }
  if (!res.ok) throw new Error(`cannot ask the hub which commit of ${source.name} to download: HTTP ${res.status} from ${api}`);
  let info;
  try {
    info = await res.json();
  } catch (e) {
    throw new Error(`the hub's answer about ${source.name} is not JSON (${api})`);
  }
  if (!info || !/^[0-9a-f]{40}$/.test(info.sha || '')) throw new Error(`the hub's answer about ${source.name} names no commit (${api})`);
  const sizes = {};
  for (const f of info.siblings || []) {
    if (f && typeof f.rfilename === 'string') sizes[f.rfilename] = (f.lfs && f.lfs.size) || f.size || null;
  }
  const m = { repo: source.name, sha: info.sha, sizes };
  if (cache) {
    try {
      await cache.put(key, new Response(JSON.stringify(m), { headers: { 'content-type': 'application/json' } }));
    } catch (e) {
      // not kept: the next visit asks again
    }
  }
  return { ...m, key, cache };
}

// A hub file from the browser's cache, else downloaded and then cached (only once complete), its
// length checked against what the hub announced (`size`, when it did).
async function hubFile(url, file, required, size, cache) {
  const wrong = (n) => size && n !== size;
  if (cache) {
    try {
      const hit = await cache.match(url);
      if (hit) {
        const b = new Uint8Array(await hit.arrayBuffer());
        if (!wrong(b.length)) {
          progress(file, b.length, b.length, { fromCache: true, done: true });
          return b;
        }
        await cache.delete(url); // a damaged copy: download it again
      }
    } catch (e) {
      // the cache failed: download
    }
  }
  const bytes = await download(url, file, required);
  if (bytes && wrong(bytes.length)) {
    const err = new Error(`${file} is ${bytes.length} bytes but the hub announced ${size} for this commit: a damaged transfer, ` +
      'or the file changed on the hub; it was not kept, and Retry asks the hub again');
    err.manifestStale = true;
    throw err;
  }
  if (bytes && cache) {
    try {
      await cache.put(url, new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
    } catch (e) {
      status(`${file} could not be kept in the browser cache (${e.message}); the next visit downloads it again`);
    }
  }
  return bytes;
}

async function fetchBytes(url, required) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${e.message}`);
  }
  if (!res.ok) {
    if (!required && res.status === 404) return undefined;
    throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

// The model's files as bytes, and for a hub model the commit they come from ({repo, sha}).
// `onConfig(bytes)` runs once config.json is in, before the weights are fetched (it may throw:
// nothing more is downloaded).
export async function modelFiles(source, onConfig) {
  const got = {};
  let revision = null;
  const configDone = () => {
    if (!got['config.json']) throw new Error('config.json is missing');
    onConfig(got['config.json']);
  };
  if (source.kind === SourceKind.HUB) {
    // file by file (the small ones first), each with its own progress bar, all at one commit
    const m = await hubManifest(source);
    revision = { repo: source.name, sha: m.sha };
    try {
      for (const file of MODEL_FILES) {
        const required = REQUIRED_FILES.includes(file);
        if (!(file in m.sizes) && Object.keys(m.sizes).length) {
          if (required) throw new Error(`${source.name} at commit ${m.sha.slice(0, 7)} has no ${file}`);
          progress(file, 0, 0, { absent: true, done: true });
          continue;
        }
        status(`downloading ${file} of ${source.name} at commit ${m.sha.slice(0, 7)}…`);
        got[file] = await hubFile(new URL(`${source.name}/resolve/${m.sha}/${file}`, source.hub).href, file, required, m.sizes[file], m.cache);
        if (file === 'config.json') configDone();
      }
    } catch (e) {
      if (e.manifestStale && m.cache) await m.cache.delete(m.key).catch(() => {});
      throw e;
    }
  } else if (source.kind === SourceKind.FILES) {
    for (const file of MODEL_FILES) {
      const f = source.files[file];
      if (!f) continue;
      status(`reading ${file}…`);
      try {
        got[file] = new Uint8Array(await f.arrayBuffer());
      } catch (e) {
        throw new Error(`cannot read the local file ${file}: ${e.message}`);
      }
      progress(file, got[file].length, got[file].length, { done: true });
      if (file === 'config.json') configDone();
    }
  } else {
    status(`fetching the model files from ${source.base}…`);
    const url = (name) => new URL(name, source.base).href;
    got['config.json'] = await fetchBytes(url('config.json'), true);
    configDone();
    const rest = MODEL_FILES.filter((f) => f !== 'config.json');
    const all = await Promise.all(rest.map((file) => fetchBytes(url(file), REQUIRED_FILES.includes(file))));
    rest.forEach((file, i) => { got[file] = all[i]; });
  }
  for (const file of REQUIRED_FILES) {
    if (!got[file]) throw new Error(`${file} is missing`);
  }
  return { files: got, revision };
}

