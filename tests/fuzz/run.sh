#!/bin/sh
# Build and run the GGUF reader fuzzer (libFuzzer + ASan + UBSan).
#
# Usage (from anywhere): tests/fuzz/run.sh [max_total_time_seconds=600] [extra libFuzzer args...]
#
# Needs clang with libFuzzer's runtime (on Debian/Ubuntu: the clang-14 package ships
# libclang_rt.fuzzer*; otherwise `apt-get install -y libclang-rt-14-dev` or the matching
# libclang-rt-N-dev). Override the compiler with CC=clang-15 etc.
#
# Seeds: the header (first 64 KiB) of every fixture in tests/fixtures/models; the target also
# opens each input as the start of a 16 MiB zero-padded file, so headers alone open successfully.
# Crashes are written to $FUZZ_ARTIFACTS (default /tmp/lfm2_fuzz_artifacts/, crash-<sha1>);
# reproduce with `/tmp/lfm2_fuzz_gguf /tmp/lfm2_fuzz_artifacts/crash-...`.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TIME=${1:-600}
[ $# -gt 0 ] && shift
CC=${CC:-clang}
BIN=${FUZZ_BIN:-/tmp/lfm2_fuzz_gguf}
ART=${FUZZ_ARTIFACTS:-/tmp/lfm2_fuzz_artifacts/}

cd "$ROOT"
if ! echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}' |
    $CC -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    echo "run.sh: $CC cannot link -fsanitize=fuzzer; install libFuzzer (e.g. apt-get install -y libclang-rt-14-dev)" >&2
    exit 2
fi

$CC -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Isrc -Ikernels tests/fuzz/fuzz_gguf.c src/gguf.c src/status.c kernels/*.c -lm -o "$BIN"

CORPUS=$(mktemp -d /tmp/lfm2_fuzz_corpus.XXXXXX)
trap 'rm -rf "$CORPUS"' EXIT
for f in tests/fixtures/models/*.gguf; do
    [ -f "$f" ] && head -c 65536 "$f" > "$CORPUS/$(basename "$f" .gguf).seed"
done
mkdir -p "$ART"

"$BIN" "$CORPUS" -max_total_time="$TIME" -max_len=131072 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$ART" "$@"
