// sw.js: the chat page's service worker, so the page works offline once visited (the models are
// in OPFS already). Network first, the cache when offline; models (.gguf) and byte-range requests
// always go to the network (the model store handles them). It also adds the cross-origin isolation
// headers when a static host does not send them, so threads work there too.
const CACHE = 'lfm2-demo-v2';
const SHELL = [
  './', 'index.html', 'app.js', 'app.css', 'models.js', 'favicon.svg',
  '../web/index.js', '../web/worker.js', '../web/engine.js', '../web/session.js', '../web/store.js',
  '../web/opfs-reader.js', '../web/errors.js', '../web/request.js', '../web/stop.js', '../web/tool-calls.js',
  '../web/chat-template.js', '../web/units.js',
  '../wasm/dist/lfm2.mjs', '../wasm/dist/lfm2.wasm', '../wasm/dist/lfm2.worker.js', '../wasm/dist/lfm2-st.mjs', '../wasm/dist/lfm2-st.wasm',
  '../node_modules/@huggingface/jinja/dist/index.js',
];

self.addEventListener('install', (ev) => {
  ev.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all(SHELL.map((u) => cache.add(u).catch(() => {}))); // a missing file is no reason to fail
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

function isolated(res) {
  if (!res || res.type === 'opaque' || res.status === 0) return res;
  if (res.headers.get('Cross-Origin-Embedder-Policy')) return res;
  const h = new Headers(res.headers);
  h.set('Cross-Origin-Opener-Policy', 'same-origin');
  h.set('Cross-Origin-Embedder-Policy', 'require-corp');
  h.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
}

self.addEventListener('fetch', (ev) => {
  const req = ev.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin || req.headers.has('range') || url.pathname.endsWith('.gguf')) return;
  ev.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(req, res.clone()).catch(() => {});
      return isolated(res);
    } catch (e) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return isolated(hit);
      throw e;
    }
  })());
});
