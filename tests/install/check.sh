#!/bin/sh
# Installs the build in $1 into a scratch prefix, then builds and runs a
# program outside the tree against it: with pkg-config, and with CMake.
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
cc -o "$scratch/pc" "$here/main.c" $(pkg-config --cflags --libs conc)
echo "pkg-config: $(LD_LIBRARY_PATH=$libdir "$scratch/pc")"

# The README's first program, as a newcomer would copy it.
sed -n '/^```c$/,/^```$/p' "$here/../../README.md" | sed '1d;$d' >"$scratch/first.c"
cc -Wall -Werror -o "$scratch/first" "$scratch/first.c" $(pkg-config --cflags --libs conc)
echo "README:     $(LD_LIBRARY_PATH=$libdir "$scratch/first")"

cmake -S "$here" -B "$scratch/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cm" >/dev/null
echo "cmake:      $(LD_LIBRARY_PATH=$libdir "$scratch/cm/use_conc")"
echo "cmake (static): $("$scratch/cm/use_conc_static")"
