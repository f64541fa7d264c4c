#!/bin/sh
# Run each test program given on the command line (and the tinylisp
# differential test when it is built), each under a timeout; print one line
# per test and finish with "N passed, N failed".  Exit status 1 on failure.
#
# TEST_TIMEOUT (seconds, default 300) bounds each test.  For the passes of
# `make check` (test/check.sh):
#   TEST_PASS    names the pass: test lines read "PASS asan/test/gc/..." and
#                the last line "asan: N passed, N failed"
#   TEST_DOCS    0: skip the docs/samples check (default 1)
#   TEST_LISP    the tinylisp modes to run (default "gcheap torture
#                concurrent boehm"; empty: none)
#   TEST_COUNTS  a file to append "PASSED FAILED names..." to
pass=0; fail=0; failed=""
timeout_s=${TEST_TIMEOUT:-300}
prefix=${TEST_PASS:+$TEST_PASS/}
lisp_modes=${TEST_LISP-gcheap torture concurrent boehm}
# Under TSan the fork test's children restart the collector's threads.
export TSAN_OPTIONS="${TSAN_OPTIONS:-die_after_fork=0}"
run_one() {
  name=$prefix$1; shift
  start=$(date +%s%N)
  out=$(timeout "$timeout_s" "$@" 2>&1); rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1)); printf 'PASS %-40s %6d ms\n' "$name" "$ms"
  else
    fail=$((fail + 1)); failed="$failed $name"
    printf 'FAIL %-40s (exit %d)\n' "$name" "$rc"
    echo "$out" | tail -n 30 | sed 's/^/    /'
  fi
}
for t in "$@"; do run_one "${t#${BUILD:-build}/}" "$t"; done
# The code samples in docs/embedding.md must match the tested ones.
if [ "${TEST_DOCS:-1}" != 0 ] && [ -x test/docs/check_samples.sh ]; then
  run_one docs/samples test/docs/check_samples.sh
fi
if [ -n "$lisp_modes" ] && [ -x test/lisp/run_programs.sh ] && [ -x "${BUILD:-build}/tinylisp" ]; then
  for mode in $lisp_modes; do
    run_one "tinylisp/$mode" test/lisp/run_programs.sh "$mode"
  done
fi
echo "${TEST_PASS:+$TEST_PASS: }$pass passed, $fail failed"
[ -n "$failed" ] && echo "failed:$failed"
[ -n "$TEST_COUNTS" ] && echo "$pass $fail$failed" >> "$TEST_COUNTS"
[ $fail -eq 0 ]
