// engine.js: the JS face of the wasm engine, over the public C API (src/lfm2.h) and nothing else.
// Runs wherever the module runs: in Node's main thread or in a browser Worker.
import { LFM2Error } from './errors.js';

const F32 = 4;

// Views over the wasm memory, made afresh: the heap may have grown since the last call.
const i32 = (m) => new Int32Array(m.lfm2Memory());
const u32 = (m) => new Uint32Array(m.lfm2Memory());
const f32 = (m) => new Float32Array(m.lfm2Memory());
const u8 = (m) => new Uint8Array(m.lfm2Memory());
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export class Engine {
  /**
   * Pages that are not cross-origin isolated have no SharedArrayBuffer, so no wasm threads: there the
   * engine is the single-thread build (wasm/dist/lfm2-st.mjs) and runs on one thread.
   */
  static threadsAvailable() {
    return typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated !== false;
  }

  /**
   * @param {{threads?: number, moduleUrl?: string, singleThread?: boolean}} opts
   *   singleThread: the build without threads (default: when threads are not available here);
   *   moduleUrl: a module to load instead of ours (its kind is seen from it: no pthread pool, one thread)
   */
  static async create(opts = {}) {
    const single = opts.singleThread ?? !Engine.threadsAvailable();
    // literal new URL(..., import.meta.url) each, so that bundlers find and copy both builds
    const url = opts.moduleUrl ?? (single
      ? new URL('../wasm/dist/lfm2-st.mjs', import.meta.url).href
      : new URL('../wasm/dist/lfm2.mjs', import.meta.url).href);
    const { default: createLFM2 } = await import(/* @vite-ignore */ url);
    let threads = Math.max(1, opts.threads ?? 2);
    const init = { nThreads: threads };
    if (!opts.moduleUrl && !globalThis.process?.versions?.node) {
      // In browsers, name the engine's files here, each as a literal new URL(..., import.meta.url):
      // a bundler (Vite, webpack 5) copies them to its output under hashed names, and these URLs follow
      // (lfm2.mjs' own URLs for its .wasm and pthread worker would not). The pthread workers import
      // the main script by URL (mainScriptUrlOrBlob), not as ./lfm2.mjs next to the worker file.
      const files = single
        ? { 'lfm2-st.wasm': new URL('../wasm/dist/lfm2-st.wasm', import.meta.url).href }
        : {
          'lfm2.wasm': new URL('../wasm/dist/lfm2.wasm', import.meta.url).href,
          'lfm2.worker.js': new URL('../wasm/dist/lfm2.worker.js', import.meta.url).href,
        };
      // Bundlers inline small files as data: URLs (Vite below 4 KiB: the pthread worker is ~3): a
      // worker started from one gets an opaque origin and could not import lfm2.mjs, one from a
      // blob: URL is same-origin.
      if (files['lfm2.worker.js']?.startsWith('data:')) {
        files['lfm2.worker.js'] = URL.createObjectURL(await (await fetch(files['lfm2.worker.js'])).blob());
      }
      init.locateFile = (file) => files[file] ?? new URL(file, url).href;
      if (!single) init.mainScriptUrlOrBlob = url;
    }
    const mod = await createLFM2(init);
    if (!mod.PThread) threads = 1; // the single-thread build
    // Idle pool workers must not keep a Node process alive (a no-op in browsers).
    for (const w of [...mod.PThread?.unusedWorkers ?? [], ...mod.PThread?.runningWorkers ?? []]) w.unref?.();
    return new Engine(mod, threads);
  }

  constructor(mod, threads) {
    // Exports return pointers as signed i32: past 2 GiB of heap they would read as negative.
    for (const f of ['_malloc', '_lfm2_model_info_json', '_lfm2_model_chat_template', '_lfm2_last_error', '_lfm2_status_name']) {
      const raw = mod[f];
      mod[f] = (...a) => raw(...a) >>> 0;
    }
    this.m = mod;
    this.threads = threads;
    /** false: the single-thread build (no pthreads), threads is 1 */
    this.threaded = !!mod.PThread;
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
    const params = m._malloc(24);
    const out = m._malloc(4);
    try {
      // lfm2_model_params: reference, header_only, n_threads, cache_policy, then u64 memory_budget at 16
      i32(m).set([opts.reference ? 1 : 0, opts.headerOnly ? 1 : 0, this.threads, opts.cachePolicy === 'lru' ? 1 : 0], params >>> 2);
      new DataView(m.lfm2Memory()).setBigUint64(params + 8 * 2, BigInt(Math.floor(opts.memoryBudget ?? 0)), true);
      const st = m._lfm2_model_open(m._lfm2_js_reader(), h, BigInt(size), params, out);
      this.check(st);
      return new Model(this, u32(m)[out >>> 2], h);
    } catch (e) {
      this.removeReader(h);
      throw e;
    } finally {
      m._free(params);
      m._free(out);
    }
  }

  /** Run fn(ptr) with n bytes of wasm memory, freed afterwards. */
  withAlloc(n, fn) {
    const p = this.m._malloc(Math.max(1, n));
    if (!p) throw new LFM2Error('LFM2_E_NOMEM', `out of wasm memory (${n} bytes)`);
    try {
      return fn(p);
    } finally {
      this.m._free(p);
    }
  }

  /** Bytes of wasm memory in use by the heap (its current size). */
  get memoryBytes() {
    return this.m.lfm2Memory().byteLength;
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

  /** Expert cache and memory figures (lfm2_stats). */
  stats() {
    const m = this.e.m;
    const names = ['expert_hits', 'expert_misses', 'expert_evictions', 'bytes_read', 'read_seconds', 'dense_bytes',
      'expert_bytes', 'context_bytes', 'budget', 'expert_slots', 'read_wait_seconds'];
    return this.e.withAlloc(names.length * 8, (p) => {
      m._lfm2_model_stats(this.alive(), p);
      const v = new Float64Array(m.lfm2Memory(), p, names.length);
      return Object.fromEntries(names.map((n, i) => [n, v[i]]));
    });
  }

  get bos() { return this.e.m._lfm2_model_token_bos(this.alive()); }
  get eos() { return this.e.m._lfm2_model_token_eos(this.alive()); }
  isEog(id) { return this.e.m._lfm2_model_token_is_eog(this.alive(), id) !== 0; }

  get chatTemplate() {
    return this.e.m.UTF8ToString(this.e.m._lfm2_model_chat_template(this.alive()));
  }

  /**
   * @param {string|Uint8Array} text
   * @param {{addSpecial?: boolean, parseSpecial?: boolean}} opts
   * @returns {Int32Array}
   */
  tokenize(text, opts = {}) {
    const e = this.e, m = e.m, ptr = this.alive();
    const bytes = typeof text === 'string' ? utf8.encode(text) : text;
    const add = opts.addSpecial ?? true ? 1 : 0, special = opts.parseSpecial ?? true ? 1 : 0;
    return e.withAlloc(bytes.length, (tp) => e.withAlloc(4, (np) => {
      u8(m).set(bytes, tp);
      let st = m._lfm2_model_tokenize(ptr, tp, bytes.length, add, special, 0, 0, np);
      if (st !== 0 && st !== 1) e.check(st);
      const n = u32(m)[np >>> 2];
      return e.withAlloc(n * 4, (op) => {
        e.check(m._lfm2_model_tokenize(ptr, tp, bytes.length, add, special, op, n, np));
        return i32(m).slice(op >>> 2, (op >>> 2) + n);
      });
    }));
  }

  /**
   * @param {ArrayLike<number>} ids
   * @param {{renderSpecial?: boolean, cleanSpaces?: boolean}} opts
   */
  detokenize(ids, opts = {}) {
    return fromUtf8.decode(this.detokenizeBytes(ids, opts));
  }

  detokenizeBytes(ids, opts = {}) {
    const e = this.e, m = e.m, ptr = this.alive();
    const rs = opts.renderSpecial ?? true ? 1 : 0, cs = opts.cleanSpaces ?? true ? 1 : 0;
    return e.withAlloc(ids.length * 4, (ip) => e.withAlloc(4, (np) => {
      const heap = i32(m);
      for (let i = 0; i < ids.length; i++) {
        const t = ids[i];
        if (!Number.isInteger(t) || t < 0 || t > 0x7fffffff) throw new LFM2Error('LFM2_E_TOKEN', `not a token id: ${t}`);
        heap[(ip >>> 2) + i] = t;
      }
      const st = m._lfm2_model_detokenize(ptr, ip, ids.length, rs, cs, 0, 0, np);
      if (st !== 0 && st !== 1) e.check(st);
      const n = u32(m)[np >>> 2];
      return e.withAlloc(n, (op) => {
        e.check(m._lfm2_model_detokenize(ptr, ip, ids.length, rs, cs, op, n, np));
        return u8(m).slice(op, op + n);
      });
    }));
  }

  /** The raw bytes of one token (may be part of a UTF-8 sequence). */
  tokenBytes(id, renderSpecial = false) {
    const e = this.e, m = e.m;
    return e.withAlloc(8, (p) => {
      e.check(m._lfm2_model_token_piece(this.alive(), id, renderSpecial ? 1 : 0, p, p + 4));
      const [ptr, len] = u32(m).subarray(p >>> 2, (p >>> 2) + 2);
      return u8(m).slice(ptr, ptr + len);
    });
  }

  /** @param {number} nCtx 0: the default (min of the model's context and 4096) */
  newContext(nCtx = 0) {
    const m = this.e.m;
    const out = m._malloc(4);
    try {
      this.e.check(m._lfm2_context_new(this.alive(), nCtx >>> 0, out));
      return new Context(this, u32(m)[out >>> 2]);
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
        heap[(tok >>> 2) + i] = t;
      }
      e.check(m._lfm2_eval(this.alive(), tok, n, out, want === 'all' ? 1 : 0));
      return rows ? f32(m).slice(out >>> 2, (out >>> 2) + rows * V) : null;
    } finally {
      m._free(tok);
      if (out) m._free(out);
    }
  }

  /**
   * Evaluate tokens and keep the last token's logits inside wasm memory (for a Sampler), without
   * copying them out: the generation loop's step.
   */
  decode(tokens) {
    const e = this.model.e, m = e.m;
    if (!this.logitsPtr) {
      this.logitsPtr = m._malloc(this.model.nVocab * F32);
      if (!this.logitsPtr) throw new LFM2Error('LFM2_E_NOMEM', 'out of memory for the logits');
    }
    e.withAlloc(tokens.length * 4, (tp) => {
      const heap = i32(m);
      for (let i = 0; i < tokens.length; i++) heap[(tp >>> 2) + i] = tokens[i];
      e.check(m._lfm2_eval(this.alive(), tp, tokens.length, this.logitsPtr, 0));
    });
    return this.logitsPtr;
  }

  truncate(n) {
    this.model.e.check(this.model.e.m._lfm2_truncate(this.alive(), n >>> 0));
  }

  free() {
    if (!this.ptr) return;
    this.model.e.m._lfm2_context_free(this.ptr);
    if (this.logitsPtr) this.model.e.m._free(this.logitsPtr);
    this.ptr = 0;
    this.logitsPtr = 0;
  }
}

