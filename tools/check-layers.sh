#!/bin/sh
# The include-direction check of src/ (docs/architecture.md, "Layers").
#
# Every folder of src/ is a layer; a file may include headers of its own
# layer and of the layers the table below lists for it, nothing else (public
# headers, "conc/...", and system headers, <...>, are always allowed). The
# table itself must be acyclic, and so must the graph of file includes.
# Prints every offending line and exits 1; exits 0 when all is well.
#   tools/check-layers.sh [SRC_DIR]     check a tree (default: src)
#   tools/check-layers.sh --self-test   prove that the check fails on a
#                                       planted upward include and on a cycle
set -u

# layer        may include (besides itself)
RULES='
arch           -
core           arch
wait           core arch
diag           wait core arch
sync           wait core arch
thread         sync wait core arch
queue          sync wait core arch
exec           thread sync wait core arch
exec/pool      exec queue thread sync wait core arch
exec/procpool  exec process thread sync wait core arch
process        sync wait core arch
aio            core arch
'

check() { # SRC_DIR
  src=$1
  tmp=$(mktemp -d) || exit 2
  trap 'rm -rf "$tmp"' EXIT INT TERM
  bad=0
  # The layer table: acyclic, and every folder of src/ is in it.
  printf '%s\n' "$RULES" | awk 'NF >= 2 { for (i = 2; i <= NF; i++) if ($i != "-") print $1, $i }' \
    >"$tmp/layer-edges"
  if ! tsort "$tmp/layer-edges" >/dev/null 2>"$tmp/tsort"; then
    echo "layers: the rule table has a cycle:"; cat "$tmp/tsort"; bad=1
  fi
  (cd "$src" && find . -type f \( -name '*.c' -o -name '*.h' \) | sed 's|^\./||' | sort) \
    >"$tmp/files"
  for dir in $(sed -n 's|/[^/]*$||p' "$tmp/files" | sort -u); do
    printf '%s\n' "$RULES" | awk -v d="$dir" '$1 == d { found = 1 } END { exit !found }' ||
      { echo "layers: src/$dir is not in the rule table (tools/check-layers.sh)"; bad=1; }
  done
  while read -r file; do
    case $file in */*) layer=${file%/*} ;; *) layer=. ;; esac
    allowed=$(printf '%s\n' "$RULES" | awk -v d="$layer" '$1 == d { $1 = ""; print }')
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$src/$file" |
      sed 's|^\([0-9]*\):.*"\(.*\)".*|\1 \2|' >"$tmp/incs"
    while read -r line inc; do
      case $inc in conc/*) continue ;; esac
      case $inc in */*) to=${inc%/*} ;; *) to=. ;; esac
      if [ ! -f "$src/$inc" ]; then
        echo "src/$file:$line: #include \"$inc\": no such file under src/ (name headers by their folder)"
        bad=1; continue
      fi
      echo "$file $inc" >>"$tmp/file-edges"
      [ "$to" = "$layer" ] && continue
      case " $allowed " in
        *" $to "*) ;;
        *) echo "src/$file:$line: #include \"$inc\": layer '$layer' may not include '$to'" \
                "(allowed: $(echo $allowed))"
           bad=1 ;;
      esac
    done <"$tmp/incs"
  done <"$tmp/files"
  if [ -s "$tmp/file-edges" ] && ! tsort "$tmp/file-edges" >/dev/null 2>"$tmp/tsort"; then
    echo "layers: the includes form a cycle:"; cat "$tmp/tsort"; bad=1
  fi
  rm -rf "$tmp"
  trap - EXIT INT TERM
  return $bad
}

self_test() {
  here=$(cd "$(dirname "$0")/.." && pwd)
  work=$(mktemp -d) || exit 2
  fail=0
  cp -r "$here/src" "$work/ok"
  check "$work/ok" >/dev/null || { echo "self-test: the tree itself fails the check"; fail=1; }
  # An upward include: the bottom layer reaching for the pool.
  cp -r "$here/src" "$work/up"
  printf '#include "exec/pool/pool_impl.h"\n' >>"$work/up/core/deadline.h"
  out=$(check "$work/up") && { echo "self-test: a planted upward include passed"; fail=1; }
  echo "$out" | grep -q "layer 'core' may not include 'exec/pool'" ||
    { echo "self-test: the upward include was not named: $out"; fail=1; }
  # A cycle inside one layer.
  cp -r "$here/src" "$work/cycle"
  printf '#include "wait/cycle_b.h"\n' >"$work/cycle/wait/cycle_a.h"
  printf '#include "wait/cycle_a.h"\n' >"$work/cycle/wait/cycle_b.h"
  out=$(check "$work/cycle") && { echo "self-test: a planted include cycle passed"; fail=1; }
  echo "$out" | grep -q "cycle" || { echo "self-test: the cycle was not reported: $out"; fail=1; }
  rm -rf "$work"
  [ $fail -eq 0 ] && echo "self-test: the check fails on a planted upward include and on a cycle"
  return $fail
}

case ${1:-} in
  --self-test) self_test ;;
  *) check "${1:-$(dirname "$0")/../src}" && echo "layers: every include of src/ goes down" ;;
esac
