#!/bin/sh
# check_samples.sh -- the code samples of docs/embedding.md must be the
# code that test/docs/test_embedding.c compiles and runs.
#
#   test/docs/check_samples.sh [C-FILE [MARKDOWN]]
#
# In the C file a sample is the lines between
#     /* doc: NAME */        and        /* end */
# (each alone on its line), with the marker line's indentation removed.
# In the markdown it is the fenced block right after the line
#     <!-- doc: NAME -->
# Every NAME must appear once in each file and the two texts must be
# identical.  Prints a unified diff for each mismatch; exit status 1 if
# any.  Needs only sh, awk, diff and mktemp; runs from any directory.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cfile=${1:-$root/test/docs/test_embedding.c}
mdfile=${2:-$root/docs/embedding.md}
for f in "$cfile" "$mdfile"; do
  [ -r "$f" ] || { echo "check_samples: cannot read $f" >&2; exit 2; }
done
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/c" "$tmp/md"

# C: regions between the markers, dedented by the marker's indentation.
awk -v dir="$tmp/c" '
  function fail(msg) { printf "check_samples: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; bad = 1 }
  match($0, /^[ \t]*\/\* doc: [A-Za-z0-9_.-]+ \*\/[ \t]*$/) {
    if (name != "") fail("doc: inside sample " name)
    indent = $0; sub(/[^ \t].*$/, "", indent)
    name = $0; sub(/^[ \t]*\/\* doc: /, "", name); sub(/ \*\/[ \t]*$/, "", name)
    if (name in seen) fail("sample " name " defined twice")
    seen[name] = 1; out = dir "/" name; printf "" > out; next
  }
  /^[ \t]*\/\* end \*\/[ \t]*$/ {
    if (name == "") fail("end without doc:")
    close(out); name = ""; next
  }
  name != "" {
    line = $0
    if (substr(line, 1, length(indent)) == indent) line = substr(line, length(indent) + 1)
    else if (line !~ /^[ \t]*$/) fail("line less indented than its doc: marker")
    else line = ""
    print line > out
  }
  END { if (name != "") fail("sample " name " has no end"); exit bad }
' "$cfile" || exit 1

# Markdown: the fenced block after each marker.
awk -v dir="$tmp/md" '
  function fail(msg) { printf "check_samples: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; bad = 1 }
  state == 2 && /^```[ \t]*$/ { close(out); state = 0; next }
  state == 2 { print > out; next }
  state == 1 {
    if ($0 ~ /^```/) { state = 2; next }
    fail("no code block after the doc: marker of " name); state = 0
  }
  /^<!-- doc: [A-Za-z0-9_.-]+ -->[ \t]*$/ {
    name = $0; sub(/^<!-- doc: /, "", name); sub(/ -->[ \t]*$/, "", name)
    if (name in seen) fail("sample " name " shown twice")
    seen[name] = 1; out = dir "/" name; printf "" > out; state = 1
  }
  END { if (state) fail("sample " name " not closed"); exit bad }
' "$mdfile" || exit 1

status=0; n=0
for f in "$tmp"/c/*; do
  [ -e "$f" ] || continue
  name=$(basename "$f"); n=$((n + 1))
  if [ ! -e "$tmp/md/$name" ]; then
    echo "check_samples: sample $name is not in $mdfile"; status=1; continue
  fi
  diff -u --label "$cfile: $name" --label "$mdfile: $name" "$f" "$tmp/md/$name" || status=1
done
for f in "$tmp"/md/*; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  [ -e "$tmp/c/$name" ] || { echo "check_samples: $mdfile shows $name, which $cfile lacks"; status=1; }
done
[ $status -eq 0 ] && echo "check_samples: $n samples match"
exit $status
