// session.js: one loaded model and its evaluation state, with the OpenAI-style API that Node and
// the browser Worker share: chat.completions.create, completions.create, tokenize, detokenize,
// info, stats, unload. A new request evaluates only the tokens after the longest common prefix
// with the state already held, so a chat's second turn costs only its new tokens.
import { ChatTemplate } from './chat-template.js';
import { LFM2Error } from './errors.js';
import { parseRequest } from './request.js';
import { StopMatcher } from './stop.js';
import { extractToolCalls } from './tool-calls.js';
import { Sampler } from './engine.js';

// Let other work (an abort, the stream's consumer) run between tokens.
const nextTurn = typeof setImmediate === 'function'
  ? () => new Promise((r) => setImmediate(r))
  : () => new Promise((r) => { const ch = new MessageChannel(); ch.port1.onmessage = () => r(); ch.port2.postMessage(0); });

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
let serial = 0;
const newId = (prefix) => `${prefix}-${Date.now().toString(36)}${(serial++).toString(36)}`;

export class Session {
  /**
   * @param {import('./engine.js').Engine} engine
   * @param {import('./engine.js').Model} model
   * @param {{contextLength?: number, name?: string, onUnload?: () => void}} opts
   */
  constructor(engine, model, opts = {}) {
    this.engine = engine;
    this.model = model;
    this.ctx = model.newContext(opts.contextLength ?? 0);
    this.name = opts.name ?? model.info().name ?? 'lfm2';
    this.onUnload = opts.onUnload;
    this.held = []; // the tokens the state holds
    this.busy = false;
    this.template = null;
    this.last = null;
    this.totals = { requests: 0, promptTokens: 0, cachedTokens: 0, evaluatedTokens: 0, generatedTokens: 0 };
    // create() always returns a promise (errors reject it), but claims the model synchronously
    const create = (chat) => (req) => { try { return this.#create(req, chat); } catch (e) { return Promise.reject(e); } };
    this.chat = { completions: { create: create(true) } };
    this.completions = { create: create(false) };
  }

  #alive() {
    if (!this.model) throw new LFM2Error('ERR_UNLOADED', 'the model has been unloaded');
  }

  #chatTemplate() {
    if (!this.template) {
      const piece = (id) => (id >= 0 ? this.model.detokenize([id], { renderSpecial: true, cleanSpaces: false }) : '');
      this.template = new ChatTemplate(this.model.chatTemplate, { bos_token: piece(this.model.bos), eos_token: piece(this.model.eos) });
    }
    return this.template;
  }

  /** Render a chat to its prompt text with the model's template (no tokens evaluated). */
  applyChatTemplate(messages, { tools, addGenerationPrompt = true } = {}) {
    this.#alive();
    return this.#chatTemplate().render(messages, { tools, addGenerationPrompt });
  }

  tokenize(text, { addSpecial = true, parseSpecial = true } = {}) {
    this.#alive();
    if (typeof text !== 'string') throw new LFM2Error('ERR_BAD_REQUEST', 'tokenize takes a string');
    return Array.from(this.model.tokenize(text, { addSpecial, parseSpecial }));
  }

  detokenize(ids, { renderSpecial = true, cleanSpaces = true } = {}) {
    this.#alive();
    if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new LFM2Error('ERR_BAD_REQUEST', 'detokenize takes an array of token ids');
    return this.model.detokenize(ids, { renderSpecial, cleanSpaces });
  }

  info() {
    this.#alive();
    return { ...this.model.info(), context_length_used: this.ctx.nCtx, threads: this.engine.threads };
  }

  stats() {
    this.#alive();
    return {
      n_past: this.held.length,
      context_length: this.ctx.nCtx,
      memory_bytes: this.engine.memoryBytes,
      ...this.model.stats(),
      last: this.last,
      totals: { ...this.totals },
    };
  }

  unload() {
    if (!this.model) return;
    if (this.busy) this.abortRequested = true;
    this.ctx.free();
    this.model.free();
    this.model = null;
    this.onUnload?.();
  }

