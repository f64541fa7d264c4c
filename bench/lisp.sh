#!/bin/sh
# Each tinylisp program under gcheap and under Boehm GC, in one run: the
# median wall time of 3 runs, the peak RSS, and the ratios gcheap/Boehm.
# Run by `make bench` (BUILD names the build directory).
BUILD=${BUILD:-build}
runs=${LISP_BENCH_RUNS:-3}
measure() { # binary program -> "ms rss_kb" (median wall of $runs, max RSS)
  tmp=/tmp/lispbench.$$
  : > "$tmp.all"
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$tmp" "$1" "$2" > /dev/null 2>&1
    awk '{printf "%d %d\n", $1 * 1000, $2}' "$tmp" >> "$tmp.all"
  done
  sort -n "$tmp.all" | awk -v n="$runs" '{ms[NR] = $1; if ($2 > rss) rss = $2}
    END {print ms[int((n + 1) / 2)], rss}'
  rm -f "$tmp" "$tmp.all"
}
printf '%-14s %10s %10s %7s %10s %10s %7s\n' program gcheap_ms boehm_ms ratio gcheap_MB boehm_MB ratio
for f in examples/tinylisp/programs/*.scm; do
  name=$(basename "$f" .scm)
  set -- $(measure "$BUILD/tinylisp" "$f"); gm=$1; gr=$2
  set -- $(measure "$BUILD/tinylisp-boehm" "$f"); bm=$1; br=$2
  awk -v n="$name" -v gm="$gm" -v bm="$bm" -v gr="$gr" -v br="$br" 'BEGIN {
    printf "%-14s %10d %10d %6.2fx %10.1f %10.1f %6.2fx\n", n, gm, bm,
      (bm ? gm / bm : 0), gr / 1024, br / 1024, (br ? gr / br : 0) }'
done
