#!/bin/sh
# run_programs.sh MODE -- the tinylisp differential test.
#
# Runs every examples/tinylisp/programs/NAME.scm that has a NAME.out and
# compares its stdout with NAME.out, byte for byte:
#   gcheap   $BUILD/tinylisp        (gcheap, environment as given)
#   torture  $BUILD/tinylisp with GCHEAP_TORTURE=100: a collection every
#            100 allocations.  A program whose live heap makes that too
#            slow names a larger interval in a line
#            ";; torture-interval: N" (it still runs, collecting every N).
#   concurrent  $BUILD/tinylisp with GCHEAP_MODE=concurrent and
#            GCHEAP_DEBUG=checkmark: marking runs beside the interpreter
#            and every cycle is re-checked with the world stopped
#   boehm    $BUILD/tinylisp-boehm  (the same interpreter on Boehm GC)
# Then checks the command-line modes (-e, the REPL on stdin, an error exit).
#
# Run from the repository root.  BUILD names the build directory (default
# build); LISP_TIMEOUT bounds each run in seconds (default 300);
# LISP_PROGRAMS=a,b,... runs only those programs (default all).  Prints
# one line per program (name, OK / FAIL / SKIP, milliseconds) and exits 0
# only if every program matched.  SKIP: only for a program that needs
# weak references or finalizers in a gcheap build that lacks them.

mode=${1:-}
build=${BUILD:-build}
limit=${LISP_TIMEOUT:-300}
dir=examples/tinylisp/programs

case $mode in
  gcheap|torture|concurrent) bin=$build/tinylisp ;;
  boehm) bin=$build/tinylisp-boehm ;;
  *) echo "usage: $0 gcheap|torture|concurrent|boehm" >&2; exit 2 ;;
esac
if [ ! -x "$bin" ]; then
  echo "$0: $bin is not built (make $bin)" >&2
  exit 2
fi

tmp=${TMPDIR:-/tmp}/tinylisp-test.$$
mkdir -p "$tmp" || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

pass=0
fail=0
skip=0
failed=""

report() { # name status ms
  printf '%-16s %-4s %8d ms\n' "$1" "$2" "$3"
  case $2 in
    OK) pass=$((pass + 1)) ;;
    SKIP) skip=$((skip + 1)) ;;
    *) fail=$((fail + 1)); failed="$failed $1" ;;
  esac
}

show_failure() { # expected actual stderr
  echo "    --- diff (expected, actual):"
  diff "$1" "$2" | head -n 15 | sed 's/^/    /'
  if [ -s "$3" ]; then
    echo "    --- stderr:"
    tail -n 10 "$3" | sed 's/^/    /'
  fi
}

for scm in "$dir"/*.scm; do
  name=$(basename "$scm" .scm)
  case ",${LISP_PROGRAMS:-$name}," in *",$name,"*) ;; *) continue ;; esac
  expected=$dir/$name.out
  [ -f "$expected" ] || continue
  interval=100
  if [ "$mode" = torture ]; then
    n=$(sed -n 's/^;; *torture-interval: *\([0-9][0-9]*\).*/\1/p' "$scm" | head -n 1)
    [ -n "$n" ] && interval=$n
  fi
  start=$(now_ms)
  if [ "$mode" = torture ]; then
    GCHEAP_TORTURE=$interval timeout "$limit" "$bin" "$scm" >"$tmp/out" 2>"$tmp/err"
  elif [ "$mode" = concurrent ]; then
    GCHEAP_MODE=concurrent GCHEAP_DEBUG=checkmark timeout "$limit" "$bin" "$scm" \
      >"$tmp/out" 2>"$tmp/err"
  else
    timeout "$limit" "$bin" "$scm" >"$tmp/out" 2>"$tmp/err"
  fi
  rc=$?
  ms=$(( $(now_ms) - start ))
  if [ $rc -eq 0 ] && cmp -s "$expected" "$tmp/out"; then
    report "$name" OK "$ms"
  elif [ "$mode" != boehm ] && grep -q "not supported in this build" "$tmp/err"; then
    report "$name" SKIP "$ms"
  else
    report "$name" FAIL "$ms"
    [ $rc -eq 124 ] && echo "    timed out after $limit s"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "    exit status $rc"
    show_failure "$expected" "$tmp/out" "$tmp/err"
  fi
done

# Command-line modes: -e prints values; the REPL recovers from an error
# and goes on; a file with an error exits 1 with a message on stderr.
env_run() {
  if [ "$mode" = torture ]; then GCHEAP_TORTURE=1 "$@"; else "$@"; fi
}

start=$(now_ms)
env_run "$bin" -e '(define (sq x) (* x x)) (map sq (list 1 2 3)) "s" (if #f #f)' \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
printf '(1 4 9)\n"s"\n' >"$tmp/exp"
if [ $rc -eq 0 ] && cmp -s "$tmp/exp" "$tmp/out"; then
  report "cli-eval" OK $(( $(now_ms) - start ))
else
  report "cli-eval" FAIL $(( $(now_ms) - start ))
  show_failure "$tmp/exp" "$tmp/out" "$tmp/err"
fi

start=$(now_ms)
printf '%s\n' '(define x 5)' '(car (quote ()))' '(+ x' '  1)' \
  '(undefined-variable)' '"still here"' '(gc) (length (list 1 2 3))' |
  env_run "$bin" >"$tmp/out" 2>"$tmp/err"
rc=$?
printf '6\n"still here"\n3\n' >"$tmp/exp"
if [ $rc -eq 0 ] && cmp -s "$tmp/exp" "$tmp/out" &&
   [ "$(grep -c '^error:' "$tmp/err")" -eq 2 ]; then
  report "cli-repl" OK $(( $(now_ms) - start ))
else
  report "cli-repl" FAIL $(( $(now_ms) - start ))
  show_failure "$tmp/exp" "$tmp/out" "$tmp/err"
fi

start=$(now_ms)
printf '(display "before")\n(newline)\n(vector-ref (vector 1 2) 5)\n(display "after")\n' \
  >"$tmp/bad.scm"
env_run "$bin" "$tmp/bad.scm" >"$tmp/out" 2>"$tmp/err"
rc=$?
printf 'before\n' >"$tmp/exp"
if [ $rc -eq 1 ] && cmp -s "$tmp/exp" "$tmp/out" &&
   grep -q '^error: index out of range: 5$' "$tmp/err"; then
  report "cli-error" OK $(( $(now_ms) - start ))
else
  report "cli-error" FAIL $(( $(now_ms) - start ))
  echo "    exit status $rc"
  show_failure "$tmp/exp" "$tmp/out" "$tmp/err"
fi

echo "tinylisp $mode: $pass ok, $fail failed, $skip skipped"
[ -n "$failed" ] && echo "failed:$failed"
[ $fail -eq 0 ]
