#!/usr/bin/env bash
# The HTML report's figures (benches/README.md, "HTML report"): `dtest report`
# time, peak RSS and file size on synthetic traces of 100 k and 1 M events, and
# the time until the 1 M-event report is interactive in headless Chromium
# (chromedriver; the ignored test report::time_to_interactive), with the
# time of one frame of the chart and the log at 60 places through the trace.
# Medians of RUNS runs (default 5).
#
#   benches/report-browser.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p dtest-cli
dtest=target/release/dtest
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for n in 100000 1000000; do
  "$dtest" trace synth --testers 4 --events "$n" --seed 1 --payload 16 -o "$work/t$n.dtrace"
  : >"$work/wall" ; : >"$work/rss"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$dtest" report "$work/t$n.dtrace" --out "$work/r$n.html" 2>/dev/null
    read -r wall rss <"$work/time"
    echo "$wall" >>"$work/wall"; echo "$rss" >>"$work/rss"
  done
  printf 'report %8d events: trace %10d bytes, report %10d bytes, median %s s, peak RSS %s KB\n' \
    "$n" "$(stat -c %s "$work/t$n.dtrace")" "$(stat -c %s "$work/r$n.html")" \
    "$(median <"$work/wall")" "$(median <"$work/rss")"
done

# Time to interactive: navigation start -> the page's init done (its own
# clock, window.dtestReady), and the WebDriver wall time of the navigation.
: >"$work/ready"; : >"$work/nav"; : >"$work/frame"
for _ in $(seq "$runs"); do
  line=$(DTEST_REPORT_BENCH="$work/r1000000.html" cargo test -q -p dtest-tests --test it -- \
    report::time_to_interactive --ignored --nocapture 2>/dev/null | grep REPORT_TTI)
  echo "$line"
  sed -E 's/.*ready_ms=([0-9.]+).*/\1/' <<<"$line" >>"$work/ready"
  sed -E 's/.*wall_ms=([0-9.]+).*/\1/' <<<"$line" >>"$work/nav"
  sed -E 's/.*"max_ms":([0-9.]+).*/\1/' <<<"$line" >>"$work/frame"
done
printf '1 M-event report in headless Chromium: interactive after %s ms (median; WebDriver navigation %s ms); slowest frame of 60, median of runs: %s ms\n' \
  "$(median <"$work/ready")" "$(median <"$work/nav")" "$(median <"$work/frame")"
