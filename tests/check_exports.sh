#!/bin/sh
# Every symbol the shared library defines for others must be conc_-prefixed:
# -fvisibility=hidden with CONC_API on the public declarations only.
set -eu
lib=$1
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$symbols" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$symbols" | grep -v '^conc_' || true)
if [ -n "$bad" ]; then
  echo "exported symbols without the conc_ prefix:"; printf '%s\n' "$bad"; exit 1
fi
echo "$(printf '%s\n' "$symbols" | wc -l) exported symbols, all conc_"
