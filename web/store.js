// store.js: the model store in the browser's Origin Private File System (OPFS).
// Layout: lfm2-models/<name> holds the GGUF bytes, lfm2-models/<name>.json its manifest
// {name, url, size, etag, complete, updated}. A model is usable only once its manifest says
// complete, which is written after the size (and the ETag, when the server gives one) checked out.
// Downloads go through a FileSystemSyncAccessHandle (workers only) and resume with HTTP Range from
// the bytes already on disk: after a dropped connection (retried here) or a reload (next load).
// list / remove / usage use the async OPFS API and work on the page too.
import { LFM2Error } from './errors.js';

export const STORE_DIR = 'lfm2-models';
const MANIFEST = '.json';
const RETRIES = 5;
const FLUSH_BYTES = 64 << 20;
const PROGRESS_MS = 100;

/** hf:owner/repo/path/file.gguf -> https://huggingface.co/owner/repo/resolve/main/path/file.gguf */
export function resolveSource(src) {
  if (src.startsWith('hf:')) {
    const parts = src.slice(3).replace(/^\/+/, '').split('/');
    if (parts.length < 3 || parts.some((p) => !p)) throw new LFM2Error('ERR_BAD_REQUEST', `'${src}' is not hf:owner/repo/file.gguf`);
    const [owner, repo, ...file] = parts;
    return `https://huggingface.co/${owner}/${repo}/resolve/main/${file.map(encodeURIComponent).join('/')}`;
  }
  return src;
}

