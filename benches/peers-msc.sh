#!/usr/bin/env bash
# Side by side, one run, same input: mscgen 0.20 rendering dtest's mscgen
# output of a synthetic trace as SVG, versus dtest drawing its own SVG of the
# same trace (reading the trace, layout and writing included). Prints the
# median of RUNS runs of each and their ratio; absolute times drift on these
# noisy machines, the ratio holds.
#
#   benches/peers-msc.sh            # 10k events, 16 testers, 7 runs
#   EVENTS=100000 RUNS=5 benches/peers-msc.sh
#   DETAIL=full benches/peers-msc.sh  # every event on its own (default: compact)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-10000}
TESTERS=${TESTERS:-16}
RUNS=${RUNS:-7}
DETAIL=${DETAIL:-compact}

command -v mscgen >/dev/null || { echo "mscgen not found: apt-get install mscgen" >&2; exit 2; }
cargo build --release -q -p dtest-cli
DTEST=target/release/dtest

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$DTEST" trace synth --testers "$TESTERS" --events "$EVENTS" --seed 1 -o "$tmp/t.dtrace"
"$DTEST" msc --detail "$DETAIL" "$tmp/t.dtrace" -o "$tmp/t.msc"
arcs=$(grep -cE '" (=>|>>|->) "' "$tmp/t.msc" || true)

# Median wall time of a command over RUNS runs, in milliseconds.
median_ms() {
    local times=()
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s%N)
        "$@" >/dev/null 2>&1
        e=$(date +%s%N)
        times+=($(( (e - s) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

mscgen_ms=$(median_ms mscgen -T svg -o "$tmp/mscgen.svg" -i "$tmp/t.msc")
svg_ms=$(median_ms "$DTEST" msc --detail "$DETAIL" "$tmp/t.dtrace" -o "$tmp/dtest.svg")
msc_ms=$(median_ms "$DTEST" msc --detail "$DETAIL" "$tmp/t.dtrace" -o "$tmp/again.msc")

echo "trace: $EVENTS events, $TESTERS testers, --detail $DETAIL ($arcs arcs in the mscgen file); median of $RUNS runs"
printf '%-44s %10s ms  %s\n' "mscgen -T svg on dtest's mscgen output" "$mscgen_ms" "$(stat -c %s "$tmp/mscgen.svg") bytes"
# A chart over 32000 px is written as pages dtest-1.svg, dtest-2.svg, ...
printf '%-44s %10s ms  %s\n' "dtest msc -o chart.svg" "$svg_ms" "$(cat "$tmp"/dtest*.svg | wc -c) bytes"
printf '%-44s %10s ms  %s\n' "dtest msc -o chart.msc" "$msc_ms" "$(stat -c %s "$tmp/t.msc") bytes"
awk -v a="$svg_ms" -v b="$mscgen_ms" 'BEGIN {printf "ratio dtest SVG / mscgen SVG: %.2f\n", a / b}'
