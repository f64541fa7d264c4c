#!/bin/sh
# Install the Debian packages gcheap builds, tests and benchmarks against,
# only when one is missing.  Does nothing (and needs no root) otherwise.
set -e
pkgs="make gcc clang libclang-rt-14-dev libatomic-ops-dev libgc-dev libmimalloc-dev libjemalloc-dev google-perftools time"
[ "${1:-}" = plot ] && pkgs="$pkgs gnuplot-nox" # deps.sh plot: also bench/rss_plot.sh's gnuplot
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing$missing" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
