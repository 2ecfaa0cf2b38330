#!/bin/sh
# Every misuse code src/ returns comes with its detail (docs/api.md,
# "Errors"; core/misuse.h): a misuse code — CONC_EINVAL, CONC_EBADF,
# CONC_ESTATE, CONC_EPERM, CONC_EDEADLK, CONC_EBUSY — may be named in code
# only as the code of CONC__MISUSE(...) or conc__misuse_at(...), or in a
# comparison (rc == CONC_EINVAL). Anything else (return CONC_EINVAL;,
# rc = CONC_EBUSY;, busy ? CONC_EBUSY : 0) is a misuse code without its
# detail, unless the line says /* detail set by ... */ (a static helper whose
# public caller sets it) or the line before it tests CONC__OPTS_CHECK (which
# sets it). Comments are not code.
# Prints every offending line and exits 1; exits 0 when all is well.
#   tools/check-misuse-detail.sh [SRC_DIR]    check a tree (default: src)
#   tools/check-misuse-detail.sh --self-test  prove that the check fails on
#                                             planted bare codes and passes
#                                             the allowed forms
set -u

check() { # SRC_DIR
  src=$1
  files=$(cd "$src" && find . -type f \( -name '*.c' -o -name '*.h' \) |
            sed 's|^\./||' | sort)
  [ -n "$files" ] || { echo "misuse-detail: no sources under $src"; return 2; }
  (cd "$src" && awk '
    FNR == 1 { in_comment = 0; prev = ""; fn = "" }
    {
      raw = $0
      line = $0
      # Strings and comments are not code: drop them (the marker is looked
      # for in raw).
      gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
      if (in_comment) {
        if (index(line, "*/") == 0) next
        line = substr(line, index(line, "*/") + 2)
        in_comment = 0
      }
      gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, "", line)
      if (index(line, "/*") > 0) {
        line = substr(line, 1, index(line, "/*") - 1)
        in_comment = 1
      }
      sub(/\/\/.*/, "", line)
      code = line
      # Allowed: the code of a call that records the detail, a comparison, a case label.
      gsub(/(CONC__MISUSE|conc__misuse_at)[ \t]*\([ \t]*\(?CONC_E[A-Z]+/, "", line)
      gsub(/[=!]=[ \t]*CONC_E[A-Z]+/, "", line)
      gsub(/case[ \t]+CONC_E[A-Z]+/, "", line)
      if (line ~ /CONC_(EINVAL|EBADF|ESTATE|EPERM|EDEADLK|EBUSY)([^A-Za-z0-9_]|$)/ &&
          raw !~ /\/\*[ \t]*detail set by/ && prev !~ /CONC__OPTS_CHECK/) {
        printf "src/%s:%d: a misuse code without its detail (core/misuse.h): %s\n", \
          FILENAME, FNR, raw
        bad = 1
      }
      # CONC__MISUSE records __func__: in an internal function it would show
      # the user a conc__ name. A definition starts in column 0.
      if (raw ~ /^[A-Za-z_]/ && raw !~ /;[ \t]*$/ && raw ~ /\(/) {
        if (match(raw, /\([A-Za-z_][A-Za-z_0-9]*\)\(/))   # int(conc_mutex_init_at)(...)
          fn = substr(raw, RSTART + 1, RLENGTH - 3)
        else if (match(raw, /[A-Za-z_][A-Za-z_0-9]*\(/))
          fn = substr(raw, RSTART, RLENGTH - 1)
      }
      if (FILENAME != "core/misuse.h" && code ~ /CONC__(MISUSE|OPTS_CHECK)[ \t]*\(/ &&
          fn !~ /^conc_[a-z]/) {
        printf "src/%s:%d: CONC__MISUSE in %s() would name it, not the public call " \
          "(conc__misuse_at with the public name, or NULL): %s\n", FILENAME, FNR, fn, raw
        bad = 1
      }
      if (code ~ /[^ \t]/)
        prev = code
    }
    END { exit bad }' $files)
}

self_test() {
  tmp=$(mktemp -d) || exit 2
  trap 'rm -rf "$tmp"' EXIT INT TERM
  mkdir -p "$tmp/ok/sync"
  cat >"$tmp/ok/sync/a.c" <<'EOF'
/* Comments may name CONC_EINVAL, CONC_EBUSY
 * and CONC_EPERM freely. */
static int helper(int x)
{
    if (!x)
        return CONC_EINVAL; /* detail set by caller */
    puts("a string may say \"CONC_EBUSY\" too");
    return x == CONC_EBADF ? 1 : 0; // CONC_EPERM in a line comment
}
int conc_f(int *x, const struct opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!x)
        return CONC__MISUSE(CONC_EINVAL, "NULL x");
    if (*x < 0)
        return conc__misuse_at(CONC_EBUSY, NULL, "busy");
    switch (*x) { case CONC_ESTATE: return conc__bad_timeout(); }
    return rc != CONC_EDEADLK ? 0 : CONC__MISUSE(CONC_EDEADLK, "self"); /* CONC_EBUSY */
}
EOF
  check "$tmp/ok" >"$tmp/out" || { echo "self-test: allowed forms were refused:"; cat "$tmp/out"; exit 1; }
  # CONC__MISUSE in an internal helper names the helper.
  rm -rf "$tmp/bad"; mkdir -p "$tmp/bad/sync"
  printf 'static int conc__helper(int *x)\n{\n    if (!x)\n        return CONC__MISUSE(CONC_EINVAL, "NULL x");\n    return 0;\n}\n' \
    >"$tmp/bad/sync/h.c"
  if check "$tmp/bad" >"$tmp/out" || ! grep -q 'src/sync/h.c:4: CONC__MISUSE in conc__helper()' "$tmp/out"; then
    echo "self-test: CONC__MISUSE in an internal function was not caught:"; cat "$tmp/out"; exit 1
  fi
  n=0
  for planted in 'return CONC_EINVAL;' 'return busy ? CONC_EBUSY : 0;' 'rc = CONC_EDEADLK;' \
                 'return CONC_ESTATE ;' 'return (CONC_EPERM);' 'x = 1; /* c */ return CONC_EBADF;'; do
    n=$((n + 1))
    rm -rf "$tmp/bad"; mkdir -p "$tmp/bad/queue"
    cp "$tmp/ok/sync/a.c" "$tmp/bad/queue/a.c"
    printf 'int conc_g(void)\n{\n    %s\n}\n' "$planted" >>"$tmp/bad/queue/a.c"
    if check "$tmp/bad" >"$tmp/out"; then
      echo "self-test: planted '$planted' was not caught"; exit 1
    fi
    grep -q 'src/queue/a.c:2[0-9]:' "$tmp/out" ||
      { echo "self-test: planted '$planted' caught on the wrong line:"; cat "$tmp/out"; exit 1; }
  done
  echo "self-test: the allowed forms pass; $n planted bare codes and CONC__MISUSE in a helper are caught"
}

case ${1:-} in
  --self-test) self_test ;;
  *) check "${1:-src}" && echo "misuse-detail: every misuse code in src/ has its detail" ;;
esac
