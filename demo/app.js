// app.js: the chat page. Uses the public browser API only (web/index.js, `lfm2-wasm` in an app).
// All model text goes into the page through textContent: never parsed as HTML.
import { LFM2 } from '../web/index.js';
import { PRESETS } from './models.js';

const $ = (id) => document.getElementById(id);
const ui = {
  env: $('env'), preset: $('preset'), load: $('load'), cancelLoad: $('cancel-load'), url: $('custom-url'), file: $('local-file'),
  progressBox: $('progress-box'), progress: $('progress'), progressText: $('progress-text'), status: $('model-status'),
  stored: $('stored'), storedList: $('stored-list'), usage: $('usage'),
  system: $('system'), temperature: $('temperature'), topP: $('top-p'), repeatPenalty: $('repeat-penalty'), maxTokens: $('max-tokens'),
  threads: $('threads'), memoryBudget: $('memory-budget'),
  messages: $('messages'), composer: $('composer'), prompt: $('prompt'), send: $('send'), stop: $('stop'), newChat: $('new-chat'), stats: $('stats'),
};

// extraOptions: more request options (e.g. logit_bias, seed, stop) for every request, from the console
const state = { lfm: null, loading: null, generating: null, history: [], modelName: null, extraOptions: {} };
window.lfm2App = state; // for the browser tests and the console

// ---- formatting
const mb = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(0, n / 1e3).toFixed(0)} KB`);
function eta(s) {
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 90) return `${Math.ceil(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// ---- environment
const defaultThreads = crossOriginIsolated ? Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8)) : 1;
const SINGLE_THREAD_NOTICE = 'single thread: page not cross-origin isolated';
ui.env.textContent = crossOriginIsolated
  ? `Runs entirely in this browser: WebAssembly SIMD, ${defaultThreads} threads available. Models are stored on this device.`
  : `Single thread: page not cross-origin isolated (no COOP/COEP headers, so no shared memory for wasm threads); ` +
    'it still runs entirely in this browser. Serve it with those headers (npm start does), or reload once the service worker adds them, for all threads.';
if (!crossOriginIsolated) ui.env.classList.add('warn');

// ---- settings, remembered
const SETTINGS = ['system', 'temperature', 'topP', 'repeatPenalty', 'maxTokens', 'threads', 'memoryBudget'];
try {
  const saved = JSON.parse(localStorage.getItem('lfm2-settings') ?? '{}');
  for (const k of SETTINGS) if (saved[k] !== undefined) ui[k].value = saved[k];
} catch { /* fresh settings */ }
if (!ui.threads.value) ui.threads.value = defaultThreads;
if (!crossOriginIsolated) { ui.threads.value = 1; ui.threads.disabled = true; ui.threads.title = SINGLE_THREAD_NOTICE; }
for (const k of SETTINGS) ui[k].addEventListener('change', () => {
  localStorage.setItem('lfm2-settings', JSON.stringify(Object.fromEntries(SETTINGS.map((s) => [s, ui[s].value]))));
});
const num = (el, dflt) => { const v = Number(el.value); return el.value !== '' && Number.isFinite(v) ? v : dflt; };

// ---- model picker
for (const p of PRESETS) {
  const o = document.createElement('option');
  o.value = p.id;
  o.textContent = `${p.label} — ${mb(p.size)}`;
  if (p.default) o.selected = true;
  ui.preset.append(o);
}

function setStatus(text, kind = '') {
  ui.status.textContent = text;
  ui.status.className = `note ${kind}`;
}

function setLoading(on) {
  ui.load.disabled = on;
  ui.cancelLoad.hidden = !on;
  ui.progressBox.hidden = !on;
  ui.file.disabled = on;
}

function onProgress(p) {
  if (p.phase === 'download') {
    const frac = p.total ? p.bytes / p.total : 0;
    ui.progress.value = frac;
    const rate = p.bytesPerSecond ?? 0;
    const left = p.total && rate > 0 ? (p.total - p.bytes) / rate : NaN;
    ui.progressText.textContent = `Downloading ${mb(p.bytes)}${p.total ? ` / ${mb(p.total)}` : ''} · ${(rate / 1e6).toFixed(1)} MB/s${eta(left) ? ` · ${eta(left)} left` : ''}`;
  } else {
    ui.progress.value = p.total ? p.bytes / p.total : 0;
    ui.progressText.textContent = `Loading into the engine: ${mb(p.bytes)}${p.total ? ` / ${mb(p.total)}` : ''}`;
  }
}