/** Sampling parameters as src/lfm2.h's lfm2_sampler_params (offsets checked in src/sampler.c). */
export class Sampler {
  /**
   * @param {Model} model
   * @param {{temperature:number, top_k:number, top_p:number, min_p:number, repeat_penalty:number,
   *          frequency_penalty:number, presence_penalty:number, penalty_last_n:number, seed:number|bigint}} p
   */
  constructor(model, p) {
    const e = model.e, m = e.m;
    this.e = e;
    this.ptr = e.withAlloc(40, (pp) => e.withAlloc(4, (out) => {
      const dv = new DataView(m.lfm2Memory());
      dv.setFloat32(pp, p.temperature, true);
      dv.setInt32(pp + 4, p.top_k, true);
      dv.setFloat32(pp + 8, p.top_p, true);
      dv.setFloat32(pp + 12, p.min_p, true);
      dv.setFloat32(pp + 16, p.repeat_penalty, true);
      dv.setFloat32(pp + 20, p.frequency_penalty, true);
      dv.setFloat32(pp + 24, p.presence_penalty, true);
      dv.setInt32(pp + 28, p.penalty_last_n, true);
      dv.setBigUint64(pp + 32, BigInt.asUintN(64, BigInt(p.seed)), true);
      e.check(m._lfm2_sampler_create(pp, model.nVocab, out));
      return u32(m)[out >>> 2];
    }));
  }

  setBias(token, bias) {
    this.e.check(this.e.m._lfm2_sampler_set_bias(this.ptr, token, bias));
  }

  accept(token) {
    this.e.check(this.e.m._lfm2_sampler_accept(this.ptr, token));
  }

  /** @param {number} logitsPtr n_vocab floats in wasm memory (Context.decode) */
  sample(logitsPtr) {
    return this.e.withAlloc(4, (out) => {
      this.e.check(this.e.m._lfm2_sampler_sample(this.ptr, logitsPtr, out));
      return i32(this.e.m)[out >>> 2];
    });
  }

  free() {
    if (this.ptr) this.e.m._lfm2_sampler_free(this.ptr);
    this.ptr = 0;
  }
}
