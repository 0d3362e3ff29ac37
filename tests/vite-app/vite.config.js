// vite.config.js: what an app bundling lfm2-wasm with Vite needs (tests/vite.test.mjs builds this
// app against the packed tarball and runs it in Chromium).
//
// - Nothing for the worker and wasm URLs: the package spells them as bundlers expect,
//     new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })   (web/index.js)
//     new URL('../wasm/dist/lfm2.{mjs,wasm,worker.js}', import.meta.url)      (web/engine.js)
//     new URL('../wasm/dist/lfm2-st.{mjs,wasm}', import.meta.url)             (the single-thread build)
//   so Vite bundles the engine worker (web/worker.js and its imports) and copies the Emscripten
//   files to dist/assets/ as they are, under hashed names (the small pthread worker lfm2.worker.js
//   gets inlined as a data: URL, which the engine turns into a blob: URL). No assetsInclude: .wasm
//   is one of Vite's asset types already. No plugin (vite-plugin-wasm etc.) either.
// - worker.format 'es' (optional): the engine worker is a module worker with a dynamic import;
//   Vite 7 and 8 also bundle it with their default 'iife' worker format (the import is inlined),
//   'es' keeps the code split as the package has it.
// - optimizeDeps.exclude (dev server only): keeps esbuild's/rolldown's pre-bundling away from the
//   package, whose files must stay where their new URL(..., import.meta.url) point.
// - Cross-origin isolation: the engine's threads need SharedArrayBuffer, so the page must be served
//   with COOP/COEP for threads. Vite's dev server and `vite preview` get the headers below; set the
//   same two headers on whatever serves dist/ in production. Without them the engine runs its
//   single-thread build (slower, same answers).
import { defineConfig } from 'vite';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['lfm2-wasm'] },
  server: { headers: isolation },
  preview: { headers: isolation },
});