async function loadModel(source, label) {
  if (state.loading) return;
  stopGeneration();
  if (state.lfm) {
    const old = state.lfm;
    state.lfm = null;
    await old.unload().catch(() => {});
  }
  setChatEnabled(false);
  const ac = new AbortController();
  state.loading = ac;
  setLoading(true);
  ui.progress.value = 0;
  ui.progressText.textContent = 'Starting…';
  setStatus(`Loading ${label}…`);
  const t0 = performance.now();
  try {
    const opts = { threads: Math.max(1, Math.floor(num(ui.threads, defaultThreads))), onProgress, signal: ac.signal };
    if (ui.memoryBudget.value.trim()) opts.memoryBudget = ui.memoryBudget.value.trim();
    const lfm = await LFM2.load(source, opts);
    state.lfm = lfm;
    state.modelName = lfm.name;
    const info = await lfm.info();
    const params = info.n_params >= 1e9 ? `${(info.n_params / 1e9).toFixed(1)}B` : `${(info.n_params / 1e6).toFixed(0)}M`;
    setStatus(`${info.name || lfm.name}: ${info.architecture}, ${params} parameters, ${mb(lfm.size)}, ${lfm.isolated === false ? SINGLE_THREAD_NOTICE : `${lfm.threads} thread${lfm.threads > 1 ? 's' : ''}`}, context ${info.context_length_used}. Loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, 'ok');
    setChatEnabled(true);
    ui.prompt.focus();
  } catch (e) {
    setStatus(e.name === 'AbortError' ? 'Load cancelled (a partial download is kept and resumes next time).' : `Could not load ${label}: ${e.message}`, e.name === 'AbortError' ? '' : 'error');
  } finally {
    state.loading = null;
    setLoading(false);
    refreshStored();
  }
}

ui.load.addEventListener('click', () => {
  const url = ui.url.value.trim();
  if (url) return loadModel(url, url);
  const p = PRESETS.find((x) => x.id === ui.preset.value);
  loadModel(p.source, p.label);
});
ui.cancelLoad.addEventListener('click', () => state.loading?.abort());
ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) loadModel(f, f.name);
  ui.file.value = '';
});

// ---- stored models
async function refreshStored() {
  let models, usage;
  try {
    [models, usage] = await Promise.all([LFM2.list(), LFM2.usage()]);
  } catch (e) {
    ui.usage.textContent = `(unavailable: ${e.message})`;
    return;
  }
  ui.usage.textContent = `(${models.length}, ${mb(usage.models)}${usage.quota ? ` of ${mb(usage.quota)} allowed` : ''})`;
  ui.storedList.replaceChildren(...models.map((m) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `${m.name} — ${mb(m.bytes)}${m.complete ? '' : ` of ${m.size ? mb(m.size) : '?'} (partial)`}`;
    const use = document.createElement('button');
    use.type = 'button';
    use.className = 'secondary';
    use.textContent = m.complete ? 'Load' : 'Resume';
    use.addEventListener('click', () => loadModel(m.complete ? m.name : m.url, m.name));
    if (!m.complete && !m.url) use.disabled = true;
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'secondary';
    del.textContent = 'Delete';
    del.addEventListener('click', async () => {
      if (state.lfm && state.modelName === m.name) {
        const old = state.lfm;
        state.lfm = null;
        setChatEnabled(false);
        await old.unload().catch(() => {});
        setStatus('No model loaded.');
      }
      try {
        await LFM2.delete(m.name);
      } catch (e) {
        setStatus(`Could not delete ${m.name}: ${e.message}`, 'error');
      }
      refreshStored();
    });
    li.append(name, use, del);
    return li;
  }));
}

// ---- chat
function setChatEnabled(on) {
  ui.prompt.disabled = !on;
  ui.send.disabled = !on || !!state.generating;
  ui.prompt.placeholder = on ? 'Message the model (Enter to send, Shift+Enter for a new line)' : 'Load a model, then ask something…';
}

function bubble(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  ui.messages.append(div);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return div;
}

function stopGeneration() {
  state.generating?.abort();
}

async function send(text) {
  const lfm = state.lfm;
  if (!lfm || state.generating || !text.trim()) return;
  state.history.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '');
  out.classList.add('streaming');
  const body = document.createTextNode('');
  out.append(body);
  const ac = new AbortController();
  state.generating = ac;
  ui.send.disabled = true;
  ui.stop.disabled = false;
  const messages = [...(ui.system.value.trim() ? [{ role: 'system', content: ui.system.value.trim() }] : []), ...state.history];
  let answer = '', finish = null, painting = 0;
  // one DOM update per frame, however fast the tokens come
  const paint = () => {
    painting ||= requestAnimationFrame(() => {
      painting = 0;
      body.data = answer;
      ui.messages.scrollTop = ui.messages.scrollHeight;
    });
  };
  try {
    const stream = await lfm.chat.completions.create({
      messages, stream: true, signal: ac.signal,
      temperature: num(ui.temperature, 0.3), top_p: Math.min(1, Math.max(0.01, num(ui.topP, 1))),
      repeat_penalty: num(ui.repeatPenalty, 1.05), max_tokens: Math.max(1, Math.floor(num(ui.maxTokens, 512))),
      ...state.extraOptions,
    });
    state.chunks = 0;
    for await (const chunk of stream) {
      state.chunks++;
      const c = chunk.choices[0];
      if (c?.delta?.content) {
        answer += c.delta.content;
        paint();
      }
      if (c?.finish_reason) finish = c.finish_reason;
    }
  } catch (e) {
    if (e.name === 'AbortError') finish = 'stopped';
    else {
      finish = 'error';
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = `error: ${e.message}`;
      out.append(tag);
    }
  } finally {
    cancelAnimationFrame(painting);
    body.data = answer;
    ui.messages.scrollTop = ui.messages.scrollHeight;
    out.classList.remove('streaming');
    out.dataset.finish = finish ?? '';
    if (finish === 'stopped' || finish === 'length') {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = finish === 'stopped' ? '(stopped)' : '(max tokens reached)';
      out.append(tag);
    }
    if (answer) state.history.push({ role: 'assistant', content: answer });
    else if (finish !== 'error') state.history.pop(); // nothing came back: forget the question too
    state.generating = null;
    ui.stop.disabled = true;
    setChatEnabled(!!state.lfm);
    if (state.lfm === lfm) showStats(lfm);
  }
}

async function showStats(lfm) {
  try {
    const s = await lfm.stats();
    const parts = [];
    if (s.last) {
      parts.push(`prefill ${s.last.prefill_tokens_per_s.toFixed(1)} tok/s (${s.last.evaluated_tokens} new, ${s.last.cached_tokens} cached)`);
      parts.push(`decode ${s.last.decode_tokens_per_s.toFixed(1)} tok/s (${s.last.completion_tokens} tokens)`);
    }
    parts.push(`memory ${mb(s.memory_bytes)}`);
    const lookups = s.expert_hits + s.expert_misses;
    if (lookups > 0) parts.push(`expert cache ${(100 * s.expert_hits / lookups).toFixed(1)}% hits`);
    parts.push(`context ${s.n_past}/${s.context_length}`);
    ui.stats.textContent = parts.join(' · ');
  } catch {
    ui.stats.textContent = '';
  }
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.prompt.value;
  if (!text.trim() || !state.lfm || state.generating) return;
  ui.prompt.value = '';
  send(text);
});
ui.prompt.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    ui.composer.requestSubmit();
  }
});
ui.stop.addEventListener('click', stopGeneration);
ui.newChat.addEventListener('click', () => {
  stopGeneration();
  state.history = [];
  ui.messages.replaceChildren();
  ui.stats.textContent = '';
  ui.prompt.focus();
});

// ---- offline: the service worker keeps the page and the engine for use without a network
if ('serviceWorker' in navigator && !new URLSearchParams(location.search).has('nosw')) {
  // scope: the whole site, as the engine's files (web/, wasm/dist/) live beside demo/ (serve.js allows
  // it with Service-Worker-Allowed); a host that does not gets the page alone cached
  navigator.serviceWorker.register('sw.js', { scope: '../' })
    .catch(() => navigator.serviceWorker.register('sw.js'))
    .then(async () => {
      // a static host without COOP/COEP: the service worker adds them; one reload makes the page isolated
      if (crossOriginIsolated || sessionStorage.getItem('lfm2-coi-reload')) return;
      await navigator.serviceWorker.ready;
      sessionStorage.setItem('lfm2-coi-reload', '1');
      location.reload();
    })
    .catch(() => { /* offline use unavailable */ });
}

refreshStored();
