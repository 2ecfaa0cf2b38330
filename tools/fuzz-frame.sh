#!/bin/sh
# Builds and runs the frame decoder's libFuzzer target (fuzz/fuzz_frame.c)
# with clang -fsanitize=fuzzer,address,undefined: the library itself is
# built with gcc, so the target compiles src/process/frame.c on its own
# (the decoder is pure: it needs nothing else).
#   tools/fuzz-frame.sh [SECONDS] [OUT_DIR]
# SECONDS defaults to $FUZZ_SECONDS, else 10; OUT_DIR to build/fuzz. The
# corpus grows in OUT_DIR/corpus-frame and is reused by the next run.
# Exits 77 (skipped) when clang or libFuzzer is missing, 1 on a finding.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-${FUZZ_SECONDS:-10}}
out=${2:-$root/build/fuzz}
CLANG=${CLANG:-clang}
mkdir -p "$out/corpus-frame"
if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "fuzz-frame: $CLANG not found: skipped"; exit 77
fi
probe=$out/probe.c
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer "$probe" -o "$out/probe" >/dev/null 2>&1; then
  echo "fuzz-frame: $CLANG cannot link -fsanitize=fuzzer (libFuzzer missing): skipped"; exit 77
fi
"$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$root/src" "$root/src/process/frame.c" "$root/fuzz/fuzz_frame.c" -o "$out/fuzz_frame"
# A seed: a valid header for 5 bytes after a max of 1000.
[ -n "$(ls "$out/corpus-frame")" ] ||
  printf '\350\003\0\0\0\0\0\0cnCP\001\0\0\0\005\0\0\0\0\0\0\0hello' >"$out/corpus-frame/seed"
exec "$out/fuzz_frame" -max_total_time="$secs" -max_len=64 -print_final_stats=1 \
  "$out/corpus-frame"
