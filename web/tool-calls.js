// tool-calls.js: LFM2 answers a tool call as <|tool_call_start|>[name(arg=value, ...)]<|tool_call_end|>
// (Python call syntax); this turns such text into OpenAI tool_calls.
const START = '<|tool_call_start|>', END = '<|tool_call_end|>';

/** Parse a Python-literal subset: strings, numbers, True/False/None, lists, dicts. */
function parseCalls(src) {
  let i = 0;
  const ws = () => { while (/\s/.test(src[i] ?? '')) i++; };
  const expect = (c) => { ws(); if (src[i] !== c) throw new Error(`expected ${c} at ${i}`); i++; };
  const ident = () => { ws(); const m = /^[A-Za-z_][\w.-]*/.exec(src.slice(i)); if (!m) throw new Error(`name expected at ${i}`); i += m[0].length; return m[0]; };
  function value() {
    ws();
    const c = src[i];
    if (c === '"' || c === "'") {
      let s = '';
      for (i++; i < src.length && src[i] !== c; i++) {
        if (src[i] === '\\') { i++; s += { n: '\n', t: '\t', r: '\r' }[src[i]] ?? src[i]; } else s += src[i];
      }
      if (src[i] !== c) throw new Error('unterminated string');
      i++;
      return s;
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')', out = [];
      i++; ws();
      while (src[i] !== close) { out.push(value()); ws(); if (src[i] === ',') i++; ws(); }
      i++;
      return out;
    }
    if (c === '{') {
      const out = {};
      i++; ws();
      while (src[i] !== '}') { const k = value(); expect(':'); out[k] = value(); ws(); if (src[i] === ',') i++; ws(); }
      i++;
      return out;
    }
    const m = /^(-?\d+(\.\d+)?([eE][-+]?\d+)?|True|False|None|true|false|null)/.exec(src.slice(i));
    if (!m) throw new Error(`value expected at ${i}`);
    i += m[0].length;
    return { True: true, true: true, False: false, false: false, None: null, null: null }[m[0]] ?? Number(m[0]);
  }
  const calls = [];
  expect('[');
  ws();
  while (src[i] !== ']') {
    const name = ident(), args = {};
    expect('(');
    ws();
    while (src[i] !== ')') { const k = ident(); expect('='); args[k] = value(); ws(); if (src[i] === ',') i++; ws(); }
    i++;
    calls.push({ name, args });
    ws();
    if (src[i] === ',') i++;
    ws();
  }
  return calls;
}

/** Split an answer into its text and its tool calls (OpenAI shape); text unchanged if none parse. */
export function extractToolCalls(text, idPrefix) {
  const calls = [];
  let content = '', rest = text;
  for (;;) {
    const a = rest.indexOf(START);
    const b = a < 0 ? -1 : rest.indexOf(END, a);
    if (b < 0) { content += rest; break; }
    try {
      for (const c of parseCalls(rest.slice(a + START.length, b)))
        calls.push({ id: `${idPrefix}-${calls.length}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } });
      content += rest.slice(0, a);
    } catch {
      content += rest.slice(0, b + END.length);
    }
    rest = rest.slice(b + END.length);
  }
  return { content: content.trim() === '' && calls.length ? null : content, toolCalls: calls };
}
