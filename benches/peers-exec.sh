#!/bin/sh
# Side by side: waiting for a marker after N MiB of output.
#
#   benches/peers-exec.sh            # N = 16, 64 (all tools), 1024 (grep, dtest pipes)
#   RUNS=5 PEXPECT_MAX=64 SIZES="16 64" benches/peers-exec.sh
#
# Tools: `cmd | grep -F -m1 MARKER` (pipes), `cmd | tee A B | grep -F -m1
# MARKER` (the same recording as dtest's: every byte to two files), a raw 64 KiB-read drain of a pty
# (python's pty + os.read), dtest exec with pty = false and pty = true,
# pexpect (regex, installed in a scratch venv if missing) and Tcl expect
# (apt package `expect` if missing). Prints the median wall time of RUNS
# runs of each, the ratios dtest/grep and dtest/raw-pty, and dtest's peak
# RSS. pexpect is quadratic: by default it only runs up to PEXPECT_MAX=16 MiB.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PEXPECT_MAX=${PEXPECT_MAX:-16}
SIZES=${SIZES:-"16 64 1024"}
BIG_ONLY_FAST=${BIG_ONLY_FAST:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p dtest-cli
DTEST=$PWD/target/release/dtest

PY=python3
if ! $PY -c 'import pexpect' 2>/dev/null; then
    $PY -m venv "$WORK/venv" && "$WORK/venv/bin/pip" -q install pexpect && PY="$WORK/venv/bin/python"
fi
if ! command -v expect >/dev/null; then
    (apt-get install -y -q expect >/dev/null 2>&1) || echo "# Tcl expect unavailable"
fi

LINE=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz
cmd() { echo "{ yes $LINE | head -c ${1}M; echo MARKER; }"; }

now() { date +%s.%N; }
# time_it CMD...: wall seconds of one run.
time_it() { t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now); echo "$t1 - $t0" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.3f", m}'; }

run_grep() { sh -c "$(cmd "$1") | grep -F -m1 MARKER"; }
# The same recording with coreutils: every byte to two files (dtest writes
# the .out log and the trace), then the search. One pipe hop more than dtest.
run_tee() { sh -c "$(cmd "$1") | tee $WORK/tee.a $WORK/tee.b | grep -F -m1 MARKER"; }
# Removes what the runs wrote; called between runs, outside the timings
# (deleting a GiB of fresh files takes a while, and is not the tool's work).
cleanup() { rm -rf "$WORK"/run-* "$WORK/tee.a" "$WORK/tee.b"; }
run_raw_pty() {
    $PY - "$(cmd "$1")" <<'PYEOF'
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-c", sys.argv[1]])
tail = b""
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:
        break
    if not b:
        break
    if b"MARKER" in tail + b:
        break
    tail = b[-6:]
PYEOF
}
run_pexpect() {
    $PY - "$(cmd "$1")" <<'PYEOF'
import sys, pexpect
c = pexpect.spawn("/bin/sh", ["-c", sys.argv[1]], timeout=3600)
c.expect("MARKER")
PYEOF
}
run_tcl() { expect -c "set timeout 3600; spawn sh -c {$(cmd "$1")}; expect MARKER" ; }
scenario() {
    cat > "$WORK/s$2${3:-}.toml" <<TOML
name = "flood"
[[tester]]
name = "a"
pty = $2
record_output = ${3:-true}
steps = [ { run = "$(cmd "$1")" }, { expect = "MARKER", timeout = "3600s" } ]
TOML
}
run_dtest() { "$DTEST" exec "$WORK/s$2${3:-}.toml" --out "$WORK/run-$2"; }

measure() { # measure NAME MiB CMD...
    name=$1; shift; mib=$1; shift
    for _ in $(seq "$RUNS"); do time_it "$@" "$mib"; cleanup; done | median
}

# pair A B MiB: runs A and B alternately RUNS times (so both see the same
# machine load); prints "median_A median_B median(B/A)".
pair() {
    a=$1; b=$2; mib=$3
    for _ in $(seq "$RUNS"); do
        ta=$(time_it $a "$mib"); cleanup; tb=$(time_it $b "$mib"); cleanup
        echo "$ta $tb $(echo "$tb / $ta" | bc -l)"
    done > "$WORK/pair"
    echo "$(cut -d' ' -f1 "$WORK/pair" | median) $(cut -d' ' -f2 "$WORK/pair" | median) $(cut -d' ' -f3 "$WORK/pair" | median)"
}
run_dtest_pipe() { run_dtest "$1" false; }
run_dtest_pipe_norec() { run_dtest "$1" false false; }
run_dtest_pty() { run_dtest "$1" true; }

echo "# $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg), RUNS=$RUNS"
printf '%-6s %-16s %10s\n' MiB tool median_s
for mib in $SIZES; do
    scenario "$mib" false; scenario "$mib" false false; scenario "$mib" true
    set -- $(pair run_grep run_dtest_pipe "$mib")
    printf '%-6s %-16s %10s\n' "$mib" "grep -F -m1" "$1"
    printf '%-6s %-16s %10s   median ratio dtest/grep %.2f (output logged and traced)\n' "$mib" "dtest pty=false" "$2" "$3"
    set -- $(pair run_tee run_dtest_pipe "$mib")
    printf '%-6s %-16s %10s   (tee to two files | grep -F -m1)\n' "$mib" "tee + grep" "$1"
    printf '%-6s %-16s %10s   median ratio dtest/tee %.2f (same recording)\n' "$mib" "dtest pty=false" "$2" "$3"
    set -- $(pair run_grep run_dtest_pipe_norec "$mib")
    printf '%-6s %-16s %10s   median ratio dtest/grep %.2f (record_output = false; grep: %s)\n' "$mib" "dtest pty=false" "$2" "$3" "$1"
    scenario "$mib" false
    rss=$( { /usr/bin/time -f %M "$DTEST" exec "$WORK/sfalse.toml" --out "$WORK/rss" >/dev/null; } 2>&1 | tail -1)
    rm -rf "$WORK/rss"
    printf '%-6s %-16s %10s KiB peak RSS\n' "$mib" "dtest pty=false" "$rss"
    if [ "$mib" -gt 64 ] && [ "$BIG_ONLY_FAST" = 1 ]; then continue; fi
    set -- $(pair run_raw_pty run_dtest_pty "$mib")
    r=$1; dt=$2
    printf '%-6s %-16s %10s   %.1f MB/s\n' "$mib" "raw pty drain" "$r" "$(echo "$mib * 1.048576 / $r" | bc -l)"
    printf '%-6s %-16s %10s   %.1f MB/s, median throughput ratio dtest/raw %.2f\n' "$mib" "dtest pty=true" "$dt" \
        "$(echo "$mib * 1.048576 / $dt" | bc -l)" "$(echo "1 / $3" | bc -l)"
    if command -v expect >/dev/null; then
        t=$(measure tcl "$mib" run_tcl)
        printf '%-6s %-16s %10s   ratio tcl/dtest-pty %.2f\n' "$mib" "Tcl expect" "$t" "$(echo "$t / $dt" | bc -l)"
    fi
    if [ "$mib" -le "$PEXPECT_MAX" ]; then
        p=$(RUNS=1 measure pexpect "$mib" run_pexpect)
        printf '%-6s %-16s %10s   ratio pexpect/dtest-pty %.1f\n' "$mib" "pexpect" "$p" "$(echo "$p / $dt" | bc -l)"
    fi
done
