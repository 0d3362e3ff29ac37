// pre.js: runs inside the Emscripten module. Holds the JS side of the engine's read callback:
// readers registered by handle, each {read(dst, offset, len)} writing straight into wasm memory.
Module.lfm2Readers = Module.lfm2Readers || new Map();
Module.lfm2Read = function (handle, offset, len, dst) {
  var r = Module.lfm2Readers.get(handle);
  if (!r) return 1;
  try {
    var view = new Uint8Array(wasmMemory.buffer, dst >>> 0, len); // pointers past 2 GiB arrive negative
    return r(view, offset) === len ? 0 : 1;
  } catch (e) {
    return 1;
  }
};
// Under Node, load the .wasm from disk ourselves: Node's global fetch cannot read a file path.
if (typeof process === 'object' && typeof process.versions === 'object' && process.versions.node &&
    !Module.wasmBinary && typeof _scriptDir === 'string') {
  Module.wasmBinary = require('fs').readFileSync(new URL(_scriptDir.replace(/\.mjs([?#].*)?$/, '.wasm'))); // lfm2[-st].wasm
}
