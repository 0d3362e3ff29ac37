#!/usr/bin/env bash
# build.sh: builds the engine.
#   ./build.sh           both builds below
#   ./build.sh wasm      wasm/dist/lfm2.mjs + lfm2.wasm: emcc, SIMD128 + pthreads, ES module for web/worker/node;
#                        wasm/dist/lfm2-st.mjs + lfm2-st.wasm: the same without threads (pages not cross-origin isolated)
#   ./build.sh native    build/native/: the C unit tests with gcc, -fsanitize=address,undefined
#   ./build.sh wasm-tests build/wasm-tests/: the kernel tests as wasm (SIMD kernels vs scalar)
# Installs emscripten with apt when it is missing and we are root; otherwise says what to do.
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-all}
CFLAGS_COMMON=(-std=c11 -Wall -Wextra -Wpedantic -Werror -Isrc -Ikernels)
ENGINE_SRC=(src/*.c kernels/*.c)

need_emcc() {
  if ! command -v emcc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "build.sh: emscripten is missing; installing it with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq emscripten >/dev/null
    else
      echo "build.sh: emcc not found. Install Emscripten first: sudo apt-get install -y emscripten" >&2
      exit 1
    fi
  fi
  # Debian's emcc 3.1.6 needs Debian's node modules (acorn) on NODE_PATH under this Node.
  export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
}

# One emcc link of the engine. $1: output name (wasm/dist/$1.mjs + .wasm); the rest: extra flags.
emcc_engine() {
  local name=$1 exports
  shift
  # every function of the public header, and nothing else
  exports=$(grep -o '\blfm2_[a-z_0-9]*(' src/lfm2.h | tr -d '(' | sed 's/^/_/' | sort -u | paste -sd, -)
  # KQ_EXACT_FMA=0: wasm has no FMA instruction and emulating llama.cpp's fused steps exactly costs
  # 1.6-2.6x kernel time; a rounded multiply + add keeps the logits within the tight tolerance of
  # llama.cpp on every fixture whose rounding is reproducible (tests/conformance.test.mjs).
  emcc "${CFLAGS_COMMON[@]}" -DKQ_EXACT_FMA=0 ${WASM_CFLAGS:-} -Wno-pedantic -O3 -msimd128 "$@" \
    "${ENGINE_SRC[@]}" wasm/*.c -o "wasm/dist/$name.mjs" \
    -sMODULARIZE -sEXPORT_ES6 -sEXPORT_NAME=createLFM2 \
    -sENVIRONMENT=web,worker,node -sALLOW_MEMORY_GROWTH -sMAXIMUM_MEMORY=4GB -sINITIAL_MEMORY=64MB \
    -sTOTAL_STACK=1MB -sWASM_BIGINT -sMALLOC=emmalloc \
    -sEXPORTED_FUNCTIONS="$exports,_lfm2_js_reader,_malloc,_free" \
    -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8 \
    --extern-pre-js wasm/extern-pre.js --pre-js wasm/pre.js --post-js wasm/post.js
}

# Two builds of the same sources, linked side by side (each emcc is mostly one core):
#   lfm2.mjs     SIMD128 + pthreads: Node, and pages that are cross-origin isolated
#   lfm2-st.mjs  SIMD128, one thread, no shared memory: pages that are not (no COOP/COEP headers)
build_wasm() {
  need_emcc
  mkdir -p wasm/dist
  emcc_engine lfm2 -pthread -Wno-pthreads-mem-growth -sPTHREAD_POOL_SIZE='Module["nThreads"]||2' &
  local mt=$!
  emcc_engine lfm2-st &
  local st=$!
  local fail=0
  wait "$mt" || fail=1
  wait "$st" || fail=1
  [ "$fail" = 0 ] || { echo "build.sh: the wasm build failed" >&2; exit 1; }
  # The generated pthread worker is CommonJS inside a "type": "module" package.
  echo '{"type":"commonjs"}' > wasm/dist/package.json
  echo "built wasm/dist/lfm2.mjs ($(stat -c %s wasm/dist/lfm2.wasm) bytes of wasm), lfm2-st.mjs ($(stat -c %s wasm/dist/lfm2-st.wasm) bytes, single thread)"
}

# The kernel tests compiled to wasm, so the SIMD128 kernels are checked against the scalar
# reference where they run (node --no-experimental-fetch build/wasm-tests/test_simd.js).
build_wasm_tests() {
  need_emcc
  mkdir -p build/wasm-tests
  for t in test_simd test_kernels test_attn; do
    emcc -std=c11 -Wall -Wextra -Werror -O2 -msimd128 -DKQ_EXACT_FMA=0 -Ikernels -Itests/c \
      "tests/c/$t.c" kernels/*.c -o "build/wasm-tests/$t.js" -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH
  done
  echo '{"type":"commonjs"}' > build/wasm-tests/package.json
  echo "built build/wasm-tests/: test_simd.js test_kernels.js test_attn.js"
}

build_native() {
  mkdir -p build/native
  local cc=${CC:-gcc}
  local flags=("${CFLAGS_COMMON[@]}" -Itests/c -O1 -g -pthread -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all)
  for t in tests/c/test_*.c; do
    local name
    name=$(basename "$t" .c)
    "$cc" "${flags[@]}" "$t" "${ENGINE_SRC[@]}" -lm -o "build/native/$name"
  done
  echo "built build/native/: $(ls build/native | paste -sd' ' -)"
}

case "$what" in
  wasm) build_wasm ;;
  native) build_native ;;
  wasm-tests) build_wasm_tests ;;
  all) build_native; build_wasm; build_wasm_tests ;;
  *) echo "usage: ./build.sh [all|wasm|native|wasm-tests]" >&2; exit 2 ;;
esac
