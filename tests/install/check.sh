#!/bin/sh
# Installs the build in $1 into a scratch prefix (not a system path), then
# builds and runs a program outside the tree against it as the README says:
# with pkg-config and an rpath, and with CMake. Nothing here sets
# LD_LIBRARY_PATH: the README's lines must work without it.
set -eu
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name conc.pc)")/..

PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
rpath="-Wl,-rpath,$(pkg-config --variable=libdir conc)"
cc -o "$scratch/pc" "$here/main.c" $(pkg-config --cflags --libs conc) $rpath
echo "pkg-config: $("$scratch/pc")"

# The README's first program, as a newcomer would copy it, built with the
# README's line for a prefix of one's own.
readme=$here/../../README.md
sed -n '/^```c$/,/^```$/p' "$readme" | sed '1d;$d' >"$scratch/first.c"
grep -q 'cc prog.c $(pkg-config --cflags --libs conc) -Wl,-rpath,$(pkg-config --variable=libdir conc)' \
  "$readme" || { echo "README: the build line for a prefix of one's own is not the one tested"; exit 1; }
(cd "$scratch" && cp first.c prog.c &&
  cc -Wall -Werror prog.c $(pkg-config --cflags --libs conc) -Wl,-rpath,$(pkg-config --variable=libdir conc) &&
  echo "README:     $(./a.out)")

# A program built with ThreadSanitizer: clean against libconc-tsan, reported
# against the plain libconc (TSan cannot see synchronisation it did not
# instrument), which is why libconc-tsan exists.
pkg-config --exists conc-tsan || { echo "libconc-tsan: not installed (conc-tsan.pc)"; exit 1; }
{
  tsan_flags="$(pkg-config --variable=libdir conc-tsan)"
  cc -g -o "$scratch/tsan_ok" "$here/tsan_user.c" $(pkg-config --cflags --libs conc-tsan) \
    -Wl,-rpath,"$tsan_flags"
  TSAN_OPTIONS=halt_on_error=1 "$scratch/tsan_ok" >"$scratch/tsan_ok.out" 2>&1 ||
    { cat "$scratch/tsan_ok.out"; echo "libconc-tsan: a TSan-built program is not clean"; exit 1; }
  echo "libconc-tsan: $(cat "$scratch/tsan_ok.out"), no report"
  cc -g -fsanitize=thread -o "$scratch/tsan_plain" "$here/tsan_user.c" \
    $(pkg-config --cflags --libs conc) $rpath
  if TSAN_OPTIONS=halt_on_error=0 "$scratch/tsan_plain" >"$scratch/tsan_plain.out" 2>&1 ||
     ! grep -q "WARNING: ThreadSanitizer" "$scratch/tsan_plain.out"; then
    echo "plain libconc: the same program was expected to be reported"; exit 1
  fi
  echo "plain libconc: reported ($(grep -c 'WARNING: ThreadSanitizer' "$scratch/tsan_plain.out") TSan warnings), as expected"
}

cmake -S "$here" -B "$scratch/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cm" >/dev/null
echo "cmake:      $("$scratch/cm/use_conc")"
echo "cmake (static): $("$scratch/cm/use_conc_static")"
