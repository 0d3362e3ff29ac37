// extern-pre.js: Emscripten 3.1.6's ES-module output still refers to require and __dirname when it
// runs under Node; define them there (browsers skip this block).
if (typeof process === 'object' && process.versions && process.versions.node) {
  const { createRequire } = await import('module');
  const { fileURLToPath } = await import('url');
  const { dirname } = await import('path');
  globalThis.require = globalThis.require || createRequire(import.meta.url);
  globalThis.__dirname = globalThis.__dirname || dirname(fileURLToPath(import.meta.url));
}