/** The store name of a URL: its last path segment (a GGUF file name). */
export function modelName(url) {
  const last = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).pop() ?? '');
  const name = last.replace(/[\\/:*?"<>|\x00-\x1f]/g, '_');
  if (!name || name.endsWith(MANIFEST)) throw new LFM2Error('ERR_BAD_REQUEST', `cannot name a model after ${url}`);
  return name;
}

async function storeDir() {
  if (!globalThis.navigator?.storage?.getDirectory) throw new LFM2Error('ERR_NO_STORE', 'this browser has no Origin Private File System');
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(STORE_DIR, { create: true });
}

async function getFile(dir, name) {
  try {
    return await dir.getFileHandle(name);
  } catch (e) {
    if (e.name === 'NotFoundError' || e.name === 'TypeError') return null;
    throw e;
  }
}

export async function readManifest(name, dir) {
  dir ??= await storeDir();
  const fh = await getFile(dir, name + MANIFEST);
  if (!fh) return null;
  try {
    return JSON.parse(await (await fh.getFile()).text());
  } catch {
    return null; // a torn manifest: the model is treated as partial
  }
}

async function writeManifest(dir, m) {
  const fh = await dir.getFileHandle(m.name + MANIFEST, { create: true });
  const bytes = new TextEncoder().encode(JSON.stringify({ ...m, updated: Date.now() }));
  if (fh.createSyncAccessHandle && typeof WorkerGlobalScope !== 'undefined') {
    const h = await fh.createSyncAccessHandle();
    try {
      h.truncate(0);
      h.write(bytes, { at: 0 });
      h.flush();
    } finally {
      h.close();
    }
  } else {
    const w = await fh.createWritable();
    await w.write(bytes);
    await w.close();
  }
}

/** Stored models: [{name, url, size, bytes, complete, etag, updated}] (partial downloads included). */
export async function listModels() {
  const dir = await storeDir();
  const out = [];
  for await (const [entry, handle] of dir.entries()) {
    if (handle.kind !== 'file' || entry.endsWith(MANIFEST)) continue;
    const m = await readManifest(entry, dir);
    const bytes = (await handle.getFile()).size;
    out.push({ name: entry, url: m?.url ?? null, size: m?.size ?? null, bytes, complete: !!m?.complete && bytes === m.size, etag: m?.etag ?? null, updated: m?.updated ?? null });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The manifest of a complete model, or null. */
export async function storedModel(name) {
  const dir = await storeDir();
  const m = await readManifest(name, dir);
  const fh = m?.complete && (await getFile(dir, name));
  if (!fh) return null;
  const bytes = (await fh.getFile()).size;
  return bytes === m.size ? m : null;
}

export async function removeModel(name) {
  const dir = await storeDir();
  for (const n of [name, name + MANIFEST]) {
    try {
      await dir.removeEntry(n);
    } catch (e) {
      if (e.name === 'NotFoundError') continue;
      if (e.name === 'NoModificationAllowedError' || e.name === 'InvalidModificationError')
        throw new LFM2Error('ERR_BUSY', `${name} is in use (unload the model first)`);
      throw e;
    }
  }
}

/** Bytes held by stored models, and the origin's usage and quota (navigator.storage.estimate()). */
export async function storeUsage() {
  const models = await listModels();
  const est = (await navigator.storage.estimate?.()) ?? {};
  return { models: models.reduce((s, m) => s + m.bytes, 0), usage: est.usage ?? null, quota: est.quota ?? null };
}

function httpError(res, url) {
  return new LFM2Error('ERR_DOWNLOAD', `downloading ${url} failed: HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`);
}

function abortError() {
  const e = new LFM2Error('ERR_ABORTED', 'the download was aborted (what was downloaded is kept; loading again resumes)');
  e.name = 'AbortError';
  return e;
}

/**
 * Download url into the store (worker only), resuming a partial download. Returns the manifest.
 * @param {string} url
 * @param {{name?: string, onProgress?: (p: object) => void, signal?: AbortSignal, fetch?: typeof fetch}} opts
 */
export async function download(url, opts = {}) {
  const name = opts.name ?? modelName(url);
  const dir = await storeDir();
  let m = await readManifest(name, dir);
  if (m && m.url !== url) m = null; // another file under the same name: start over
  if (m?.complete) {
    // already here: no write handle needed (other tabs may be reading it)
    const f = await getFile(dir, name);
    if (f && (await f.getFile()).size === m.size) return m;
  }
  const fh = await dir.getFileHandle(name, { create: true });
  let h;
  try {
    h = await fh.createSyncAccessHandle();
  } catch (e) {
    if (e.name === 'NoModificationAllowedError') throw new LFM2Error('ERR_BUSY', `${name} is open elsewhere (another tab or worker)`);
    throw e;
  }
  const fetchImpl = opts.fetch ?? fetch;
  const progress = opts.onProgress ?? (() => {});
  const hadManifest = !!m;
  let failed = true;
  try {
    if (m?.complete && h.getSize() === m.size) return m;
    let have = m ? h.getSize() : 0;
    if (!m) h.truncate(0);
    let etag = m?.etag ?? null, total = m?.size ?? null;
    const t0 = performance.now(), start = have;
    let lastReport = 0, sinceFlush = 0, quotaChecked = false;
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw abortError();
      if (total !== null && have === total) break;
      const headers = {};
      if (have > 0) {
        headers.Range = `bytes=${have}-`;
        // If-Range is not a CORS-safelisted header: only same-origin (no preflight); elsewhere the
        // ETag of the 206 is compared below
        if (etag && new URL(url).origin === self.location?.origin) headers['If-Range'] = etag;
      }
      let res;
      try {
        res = await fetchImpl(url, { headers, signal: opts.signal, cache: 'no-store' });
      } catch (e) {
        if (opts.signal?.aborted) throw abortError();
        if (attempt < RETRIES) { await sleep(250 * 2 ** attempt, opts.signal); continue; }
        throw new LFM2Error('ERR_DOWNLOAD', `downloading ${url} failed: ${e.message}`);
      }
      const newEtag = res.headers.get('ETag');
      if (res.status === 206) {
        const cr = /bytes\s+(\d+)-(\d+)\/(\d+|\*)/.exec(res.headers.get('Content-Range') ?? '');
        const from = cr ? Number(cr[1]) : have;
        if (from !== have || (etag && newEtag && newEtag !== etag)) {
          await res.body?.cancel();
          have = 0; h.truncate(0); etag = null; total = null; m = null; // the file changed: start over
          continue;
        }
        if (cr && cr[3] !== '*') total = Number(cr[3]);
        else if (res.headers.get('Content-Length')) total = have + Number(res.headers.get('Content-Length'));
      } else if (res.status === 200) {
        have = 0; h.truncate(0);
        total = res.headers.get('Content-Length') ? Number(res.headers.get('Content-Length')) : null;
        if (res.headers.get('Content-Encoding')) total = null; // compressed transfer: the length is not the file's
      } else if (res.status === 416 && have > 0) {
        await res.body?.cancel();
        have = 0; h.truncate(0); etag = null; total = null; m = null;
        continue;
      } else {
        await res.body?.cancel();
        throw httpError(res, url);
      }
      etag = newEtag ?? etag;
      if (!quotaChecked && total !== null) {
        await checkQuota(total - have, name, res);
        quotaChecked = true;
      }
      m = { name, url, size: total, etag, complete: false };
      await writeManifest(dir, m);
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          let off = 0;
          try {
            while (off < value.length) off += h.write(off ? value.subarray(off) : value, { at: have + off });
          } catch (e) {
            if (e.name === 'QuotaExceededError') throw new LFM2Error('ERR_QUOTA', `the browser's storage for this site is full after ${have} bytes of ${name} (delete stored models)`);
            throw new LFM2Error('ERR_STORE', `writing ${name} failed: ${e.message}`);
          }
          have += value.length;
          sinceFlush += value.length;
          if (sinceFlush >= FLUSH_BYTES) { h.flush(); sinceFlush = 0; }
          if (total !== null && have > total) throw new LFM2Error('ERR_DOWNLOAD', `${url}: the server sent more than ${total} bytes`);
          const t = performance.now();
          if (t - lastReport >= PROGRESS_MS) {
            lastReport = t;
            progress({ phase: 'download', bytes: have, total, bytesPerSecond: (have - start) / Math.max(1e-3, (t - t0) / 1000) });
          }
        }
      } catch (e) {
        if (opts.signal?.aborted) throw abortError();
        if (e instanceof LFM2Error) throw e;
        h.flush();
        if (attempt < RETRIES) { await sleep(250 * 2 ** attempt, opts.signal); continue; } // dropped: resume from `have`
        throw new LFM2Error('ERR_DOWNLOAD', `downloading ${url} failed after ${RETRIES} retries: ${e.message}`);
      }
      if (total === null) total = have; // no length given: what arrived is the file
      if (have < total) { if (attempt < RETRIES) continue; break; } // the body ended early: resume
      break;
    }
    h.flush();
    const size = h.getSize();
    if (total === null || size !== total)
      throw new LFM2Error('ERR_DOWNLOAD', `downloading ${url}: got ${size} bytes, expected ${total}; loading again resumes`);
    m = { name, url, size, etag, complete: true };
    await writeManifest(dir, m);
    failed = false;
    const t = performance.now();
    progress({ phase: 'download', bytes: size, total: size, bytesPerSecond: (size - start) / Math.max(1e-3, (t - t0) / 1000) });
    return m;
  } finally {
    const empty = h.getSize() === 0;
    h.close();
    // nothing arrived for a new file (refused, quota, HTTP error): leave no trace in the store
    if (failed && empty && !hadManifest && !(await readManifest(name, dir))) await dir.removeEntry(name).catch(() => {});
  }
}

