// request.js: OpenAI-style request validation and defaults. Unknown options and wrong types are
// errors with a code, never silently ignored.
import { LFM2Error } from './errors.js';

// LFM2's model card recommends temperature 0.3, min_p 0.15, repetition_penalty 1.05.
export const SAMPLING_DEFAULTS = {
  temperature: 0.3, top_k: 0, top_p: 1, min_p: 0.15, repeat_penalty: 1.05, repeat_last_n: 64,
  frequency_penalty: 0, presence_penalty: 0,
};

const COMMON = {
  model: 'string', max_tokens: 'int', max_completion_tokens: 'int', temperature: 'number', top_p: 'number',
  top_k: 'int', min_p: 'number', seed: 'int', stop: 'stop', stream: 'boolean', stream_options: 'object',
  signal: 'signal', frequency_penalty: 'number', presence_penalty: 'number', repeat_penalty: 'number',
  repeat_last_n: 'int', logit_bias: 'object', n: 'int', user: 'string',
};
const CHAT = { ...COMMON, messages: 'array', tools: 'array', tool_choice: 'any', parallel_tool_calls: 'boolean' };
const COMPLETION = { ...COMMON, prompt: 'string', echo: 'boolean' };

function bad(msg) {
  return new LFM2Error('ERR_BAD_REQUEST', msg);
}

function checkType(key, kind, v) {
  const ok = {
    string: () => typeof v === 'string',
    int: () => Number.isInteger(v),
    number: () => typeof v === 'number' && Number.isFinite(v),
    boolean: () => typeof v === 'boolean',
    object: () => v !== null && typeof v === 'object' && !Array.isArray(v),
    array: () => Array.isArray(v),
    stop: () => typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')),
    signal: () => typeof v?.aborted === 'boolean' && typeof v.addEventListener === 'function',
    any: () => true,
  }[kind]();
  if (!ok) throw bad(`${key} must be ${kind === 'int' ? 'an integer' : kind === 'stop' ? 'a string or an array of strings' : `a ${kind}`}`);
}

/** Validate a request (chat: true for chat.completions) and resolve its generation parameters. */
export function parseRequest(req, { chat }) {
  if (!req || typeof req !== 'object') throw bad('the request must be an object');
  const allowed = chat ? CHAT : COMPLETION;
  for (const [k, v] of Object.entries(req)) {
    if (!(k in allowed)) throw new LFM2Error('ERR_UNKNOWN_OPTION', `unknown option '${k}'`);
    if (v !== undefined && v !== null) checkType(k, allowed[k], v);
  }
  if (chat && !req.messages) throw bad('messages is required');
  if (!chat && typeof req.prompt !== 'string') throw bad('prompt is required (a string)');
  if (req.n !== undefined && req.n !== null && req.n !== 1) throw bad('only n = 1 is supported');
  const p = { ...SAMPLING_DEFAULTS };
  for (const k of Object.keys(SAMPLING_DEFAULTS)) if (req[k] !== undefined && req[k] !== null) p[k] = req[k];
  if (p.temperature < 0) throw bad('temperature must be >= 0');
  if (!(p.top_p > 0 && p.top_p <= 1)) throw bad('top_p must be in (0, 1]');
  if (p.min_p < 0 || p.min_p > 1) throw bad('min_p must be in [0, 1]');
  if (p.repeat_penalty <= 0) throw bad('repeat_penalty must be > 0');
  if (p.repeat_last_n < 0) throw bad('repeat_last_n must be >= 0');
  const maxTokens = req.max_completion_tokens ?? req.max_tokens ?? Infinity;
  if (maxTokens < 0) throw bad('max_tokens must be >= 0');
  const stop = req.stop === undefined || req.stop === null ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop;
  const bias = [];
  for (const [k, v] of Object.entries(req.logit_bias ?? {})) {
    if (!/^\d+$/.test(k) || typeof v !== 'number' || Number.isNaN(v)) throw bad(`logit_bias: ${k}: ${v} is not token id -> number`);
    bias.push([Number(k), v]);
  }
  const seed = req.seed ?? Math.floor(Math.random() * 2 ** 32);
  return {
    sampling: {
      temperature: p.temperature, top_k: p.top_k, top_p: p.top_p, min_p: p.min_p, repeat_penalty: p.repeat_penalty,
      frequency_penalty: p.frequency_penalty, presence_penalty: p.presence_penalty, penalty_last_n: p.repeat_last_n, seed,
    },
    bias, maxTokens, stop, stream: !!req.stream, includeUsage: !!req.stream_options?.include_usage, signal: req.signal ?? null,
  };
}
