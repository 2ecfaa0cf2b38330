#!/bin/sh
# What the diagnostics' hooks cost while every diagnostic is off, counted in
# instructions (wall time is too noisy for 2%): the same lock/unlock loops
# built against libconc with the hooks (the default) and without them
# (-DCONC_NO_DIAG=ON), each run under callgrind; prints instructions per
# iteration and the ratio. Needs valgrind. Usage: bench/callgrind_diag.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/conc-callgrind-diag
mkdir -p "$work"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
for v in hooks nohooks; do
  flag=OFF; [ "$v" = nohooks ] && flag=ON
  cmake -S "$root" -B "$work/$v" -DCMAKE_BUILD_TYPE=Release -DCONC_BUILD_TESTS=OFF \
        -DCONC_NO_DIAG=$flag >/dev/null
  cmake --build "$work/$v" --target conc_static -j2 -- --no-print-directory >/dev/null
  cc -O2 -I"$root/include" "$root/bench/callgrind_diag.c" "$work/$v/libconc.a" -lpthread \
     -o "$work/$v/loop"
done
n=2000000
for loop in single nested; do
  for v in hooks nohooks; do
    valgrind --tool=callgrind --callgrind-out-file="$work/$v.$loop.out" \
             "$work/$v/loop" "$loop" 0 >/dev/null 2>&1
    valgrind --tool=callgrind --callgrind-out-file="$work/$v.$loop.big" \
             "$work/$v/loop" "$loop" $n >/dev/null 2>&1
    # Instructions per iteration: the difference of two runs removes start-up.
    small=$(callgrind_annotate "$work/$v.$loop.out" | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
    big=$(callgrind_annotate "$work/$v.$loop.big" | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
    eval "${v}_$loop=\$(( (big - small) / n ))"
  done
  eval "h=\$hooks_$loop; b=\$nohooks_$loop"
  awk -v l="$loop" -v h="$h" -v b="$b" \
      'BEGIN { printf "%-7s lock+unlock: %d instructions with the hooks off, %d without them: %+.1f%%\n", l, h, b, (h - b) * 100 / b }'
done
