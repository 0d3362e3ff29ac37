#!/usr/bin/env bash
# gen-model.sh: builds tests/tools/gen_lfm2moe.c into build/gen_lfm2moe (when missing or stale) and
# runs it with the given arguments: random-weight LFM2-8B-A1B-shaped GGUF files. No npm needed.
#   tests/tools/gen-model.sh -o /tmp/models/lfm2moe-32e-q4_0.gguf                  # full shape, Q4_0
#   tests/tools/gen-model.sh -o /tmp/models/lfm2moe-16e-q8_0.gguf --experts 16 --type q8_0
#   tests/tools/gen-model.sh -o /tmp/small.gguf --layers 4 --experts 8 --embd 256 --vocab 2048
# Options: see the comment at the top of gen_lfm2moe.c, or run with --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build/gen_lfm2moe
src=$root/tests/tools/gen_lfm2moe.c
if [ ! -x "$bin" ] || [ -n "$(find "$src" "$root"/kernels -newer "$bin" -print -quit)" ]; then
  mkdir -p "$root/build"
  # -march=native changes no output bit (-std=c11 keeps FP contraction off); it makes Q8_0 ~25% faster
  build() { "${CC:-gcc}" "$@" -std=c11 -Wall -Wextra -I"$root/kernels" "$src" "$root"/kernels/*.c -lm -lpthread -o "$bin"; }
  build -O3 -march=native 2>/dev/null || build -O2
fi
# the tokenizer and chat template come from a fixture unless --template-from is given (last wins)
exec "$bin" --template-from "$root/tests/fixtures/models/tiny-f32.gguf" "$@"
