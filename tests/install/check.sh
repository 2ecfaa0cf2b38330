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

cmake -S "$here" -B "$scratch/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cm" >/dev/null
echo "cmake:      $("$scratch/cm/use_conc")"
echo "cmake (static): $("$scratch/cm/use_conc_static")"
