/* read_js.c: the read callback of the wasm build. The engine calls it with a reader handle; the
 * JS side (wasm/pre.js: Module.lfm2Readers) copies the bytes into wasm memory synchronously, from
 * a Node file descriptor, an OPFS sync access handle or a Blob through FileReaderSync. */
#include <emscripten.h>
#include <stdint.h>

#include "lfm2.h"

EM_JS(int, lfm2_js_read, (int handle, double offset, double len, void *dst), {
    return Module.lfm2Read(handle, offset, len, dst);
});

static int read_js(void *ctx, uint64_t offset, size_t len, void *dst) {
    return lfm2_js_read((int)(intptr_t)ctx, (double)offset, (double)len, dst);
}

/* The callback to pass to lfm2_model_open from JS, with the reader handle as its ctx. */
EMSCRIPTEN_KEEPALIVE lfm2_read_fn lfm2_js_reader(void) { return read_js; }
