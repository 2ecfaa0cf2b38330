#!/bin/sh
# Every symbol the shared library defines for others must be conc_-prefixed
# and none of its symbols may be a test hook:
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
# Test hooks (CONC_TEST_HOOKS) are compiled into the tests' library only.
hooks=$(nm "$lib" 2>/dev/null | awk '{print $NF}' | grep '^conc__test_' || true)
if [ -n "$hooks" ]; then
  echo "test hooks in the shipped library:"; printf '%s\n' "$hooks"; exit 1
fi
