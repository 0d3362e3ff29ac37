// text.test.mjs: text in, text out through the wasm engine in Node: tokenizer against llama.cpp's
// outputs, the model's chat template, greedy generation against llama.cpp's continuations, prefix
// re-use across turns, streaming, stop strings, abort, and API misuse.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LFM2 } from '../web/node.js';
import { FIXTURES, index, meta, modelPath } from './fixtures.mjs';

const HAIKU = [{ role: 'user', content: 'Write a haiku about the sea, please.' }];
const GREEDY = { temperature: 0, repeat_penalty: 1 };
const cases = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tokenizer.json'), 'utf8')).tests;

let lfm;
before(async () => { lfm = await LFM2.load(modelPath('tiny-f32'), { threads: 2 }); });
after(() => lfm?.unload());

describe('tokenizer (llama.cpp outputs)', () => {
  test(`all ${cases.length} fixture strings: ids, ids_no_special, detok`, () => {
    for (const c of cases) {
      assert.deepEqual(lfm.tokenize(c.text), c.ids, `ids of ${JSON.stringify(c.text)}`);
      assert.deepEqual(lfm.tokenize(c.text, { addSpecial: false, parseSpecial: false }), c.ids_no_special, `ids_no_special of ${JSON.stringify(c.text)}`);
      assert.equal(lfm.detokenize(c.ids), c.detok, `detok of ${JSON.stringify(c.text)}`);
    }
  });

  test('round trip of random Unicode text (no special parsing, no space cleaning)', () => {
    const pools = ['abc XYZ 123', 'héllo wörld ñ', '日本語のテキスト', '😀🎉👍🏽🇫🇷', 'e\u0301 a\u0308', '\t\n\r \u00a0\u2003', "it's we'll", '<|im_end|>', '\u0000\u0007'];
    let seed = 7;
    const rnd = (n) => (seed = (seed * 48271) % 2147483647) % n;
    for (let i = 0; i < 300; i++) {
      let s = '';
      for (let j = rnd(12); j >= 0; j--) { const p = Array.from(pools[rnd(pools.length)]); s += p.slice(rnd(p.length)).join(''); }
      const ids = lfm.tokenize(s, { addSpecial: false, parseSpecial: false });
      assert.equal(lfm.detokenize(ids, { renderSpecial: true, cleanSpaces: false }), s);
    }
  });

  test('errors: ids outside the vocabulary, wrong argument types', () => {
    assert.throws(() => lfm.detokenize([1, 5000]), { code: 'LFM2_E_TOKEN' });
    assert.throws(() => lfm.detokenize([-1]), { code: 'LFM2_E_TOKEN' });
    assert.throws(() => lfm.tokenize(42), { code: 'ERR_BAD_REQUEST' });
  });
});

describe('chat template (the GGUF\'s own Jinja)', () => {
  test('the fixture prompt renders to the fixtures\' chat tokens', () => {
    const text = lfm.applyChatTemplate(HAIKU);
    assert.equal(text, '<|startoftext|><|im_start|>user\nWrite a haiku about the sea, please.<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(lfm.tokenize(text, { addSpecial: false }), index.prompts.chat);
  });

  test('system, multi-turn and tools', () => {
    assert.equal(lfm.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }]),
      '<|startoftext|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
      '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n');
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const text = lfm.applyChatTemplate([{ role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>' },
      { role: 'tool', content: '{"temp": 20}' }], { tools });
    assert.equal(text, '<|startoftext|><|im_start|>system\nList of tools: <|tool_list_start|>[{"type": "function", "function": {"name": "get_weather", ' +
      '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]<|tool_list_end|><|im_end|>\n' +
      '<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|><|im_end|>\n' +
      '<|im_start|>tool\n<|tool_response_start|>{"temp": 20}<|tool_response_end|><|im_end|>\n<|im_start|>assistant\n');
    assert.equal(lfm.applyChatTemplate(HAIKU, { addGenerationPrompt: false }), '<|startoftext|><|im_start|>user\nWrite a haiku about the sea, please.<|im_end|>\n');
  });

  test('bad messages are clear errors', () => {
    assert.throws(() => lfm.applyChatTemplate([]), { code: 'ERR_BAD_REQUEST' });
    assert.throws(() => lfm.applyChatTemplate([{ role: 'wizard', content: 'x' }]), { code: 'ERR_BAD_REQUEST', message: /role/ });
    assert.throws(() => lfm.applyChatTemplate([{ role: 'user', content: 5 }]), { code: 'ERR_BAD_REQUEST' });
  });
});

