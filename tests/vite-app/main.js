// main.js: the smallest app over the package, as a user would write it. Loads the model served
// next to the page (public/model.gguf), asks one greedy question and writes the answer into the page.
import { LFM2 } from 'lfm2-wasm';

const status = document.getElementById('status');
const params = new URLSearchParams(location.search);
const prompt = params.get('prompt') ?? 'Hello there, who are you?';

try {
  const lfm = await LFM2.load('./model.gguf', { threads: 2 });
  const r = await lfm.chat.completions.create({
    messages: [{ role: 'user', content: prompt }],
    temperature: 0, repeat_penalty: 1, max_tokens: 8,
  });
  document.getElementById('answer').textContent = r.choices[0].message.content;
  await lfm.unload();
  status.textContent = 'done';
} catch (e) {
  status.textContent = `error: ${e?.code ?? ''} ${e?.message ?? e}`;
}
