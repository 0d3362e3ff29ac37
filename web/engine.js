// engine.js: the JS face of the wasm engine, over the public C API (src/lfm2.h) and nothing else.
// Runs wherever the module runs: in Node's main thread or in a browser Worker.
import { LFM2Error } from './errors.js';

const F32 = 4;

// Views over the wasm memory, made afresh: the heap may have grown since the last call.
const i32 = (m) => new Int32Array(m.lfm2Memory());
const u32 = (m) => new Uint32Array(m.lfm2Memory());
const f32 = (m) => new Float32Array(m.lfm2Memory());

export class Engine {
  /** @param {{threads?: number, moduleUrl?: string}} opts */
  static async create(opts = {}) {
    const url = opts.moduleUrl ?? new URL('../wasm/dist/lfm2.mjs', import.meta.url).href;
    const { default: createLFM2 } = await import(url);
    const threads = Math.max(1, opts.threads ?? 2);
    const mod = await createLFM2({ nThreads: threads });
    // Idle pool workers must not keep a Node process alive (a no-op in browsers).
    for (const w of [...mod.PThread.unusedWorkers, ...mod.PThread.runningWorkers]) w.unref?.();
    return new Engine(mod, threads);
  }

  constructor(mod, threads) {
    this.m = mod;
    this.threads = threads;
    this.nextReader = 1;
  }

  /** Throw the engine's last error for a non-zero status. */
  check(status) {
    if (status === 0) return;
    const m = this.m;
    const code = m.UTF8ToString(m._lfm2_status_name(status));
    const msg = m.UTF8ToString(m._lfm2_last_error());
    throw new LFM2Error(code, msg || code);
  }

  /** Register a synchronous reader (view: Uint8Array over wasm memory, offset: number) -> bytes read. */
  addReader(read) {
    const h = this.nextReader++;
    this.m.lfm2Readers.set(h, read);
    return h;
  }

  removeReader(h) {
    this.m.lfm2Readers.delete(h);
  }

  /**
   * Open a model through a reader.
   * @param {(view: Uint8Array, offset: number) => number} read
   * @param {number} size total bytes of the GGUF file
   * @param {{reference?: boolean, headerOnly?: boolean}} opts
   */
  openModel(read, size, opts = {}) {
    const m = this.m;
    const h = this.addReader(read);
    const params = m._malloc(8);
    const out = m._malloc(4);
    try {
      i32(m).set([opts.reference ? 1 : 0, opts.headerOnly ? 1 : 0], params >> 2);
      const st = m._lfm2_model_open(m._lfm2_js_reader(), h, BigInt(size), params, out);
      this.check(st);
      return new Model(this, u32(m)[out >> 2], h);
    } catch (e) {
      this.removeReader(h);
      throw e;
    } finally {
      m._free(params);
      m._free(out);
    }
  }

  /** End the pthread workers (idle workers keep Node alive). */
  terminate() {
    this.m.PThread?.terminateAllThreads();
  }
}

export class Model {
  constructor(engine, ptr, reader) {
    this.e = engine;
    this.ptr = ptr;
    this.reader = reader;
  }

  get nVocab() {
    return this.e.m._lfm2_model_n_vocab(this.alive());
  }

  get nCtxTrain() {
    return this.e.m._lfm2_model_n_ctx_train(this.alive());
  }

  alive() {
    if (!this.ptr) throw new LFM2Error('ERR_UNLOADED', 'the model has been unloaded');
    return this.ptr;
  }

  info() {
    return JSON.parse(this.e.m.UTF8ToString(this.e.m._lfm2_model_info_json(this.alive())));
  }

  /** @param {number} nCtx 0: the default (min of the model's context and 4096) */
  newContext(nCtx = 0) {
    const m = this.e.m;
    const out = m._malloc(4);
    try {
      this.e.check(m._lfm2_context_new(this.alive(), nCtx >>> 0, out));
      return new Context(this, u32(m)[out >> 2]);
    } finally {
      m._free(out);
    }
  }

  free() {
    if (!this.ptr) return;
    this.e.m._lfm2_model_free(this.ptr);
    this.e.removeReader(this.reader);
    this.ptr = 0;
  }
}

export class Context {
  constructor(model, ptr) {
    this.model = model;
    this.ptr = ptr;
  }

  alive() {
    if (!this.ptr) throw new LFM2Error('ERR_UNLOADED', 'the context has been freed');
    return this.ptr;
  }

  get nPast() {
    return this.model.e.m._lfm2_context_n_past(this.alive());
  }

  get nCtx() {
    return this.model.e.m._lfm2_context_n_ctx(this.alive());
  }

  /**
   * Evaluate tokens after those the state holds.
   * @param {ArrayLike<number>} tokens
   * @param {{logits?: 'none'|'last'|'all'}} opts
   * @returns {Float32Array|null} logits: [n x n_vocab] for 'all', [n_vocab] for 'last'
   */
  eval(tokens, opts = {}) {
    const e = this.model.e, m = e.m;
    const want = opts.logits ?? 'last';
    const n = tokens.length, V = this.model.nVocab;
    const rows = want === 'all' ? n : want === 'last' ? 1 : 0;
    const tok = m._malloc(Math.max(1, n) * 4);
    const out = rows ? m._malloc(rows * V * F32) : 0;
    if (!tok || (rows && !out)) {
      m._free(tok);
      throw new LFM2Error('LFM2_E_NOMEM', 'out of memory for the logits');
    }
    try {
      const heap = i32(m);
      for (let i = 0; i < n; i++) {
        const t = tokens[i];
        if (!Number.isInteger(t) || t < 0 || t > 0x7fffffff)
          throw new LFM2Error('LFM2_E_TOKEN', `token at index ${i} is not a token id: ${t}`);
        heap[(tok >> 2) + i] = t;
      }
      e.check(m._lfm2_eval(this.alive(), tok, n, out, want === 'all' ? 1 : 0));
      return rows ? f32(m).slice(out >> 2, (out >> 2) + rows * V) : null;
    } finally {
      m._free(tok);
      if (out) m._free(out);
    }
  }

  truncate(n) {
    this.model.e.check(this.model.e.m._lfm2_truncate(this.alive(), n >>> 0));
  }

  free() {
    if (!this.ptr) return;
    this.model.e.m._lfm2_context_free(this.ptr);
    this.ptr = 0;
  }
}
