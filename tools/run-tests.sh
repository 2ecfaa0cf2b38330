#!/bin/sh
# `make test`: the suite in three builds — optimised, ThreadSanitizer,
# AddressSanitizer+UBSan — plus the install check in the optimised one. Prints
# the wall time of every step and ends with ctest's summary lines.
# The optimised and ASan builds use gcc (build/release, build/asan); the TSan
# build uses clang (build/tsan-clang: its own folder, since CMake cannot switch
# the compiler of an existing build; gcc's TSan cannot start a thread in the
# child of a multi-threaded fork, and counts every fiber as a thread).
#   tools/run-tests.sh            all variants
#   VARIANTS="release" tools/run-tests.sh
#   CONC_TEST_SCALE=10 tools/run-tests.sh   (make stress)
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
variants=${VARIANTS:-"release tsan asan"}
jobs=${JOBS:-2}
times=""
summaries=""
failed=0

step() { # step NAME COMMAND...: runs it, records its wall time
  name=$1; shift
  t0=$(date +%s.%N)
  "$@"; rc=$?
  t=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
  times="$times$(printf '  %-22s %6.1f s%s' "$name" "$t" "$([ $rc -eq 0 ] || echo '  FAILED')")
"
  return $rc
}

configure_build() { # dir sanitizer [cmake options...]
  bdir=build/$1 bsan=$2; shift 2
  cmake -S "$top" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONC_SANITIZE="$bsan" \
    -DCONC_WERROR=ON -DCONC_TEST_SCALE="${CONC_TEST_SCALE:-}" "$@" >/dev/null &&
    cmake --build "$bdir" -j"$jobs" -- --no-print-directory >/dev/null
}

run_ctest() { # variant dir
  ctest --test-dir "build/$2" -j"$jobs" --output-on-failure --timeout 900 >"build/$2/ctest.log" 2>&1
  rc=$?
  grep -E "tests passed|tests failed|The following tests|^\s+[0-9]+ - " "build/$2/ctest.log" | tail -n 20
  summaries="$summaries$(printf '%-8s %s' "$1:" "$(grep -E 'tests passed' "build/$2/ctest.log" || echo 'ctest did not finish')")
"
  # The names of the failed tests go into the summary too: the last lines
  # are what a CI log shows.
  failures=$(sed -n '/The following tests FAILED/,$p' "build/$2/ctest.log" | grep -E '^\s+[0-9]+ - ' |
    sed 's/^\s*[0-9]* - /  /')
  [ -z "$failures" ] || summaries="$summaries$failures
"
  [ $rc -eq 0 ] || { tail -n 60 "build/$2/ctest.log"; return $rc; }
}

step "apt (if missing)" tools/install-deps.sh test || exit 1
for v in $variants; do
  dir=$v cc=""
  case $v in
    release) san="" ;;
    tsan) san=thread dir=tsan-clang cc=clang ;;
    asan) san=address ;;
    *) echo "unknown variant $v"; exit 2 ;;
  esac
  echo "== $v: build"
  step "$v build" configure_build "$dir" "$san" ${cc:+-DCMAKE_C_COMPILER=$cc} ||
    { failed=1; continue; }
  echo "== $v: tests"
  step "$v tests" run_ctest "$v" "$dir" || failed=1
  if [ "$v" = release ]; then
    echo "== install check"
    step "install check" tests/install/check.sh "build/release" || failed=1
  fi
done
echo
echo "step times:"
printf '%s' "$times"
echo
printf '%s' "$summaries"
exit $failed
