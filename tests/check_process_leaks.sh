#!/bin/sh
# No process of the tests outlives them: after the suite, no process whose
# program is one of the build's tests or examples may still run — a fork
# server whose program ended, a function's child that escaped its death
# signal, a test's helper. (A program a test started, /bin/sleep say, is not
# the build's, and is not seen here: the tests reap theirs.)
# A fork server ends a moment after its program (it notices through the
# program's pidfd), so the check waits up to GRACE seconds for them to go;
# what is left then is named, killed (so that one leak does not fail the
# next run too), and fails the check.
#   tests/check_process_leaks.sh BUILD_DIR     check the processes
#   tests/check_process_leaks.sh --self-test   prove that the check fails on
#                                              a planted process and kills it
set -u

# The processes whose program is under $1/tests or $1/examples.
under() { # DIR
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$$" ] && continue
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case $exe in "$1"/tests/* | "$1"/examples/*) echo "$pid $exe" ;; esac
  done
}

check() { # DIR GRACE_TENTHS
  tries=$2
  while [ "$tries" -gt 0 ] && [ -n "$(under "$1")" ]; do
    sleep 0.1
    tries=$((tries - 1))
  done
  left=$(under "$1")
  [ -z "$left" ] && return 0
  echo "$left" | while read -r pid exe; do
    echo "still running: pid $pid, $exe ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
    kill -9 "$pid" 2>/dev/null
  done
  return 1
}

self_test() {
  dir=$(mktemp -d) || return 1
  mkdir "$dir/tests" && cp /bin/sleep "$dir/tests/planted" || { rm -rf "$dir"; return 1; }
  "$dir/tests/planted" 30 &
  planted=$!
  out=$(check "$dir" 2) && { echo "self-test: a planted process passed"; kill -9 $planted; rm -rf "$dir"; return 1; }
  wait $planted 2>/dev/null
  echo "$out" | grep -q "pid $planted" || { echo "self-test: not named: $out"; rm -rf "$dir"; return 1; }
  kill -0 $planted 2>/dev/null && { echo "self-test: the planted process was not killed"; kill -9 $planted; rm -rf "$dir"; return 1; }
  check "$dir" 2 || { echo "self-test: no process failed"; rm -rf "$dir"; return 1; }
  rm -rf "$dir"
  echo "self-test: a planted process is named, killed and fails the check"
}

case ${1:-} in
  --self-test) self_test ;;
  "") echo "usage: $0 BUILD_DIR | --self-test"; exit 2 ;;
  *) check "$1" 50 && echo "processes: none left running from $1" ;;
esac
