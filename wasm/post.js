// post.js: what the JS host needs beyond the exported C functions.
// The pthread pool, so hosts can end idle workers (they keep Node alive); none in the single-thread build.
if (typeof PThread !== 'undefined') Module.PThread = PThread;
// The current wasm memory: views must be made from it afresh, as the heap may have grown.
Module.lfm2Memory = function () { return wasmMemory.buffer; };
