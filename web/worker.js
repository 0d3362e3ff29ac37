// worker.js: the engine host in the browser, a dedicated module Worker started by web/index.js.
// It owns the wasm module (whose pthreads are nested workers; on a page that is not cross-origin
// isolated, the single-thread build, without any), the model's reader (OPFS sync
// handle or FileReaderSync) and the Session; the page talks to it by postMessage:
//   page -> worker  {op: 'load', id, source, opts} | {op: 'create', id, chat, req} | {op: 'abort', id}
//                   {op: 'call', id, method, args} | {op: 'unload', id}
//   worker -> page  {id, progress} | {id, ok: value} | {id, started: true} | {id, chunk} | {id, end: true}
//                   {id, error: {code, message, name}}
import { Engine } from './engine.js';
import { LFM2Error } from './errors.js';
import { Session } from './session.js';
import { download, openStored, storedModel } from './store.js';
import { blobReader } from './opfs-reader.js';
import { DEFAULT_MEMORY_BUDGET, parseBytes } from './units.js';

let session = null;
let reader = null;
let engine = null;
const controllers = new Map(); // request id -> AbortController

const post = (m, transfer) => self.postMessage(m, transfer ?? []);
const errorOf = (e) => ({
  code: e instanceof LFM2Error ? e.code : e?.name === 'QuotaExceededError' ? 'ERR_QUOTA' : 'ERR_INTERNAL',
  message: e?.message ?? String(e),
  name: e?.name === 'AbortError' ? 'AbortError' : 'LFM2Error',
});

self.onmessage = async ({ data: msg }) => {
  const { id, op } = msg;
  try {
    if (op === 'abort') {
      controllers.get(id)?.abort();
      return;
    }
    if (op === 'load') return post({ id, ok: await load(id, msg.source, msg.opts) });
    if (op === 'create') return await create(id, msg.chat, msg.req);
    if (op === 'unload') {
      unload();
      return post({ id, ok: true });
    }
    if (op === 'call') {
      if (!session) throw new LFM2Error('ERR_UNLOADED', 'the model has been unloaded');
      const fn = { tokenize: 1, detokenize: 1, info: 1, stats: 1, applyChatTemplate: 1 }[msg.method] && session[msg.method];
      if (!fn) throw new LFM2Error('ERR_BAD_REQUEST', `no method ${msg.method}`);
      return post({ id, ok: fn.apply(session, msg.args ?? []) });
    }
    throw new LFM2Error('ERR_BAD_REQUEST', `unknown operation ${op}`);
  } catch (e) {
    post({ id, error: errorOf(e) });
  } finally {
    if (op !== 'abort') controllers.delete(id);
  }
};

function unload() {
  session?.unload(); // frees the model, then onUnload closes the reader and ends the threads
  session = null;
}

async function load(id, source, opts) {
  if (session) throw new LFM2Error('ERR_BUSY', 'this worker already holds a model');
  const ac = new AbortController();
  controllers.set(id, ac);
  const progress = (p) => post({ id, progress: p });
  const check = () => { if (ac.signal.aborted) { const e = new LFM2Error('ERR_ABORTED', 'the load was aborted'); e.name = 'AbortError'; throw e; } };
  let name = null;
  try {
    if (source.kind === 'blob') {
      reader = blobReader(source.blob);
      name = source.blob.name ?? 'model.gguf';
    } else if (source.kind === 'url') {
      const m = await download(source.url, { name: source.name, signal: ac.signal, onProgress: progress });
      name = m.name;
      reader = await openStored(name);
    } else if (source.kind === 'stored') {
      if (!(await storedModel(source.name))) {
        throw new LFM2Error('ERR_NOT_FOUND', `no stored model named '${source.name}' (give a URL, hf:owner/repo/file.gguf, or a File)`);
      }
      name = source.name;
      reader = await openStored(name);
    } else {
      throw new LFM2Error('ERR_BAD_REQUEST', 'unknown model source');
    }
    check();
    engine = await Engine.create({ threads: opts.threads, moduleUrl: opts.moduleUrl });
    check();
    const r = reader, total = r.size;
    let last = 0;
    const read = (view, off) => {
      const n = r.read(view, off);
      const t = performance.now();
      if (t - last > 100) { last = t; progress({ phase: 'load', bytes: Math.min(r.bytesRead, total), total }); }
      return n;
    };
    const memoryBudget = opts.memoryBudget === undefined ? DEFAULT_MEMORY_BUDGET : parseBytes(opts.memoryBudget, 'memoryBudget');
    const model = engine.openModel(read, total, { reference: !!opts.reference, memoryBudget, cachePolicy: opts.cachePolicy });
    progress({ phase: 'load', bytes: Math.min(r.bytesRead, total), total });
    const e = engine;
    session = new Session(engine, model, {
      contextLength: opts.contextLength,
      onUnload: () => { r.close(); e.terminate(); },
    });
    if (reader === r) reader = null;
    engine = null;
    // isolated: false when the page is not cross-origin isolated: the single-thread build runs (threads 1)
    return { name, size: total, info: session.info(), threads: session.engine.threads, isolated: Engine.threadsAvailable() };
  } catch (e) {
    reader?.close();
    reader = null;
    engine?.terminate();
    engine = null;
    throw e;
  }
}

async function create(id, chat, req) {
  if (!session) throw new LFM2Error('ERR_UNLOADED', 'the model has been unloaded');
  const ac = new AbortController();
  controllers.set(id, ac);
  const api = chat ? session.chat.completions : session.completions;
  const res = await api.create({ ...req, signal: ac.signal });
  if (!req.stream) return post({ id, ok: res });
  post({ id, started: true });
  for await (const chunk of res) post({ id, chunk });
  post({ id, end: true });
}

export {}; // a module worker
