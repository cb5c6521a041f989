#!/bin/sh
# Continuous capture under load: N local testers, each running a command
# that writes M MiB while its tester waits at a barrier. Every command must
# finish writing before the barrier releases (the barrier's last arrival is
# a tester that waits until every command has written its "done" file), and
# the whole run is compared with the same N commands writing their output
# to files (`sh -c 'cmd > file' &` N times, then wait).
#
#   benches/peers-capture.sh                 # N = 64, M = 64, RUNS = 3
#   N=16 M=16 RUNS=5 benches/peers-capture.sh
#
# Prints the median wall time of each and the ratio dtest / files.
set -eu
cd "$(dirname "$0")/.."
N=${N:-64}
# RECORD=false: the writers' output is read but neither logged nor traced.
RECORD=${RECORD:-true}
M=${M:-64}
RUNS=${RUNS:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p dtest-cli
DTEST=$PWD/target/release/dtest

LINE=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz
cmd() { echo "yes $LINE | head -c ${M}M"; }

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.3f", m}'; }

# The scenario: N writers (pipes) and one watcher that joins the barrier
# only once every writer's done file exists (so the barrier's release
# proves that every command finished while its tester was parked there).
scenario() {
    f="$WORK/capture.toml"
    {
        echo 'name = "capture-bench"'
        echo 'timeout = "10m"'
        echo '[defaults]'
        echo 'barrier_timeout = "10m"'
        echo 'wait_timeout = "10m"'
        i=0
        while [ $i -lt "$N" ]; do
            cat <<TOML
[[tester]]
name = "w$i"
pty = false
record_output = $RECORD
steps = [
  { run = "$(cmd); touch \${run_dir}/done.$i" },
  { barrier = "all written" },
  { wait = "10m", status = 0 },
]
TOML
            i=$((i + 1))
        done
        cat <<TOML
[[tester]]
name = "watcher"
steps = [
  { local = "while [ \$(ls \${run_dir} | grep -c '^done\\\\.') -lt $N ]; do sleep 0.05; done", timeout = "10m", name = "every command finished writing" },
  { barrier = "all written" },
]
TOML
    } >"$f"
}

run_files() {
    i=0
    while [ $i -lt "$N" ]; do
        sh -c "$(cmd) > $WORK/files/out.$i" &
        i=$((i + 1))
    done
    wait
}

scenario
tf=""
td=""
r=0
while [ $r -lt "$RUNS" ]; do
    rm -rf "$WORK/files" "$WORK/run"
    mkdir -p "$WORK/files"
    t0=$(now); run_files; t1=$(now)
    tf="$tf $(echo "$t1 - $t0" | bc -l)"
    rm -rf "$WORK/files"
    t0=$(now)
    if ! "$DTEST" exec "$WORK/capture.toml" --out "$WORK/run" >"$WORK/tap" 2>&1; then
        echo "dtest run failed:"; grep -v '^ok' "$WORK/tap" | head -20; exit 1
    fi
    t1=$(now)
    td="$td $(echo "$t1 - $t0" | bc -l)"
    r=$((r + 1))
done
mf=$(echo "$tf" | tr ' ' '\n' | grep . | median)
md=$(echo "$td" | tr ' ' '\n' | grep . | median)
echo "N=$N testers x M=$M MiB, RUNS=$RUNS, record_output=$RECORD (medians)"
echo "  commands writing to files:        ${mf} s"
echo "  dtest, testers parked at barrier: ${md} s  (every point ok: every command finished before the release)"
echo "  ratio dtest / files: $(echo "$md / $mf" | bc -l | cut -c1-5)"
