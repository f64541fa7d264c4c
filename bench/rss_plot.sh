#!/bin/sh
# rss_plot.sh -- run bench_rss (RSS over time for a spike workload under
# gcheap, Boehm GC and glibc malloc; see bench/bench_rss.c) and plot its
# samples with gnuplot.
#
#   bench/rss_plot.sh           build and run the bench, then plot:
#                               $BUILD/bench/rss.csv  samples (allocator,t_ms,rss_mb,phase)
#                               $BUILD/bench/rss.txt  the bench's summary table
#                               $BUILD/bench/rss.png  the plot
#   bench/rss_plot.sh FILE.csv  plot an existing CSV only, to FILE.png
#
# The top panel shows RSS against time since each child started; the bottom
# one the same samples against time since the spike was dropped, so the
# series line up where it matters.  BUILD (default build), BENCH_SCALE,
# BENCH_ONLY and BENCH_RSS_CHURN_MB are passed through.  gnuplot-nox is
# installed by scripts/deps.sh when missing.  Everything written is under
# $BUILD, which git ignores.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
./scripts/deps.sh plot

if [ $# -ge 1 ]; then
  csv=$1
else
  make -s -j2 BUILD="$BUILD" "$BUILD/bench/bench_rss"
  mkdir -p "$BUILD/bench"
  csv=$BUILD/bench/rss.csv
  "$BUILD/bench/bench_rss" "$csv" | tee "$BUILD/bench/rss.txt"
fi
[ -s "$csv" ] || { echo "rss_plot.sh: no samples in $csv" >&2; exit 1; }
base=${csv%.csv}
png=$base.png
dat=$base.dat

# One gnuplot data block per series (two blank lines between blocks):
# seconds since the child started, seconds since the drop, RSS in MB.
# The drop is the first sample of the phase "after".
awk -F, '
  NR == 1 { next }
  $1 != cur {
    if (cur != "") flush()
    cur = $1; n = 0; drop = ""
  }
  { t[++n] = $2; r[n] = $3; if (drop == "" && $4 == "after") drop = $2 }
  function flush(  i) {
    if (blocks++) printf "\n\n"
    printf "# %s\n", cur
    for (i = 1; i <= n; i++)
      printf "%.3f %.3f %s\n", t[i] / 1000, (drop == "" ? 0 : (t[i] - drop) / 1000), r[i]
  }
  END { if (cur != "") flush() }
' "$csv" > "$dat"
series=$(awk -F, 'NR > 1 && !seen[$1]++ { printf "%s ", $1 }' "$csv")
title="bench_rss: RSS of a 1 GiB spike workload (sampled every 10 ms)"
[ -f "$BUILD/bench/rss.txt" ] && [ $# -eq 0 ] &&
  title=$(head -n 1 "$BUILD/bench/rss.txt" | sed 's/"/\\"/g')

gnuplot <<EOF
set terminal pngcairo size 1280,1000 font "sans,10" noenhanced
set output "$png"
series = "$series"
n = words(series)
set key top left
set grid
set ylabel "RSS (MB)"
set yrange [0:*]
set style line 1 lc rgb "#1f77b4" lw 2
set style line 2 lc rgb "#17becf" lw 2 dt 2
set style line 3 lc rgb "#d62728" lw 2
set style line 4 lc rgb "#2ca02c" lw 2
set style line 5 lc rgb "#98df8a" lw 2 dt 2
set multiplot layout 2,1 title "$title" font "sans,11"
set xlabel "seconds since the child started"
plot for [i = 1:n] "$dat" index (i - 1) using 1:3 with lines ls i title word(series, i)
set xlabel "seconds since the spike was dropped (steady churn until 4 s, then idle)"
set arrow 1 from 0, graph 0 to 0, graph 1 nohead dt 3 lc rgb "black"
set arrow 2 from 4, graph 0 to 4, graph 1 nohead dt 3 lc rgb "black"
set label 1 "drop" at 0, graph 0.97 offset 0.5, 0
set label 2 "idle" at 4, graph 0.97 offset 0.5, 0
plot for [i = 1:n] "$dat" index (i - 1) using 2:3 with lines ls i title word(series, i)
unset multiplot
EOF
echo "rss_plot.sh: wrote $png"
