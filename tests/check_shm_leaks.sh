#!/bin/sh
# No shared memory segment of the tests outlives them: every named segment a
# test makes starts with PREFIX (CONC_TEST_SHM_PREFIX, one per build folder,
# after conc's kind prefix for a named mutex or semaphore,
# tests/CMakeLists.txt), and after the tests nothing with it may be left in
# /dev/shm. Each one found is named and removed (so that one leak does not
# fail the next run too), and the check fails.
#   tests/check_shm_leaks.sh PREFIX       check /dev/shm
#   tests/check_shm_leaks.sh --self-test  prove that the check fails on a
#                                         planted segment and removes it
set -u

check() { # PREFIX
  bad=0
  # conc's own objects put a kind before the name: conc.mutex.NAME, conc.sem.NAME
  for f in /dev/shm/"$1"* /dev/shm/conc.*."$1"*; do
    [ -e "$f" ] || continue
    echo "left in /dev/shm: ${f#/dev/shm/}"
    rm -f "$f"
    bad=1
  done
  return $bad
}

self_test() {
  prefix="conc-selftest-$$-"
  planted="/dev/shm/${prefix}planted"
  : >"$planted" || { echo "self-test: cannot write to /dev/shm"; return 1; }
  out=$(check "$prefix") && { echo "self-test: a planted segment passed"; rm -f "$planted"; return 1; }
  echo "$out" | grep -q "${prefix}planted" || { echo "self-test: not named: $out"; return 1; }
  [ ! -e "$planted" ] || { echo "self-test: the planted segment was not removed"; rm -f "$planted"; return 1; }
  check "$prefix" || { echo "self-test: a clean /dev/shm failed"; return 1; }
  echo "self-test: a planted segment is named, removed and fails the check"
}

case ${1:-} in
  --self-test) self_test ;;
  "") echo "usage: $0 PREFIX | --self-test"; exit 2 ;;
  *) check "$1" && echo "shm: no segment named $1* left in /dev/shm" ;;
esac
