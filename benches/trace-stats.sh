#!/usr/bin/env bash
# `dtest trace stats` on synthetic traces of 1 M and 10 M events: wall time
# (median of 5 runs) and peak memory (max RSS), to show that stats streams
# (memory flat in the trace length). Usage: benches/trace-stats.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p dtest-cli
dtest=target/release/dtest
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for n in 1000000 10000000; do
  f=$dir/t$n.dtrace
  $dtest trace synth --testers 16 --events $n --seed 1 --payload 16 -o "$f"
  size=$(stat -c %s "$f")
  walls=(); rss=0
  for _ in 1 2 3 4 5; do
    out=$( { /usr/bin/time -f '%e %M' $dtest trace stats "$f" >/dev/null; } 2>&1 )
    walls+=("${out% *}"); r=${out#* }; (( r > rss )) && rss=$r
  done
  med=$(printf '%s\n' "${walls[@]}" | median)
  printf 'stats %9d events (%d bytes): median wall %s s, peak RSS %d KiB\n' "$n" "$size" "$med" "$rss"
done