describe('generation', () => {
  for (const entry of ['tiny-f32', 'kq2-f32', 'dense-f32']) {
    test(`${entry}: greedy reproduces llama.cpp's 16-token continuation`, async () => {
      const m = entry === 'tiny-f32' ? lfm : await LFM2.load(modelPath(entry), { threads: 2 });
      try {
        const want = m.detokenize(meta(entry).greedy_gen, { renderSpecial: true, cleanSpaces: false });
        const r = await m.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 16 });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, want);
        assert.equal(r.choices[0].finish_reason, 'length');
        assert.deepEqual(r.usage, { prompt_tokens: 24, completion_tokens: 16, total_tokens: 40, prompt_tokens_details: { cached_tokens: 0 } });
      } finally {
        if (m !== lfm) m.unload();
      }
    });
  }

  test('streaming gives the same text as a plain request, in chat.completion.chunk objects', async () => {
    const plain = await lfm.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 12 });
    const chunks = [];
    for await (const c of await lfm.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 12, stream: true, stream_options: { include_usage: true } })) chunks.push(c);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, plain.choices[0].message.content);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
    assert.equal(chunks.at(-1).usage.completion_tokens, 12);
  });

  test('a second turn evaluates only its new tokens and answers as a fresh model would', async () => {
    const first = await lfm.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 8 });
    const convo = [...HAIKU, first.choices[0].message, { role: 'user', content: 'Another one about mountains.' }];
    const warm = await lfm.chat.completions.create({ messages: convo, ...GREEDY, max_tokens: 10 });
    const last = lfm.stats().last;
    assert.ok(warm.usage.prompt_tokens_details.cached_tokens >= 24, JSON.stringify(warm.usage));
    assert.equal(last.evaluated_tokens, warm.usage.prompt_tokens - warm.usage.prompt_tokens_details.cached_tokens);
    const fresh = await LFM2.load(modelPath('tiny-f32'), { threads: 1 });
    try {
      const cold = await fresh.chat.completions.create({ messages: convo, ...GREEDY, max_tokens: 10 });
      assert.equal(cold.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(warm.choices[0].message.content, cold.choices[0].message.content);
    } finally {
      fresh.unload();
    }
  });

  test('stop strings end the answer across token boundaries and are not emitted', async () => {
    const full = (await lfm.completions.create({ prompt: 'The sea', ...GREEDY, max_tokens: 24 })).choices[0].text;
    assert.ok(full.length > 12, full);
    const stop = full.slice(5, 9); // most likely spans a token boundary
    const r = await lfm.completions.create({ prompt: 'The sea', ...GREEDY, max_tokens: 24, stop: [stop, 'never-there'] });
    assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(r.choices[0].finish_reason, 'stop');
    let streamed = '';
    for await (const c of await lfm.completions.create({ prompt: 'The sea', ...GREEDY, max_tokens: 24, stop, stream: true })) streamed += c.choices[0]?.text ?? '';
    assert.equal(streamed, r.choices[0].text);
  });

  test('seeded sampling is reproducible', async () => {
    const req = { messages: HAIKU, temperature: 0.9, top_k: 50, top_p: 0.95, seed: 1234, max_tokens: 12 };
    const a = await lfm.chat.completions.create(req), b = await lfm.chat.completions.create(req);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  });

  test('abort mid-stream stops within one token; the model stays usable', async () => {
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(async () => {
      for await (const c of await lfm.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 40, stream: true, signal: ac.signal })) {
        if (c.choices[0]?.delta?.content) n++;
        if (n === 3) ac.abort();
      }
    }, { code: 'ERR_ABORTED' });
    assert.equal(n, 3);
    const r = await lfm.chat.completions.create({ messages: HAIKU, ...GREEDY, max_tokens: 16 });
    assert.equal(r.choices[0].message.content, lfm.detokenize(meta('tiny-f32').greedy_gen, { renderSpecial: true, cleanSpaces: false }));
  });

  test('misuse: unknown option, bad shapes, two generations at once, calls after unload', async () => {
    await assert.rejects(() => lfm.chat.completions.create({ messages: HAIKU, temprature: 0 }), { code: 'ERR_UNKNOWN_OPTION', message: /temprature/ });
    await assert.rejects(() => lfm.chat.completions.create({ messages: 'hi' }), { code: 'ERR_BAD_REQUEST' });
    await assert.rejects(() => lfm.chat.completions.create({ messages: HAIKU, max_tokens: 1.5 }), { code: 'ERR_BAD_REQUEST' });
    await assert.rejects(() => lfm.chat.completions.create({ messages: HAIKU, top_p: 0 }), { code: 'ERR_BAD_REQUEST' });
    const running = lfm.chat.completions.create({ messages: HAIKU, max_tokens: 5 });
    await assert.rejects(() => lfm.chat.completions.create({ messages: HAIKU }), { code: 'ERR_BUSY' });
    await running;
    await assert.rejects(() => LFM2.load(modelPath('tiny-f32'), { thread: 2 }), { code: 'ERR_UNKNOWN_OPTION' });
    await assert.rejects(() => LFM2.load('/no/such/model.gguf'), { code: 'ERR_FILE' });
    const m = await LFM2.load(modelPath('dense-f32'), { threads: 1 });
    m.unload();
    await assert.rejects(() => m.chat.completions.create({ messages: HAIKU }), { code: 'ERR_UNLOADED' });
    assert.throws(() => m.tokenize('x'), { code: 'ERR_UNLOADED' });
    assert.throws(() => m.stats(), { code: 'ERR_UNLOADED' });
  });
});