async function checkQuota(need, name, res) {
  const est = await navigator.storage.estimate?.();
  if (!est || !est.quota) return;
  const free = est.quota - (est.usage ?? 0);
  if (need > free) {
    await res.body?.cancel();
    const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;
    throw new LFM2Error('ERR_QUOTA', `not enough storage for ${name}: it needs ${mb(need)} more, the browser allows ${mb(free)} more for this site (free space or delete stored models)`);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(abortError()); }, { once: true });
  });
}

/** Open a complete stored model for reading (worker only). */
export async function openStored(name) {
  const dir = await storeDir();
  const m = await readManifest(name, dir);
  const fh = await getFile(dir, name);
  if (!fh || !m) throw new LFM2Error('ERR_NOT_FOUND', `no stored model named '${name}'`);
  if (!m.complete) throw new LFM2Error('ERR_INCOMPLETE', `${name} is only partly downloaded (${m.url ? 'load its URL again to resume' : 'delete it'})`);
  const { openSyncReader } = await import('./opfs-reader.js');
  const r = await openSyncReader(fh);
  if (r.size !== m.size) {
    r.close();
    throw new LFM2Error('ERR_INCOMPLETE', `${name} has ${r.size} bytes, its manifest says ${m.size}`);
  }
  r.manifest = m;
  return r;
}