  #create(req, chat) {
    this.#alive();
    const r = parseRequest(req, { chat });
    let promptText;
    if (chat) promptText = this.#chatTemplate().render(req.messages, { tools: req.tools });
    else promptText = req.prompt;
    // the template writes BOS itself; raw prompts get it added as the model asks
    const promptTokens = this.tokenize(promptText, { addSpecial: !chat, parseSpecial: true });
    if (promptTokens.length === 0) throw new LFM2Error('ERR_BAD_REQUEST', 'the prompt is empty');
    if (promptTokens.length >= this.ctx.nCtx)
      throw new LFM2Error('LFM2_E_CONTEXT_FULL', `the prompt has ${promptTokens.length} tokens; the context holds ${this.ctx.nCtx}`);
    if (this.busy) throw new LFM2Error('ERR_BUSY', 'a generation is already running on this model');
    if (r.signal?.aborted) throw abortError();
    this.busy = true;
    const meta = { id: newId(chat ? 'chatcmpl' : 'cmpl'), created: Math.floor(Date.now() / 1000), model: this.name };
    const gen = this.#generate(promptTokens, r);
    if (r.stream) return Promise.resolve(chat ? chatChunks(gen, meta, r) : textChunks(gen, meta, r));
    return (async () => {
      let text = '';
      let end;
      for (;;) {
        const { value, done } = await gen.next();
        if (done) { end = value; break; }
        text += value;
      }
      if (!chat) return { ...meta, object: 'text_completion', choices: [{ index: 0, text, finish_reason: end.finish, logprobs: null }], usage: end.usage };
      const { content, toolCalls } = extractToolCalls(text, `call-${meta.id}`);
      const message = { role: 'assistant', content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
      return { ...meta, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: toolCalls.length ? 'tool_calls' : end.finish, logprobs: null }], usage: end.usage };
    })();
  }

  /** Yields text pieces; returns {finish, usage}. Releases `busy` however it ends. */
  async *#generate(prompt, r) {
    const model = this.model, ctx = this.ctx;
    let sampler = null;
    try {
      let keep = 0;
      while (keep < this.held.length && keep < prompt.length && this.held[keep] === prompt[keep]) keep++;
      keep = Math.min(keep, prompt.length - 1); // at least one token to evaluate, for its logits
      if (keep < this.held.length) {
        ctx.truncate(keep);
        this.held.length = keep;
      }
      const fresh = prompt.slice(keep);
      const t0 = now();
      let logits = ctx.decode(fresh);
      this.held.push(...fresh);
      const t1 = now();
      sampler = new Sampler(model, r.sampling);
      for (const [tok, b] of r.bias) sampler.setBias(tok, b);
      for (const t of prompt.slice(-Math.max(0, r.sampling.penalty_last_n))) sampler.accept(t);
      const decoder = new TextDecoder('utf-8');
      const stop = new StopMatcher(r.stop);
      let finish = 'length', n = 0, hitStop = false;
      while (n < r.maxTokens) {
        await nextTurn();
        if (r.signal?.aborted || this.abortRequested || !this.model) throw abortError();
        const tok = sampler.sample(logits);
        sampler.accept(tok);
        if (model.isEog(tok)) { finish = 'stop'; break; }
        n++;
        const { emit, stopped } = stop.push(decoder.decode(model.tokenBytes(tok, true), { stream: true }));
        if (emit) yield emit;
        if (stopped) { finish = 'stop'; hitStop = true; break; }
        if (this.held.length >= ctx.nCtx) break; // context full: finish 'length'
        logits = ctx.decode([tok]);
        this.held.push(tok);
      }
      if (!hitStop) {
        const { emit, stopped } = stop.push(decoder.decode()); // a dangling partial UTF-8 sequence
        const tail = emit + (stopped ? '' : stop.flush());
        if (tail) yield tail;
      }
      const t2 = now();
      const usage = { prompt_tokens: prompt.length, completion_tokens: n, total_tokens: prompt.length + n, prompt_tokens_details: { cached_tokens: keep } };
      this.last = {
        prompt_tokens: prompt.length, cached_tokens: keep, evaluated_tokens: fresh.length, completion_tokens: n,
        prefill_ms: t1 - t0, decode_ms: t2 - t1,
        prefill_tokens_per_s: fresh.length / Math.max(1e-3, (t1 - t0) / 1000),
        decode_tokens_per_s: n / Math.max(1e-3, (t2 - t1) / 1000),
        finish_reason: finish,
      };
      const T = this.totals;
      T.requests++; T.promptTokens += prompt.length; T.cachedTokens += keep; T.evaluatedTokens += fresh.length; T.generatedTokens += n;
      return { finish, usage };
    } finally {
      sampler?.free();
      this.busy = false;
      this.abortRequested = false;
    }
  }
}

function abortError() {
  const e = new LFM2Error('ERR_ABORTED', 'the request was aborted');
  e.name = 'AbortError';
  return e;
}

/** Stream chunks around the text generator; a consumer that stops early ends the generation. */
async function* chunks(gen, { first, piece, last, usage }) {
  try {
    if (first) yield first;
    for (;;) {
      const { value, done } = await gen.next();
      if (done) {
        yield last(value.finish);
        if (usage) yield usage(value.usage);
        return;
      }
      yield piece(value);
    }
  } finally {
    await gen.return();
  }
}

function chatChunks(gen, meta, r) {
  const chunk = (delta, finish_reason = null) => ({ ...meta, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason, logprobs: null }] });
  return chunks(gen, {
    first: chunk({ role: 'assistant', content: '' }),
    piece: (text) => chunk({ content: text }),
    last: (finish) => chunk({}, finish),
    usage: r.includeUsage && ((u) => ({ ...meta, object: 'chat.completion.chunk', choices: [], usage: u })),
  });
}

function textChunks(gen, meta, r) {
  const chunk = (text, finish_reason = null) => ({ ...meta, object: 'text_completion', choices: [{ index: 0, text, finish_reason, logprobs: null }] });
  return chunks(gen, {
    piece: (text) => chunk(text),
    last: (finish) => chunk('', finish),
    usage: r.includeUsage && ((u) => ({ ...meta, object: 'text_completion', choices: [], usage: u })),
  });
}
