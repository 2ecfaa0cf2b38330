#!/bin/sh
# The coroutine core on aarch64: the library cross-compiled with Debian's
# gcc-aarch64-linux-gnu, and tests/test_coro.c run under qemu-user, each
# test in its own process, twice: on the hand-written switch
# (src/arch/ctx_aarch64.S) and on the ucontext fallback. The tests use
# cmocka's calls; the target's cmocka is not installed, so the few they
# need come from tests/cross/cmocka.h.
#   tools/test-aarch64.sh [OUT_DIR]      (make test-aarch64; a ctest of the
#                                         optimised build, coro.aarch64_qemu)
# OUT_DIR defaults to build/aarch64. Installs the cross compiler and qemu
# when missing (tools/install-deps.sh aarch64); exits 77 (skipped) when
# they are missing and cannot be installed, 1 when a test fails.
# CONC_TEST_SCALE sizes the tests (default 0.2: qemu is slow); JOBS the
# parallel compiles (default 2).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/aarch64}
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}
SYSROOT=${CROSS_SYSROOT:-/usr/aarch64-linux-gnu}
jobs=${JOBS:-2}
scale=${CONC_TEST_SCALE:-0.2}

have_tools() { command -v "$CC" >/dev/null 2>&1 && command -v "$QEMU" >/dev/null 2>&1 &&
               [ -d "$SYSROOT/lib" ]; }
if ! have_tools; then
  "$root/tools/install-deps.sh" aarch64 >&2 || true
  have_tools || { echo "test-aarch64: $CC or $QEMU missing and not installable: skipped"; exit 77; }
fi

# The library's sources, as CMakeLists.txt lists them; those of the
# coroutines are built once per switch, the rest once.
sources=$(sed -n '/^set(CONC_SOURCES/,/^)/s|^ *\(src/[^ )]*\).*|\1|p' "$root/CMakeLists.txt")
coro_sources=$(printf '%s\n' $sources | grep -E '^src/(aio/|arch/ctx)')
common_sources=$(printf '%s\n' $sources | grep -vE '^src/(aio/|arch/ctx)')
[ -n "$coro_sources" ] && [ -n "$common_sources" ] ||
  { echo "test-aarch64: no sources found in CMakeLists.txt"; exit 1; }
CFLAGS="-std=gnu11 -O2 -pthread -Wall -Wextra -Wshadow -Wstrict-prototypes
        -Wno-missing-field-initializers -Werror -fvisibility=hidden -DCONC_TEST_HOOKS
        -I$root/include -I$root/src"

compile() { # OBJ_DIR EXTRA_FLAGS SOURCE...: objects, $jobs at a time
  dir=$1 extra=$2; shift 2
  mkdir -p "$dir"
  printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c \
    'o="$1/$(echo "$2" | tr / _).o"; [ "$o" -nt "$3/$2" ] || exec $4 $5 $6 -c "$3/$2" -o "$o"' \
    sh "$dir" {} "$root" "$CC" "$CFLAGS" "$extra"
}

echo "test-aarch64: compiling the library for aarch64 ($($CC -dumpversion))"
compile "$out/common" "" $common_sources
failed=0
for variant in asm ucontext; do
  flags="" name="the hand-written switch"
  [ $variant = ucontext ] && flags="-DCONC_CTX_UCONTEXT" name="the ucontext switch"
  compile "$out/$variant" "$flags" $coro_sources
  $CC $CFLAGS $flags -I"$root/tests/cross" -I"$root/tests" "$root/tests/test_coro.c" \
    "$out/common"/*.o "$out/$variant"/*.o -lm -o "$out/test_coro_$variant"
  tests=$(sed -n 's/.*cmocka_unit_test(\([A-Za-z0-9_]*\)).*/\1/p' "$root/tests/test_coro.c")
  pass=0 fail=0
  for t in $tests; do
    if CONC_TEST_SCALE=$scale QEMU_LD_PREFIX=$SYSROOT timeout 300 \
         "$QEMU" "$out/test_coro_$variant" "$t" >"$out/$variant-$t.log" 2>&1; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1)); failed=1
      echo "FAILED: aarch64 $variant: $t"; tail -n 20 "$out/$variant-$t.log"
    fi
  done
  echo "test-aarch64: $name: $pass passed, $fail failed"
done
exit $failed
