#!/usr/bin/env bash
# Side by side: `dtest check` and reelay (PyPI `reelay`, its Python API) on the
# same past-time properties over the same events of one synthetic trace.
#
#   benches/peers-check.sh            # 1 M events
#   EVENTS=5000000 benches/peers-check.sh
#   OLD=/path/to/older/dtest benches/peers-check.sh   # also times an older build
#
# reelay gets the events exported from the trace with `dtest trace show
# --format jsonl`, turned into its propositions beforehand (not timed): only
# its monitor loop is timed. dtest is timed end to end (process start, reading
# the binary trace, checking, report). Both wall and CPU (user+sys) times are
# printed; the machine is shared, so the CPU-time ratio is the steadier one.
# Each tool is timed RUNS times (default 5), the best run kept; the runs of
# the tools alternate, so a burst of load hits them alike. dtest's warnings
# (stderr) are kept in $WORK/stderr.
# reelay is installed into a scratch venv ($WORK/venv) when it is missing.
set -euo pipefail

EVENTS=${EVENTS:-1000000}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/dtest-peers-check.XXXXXX)}
VENV=${VENV:-$WORK/venv}
mkdir -p "$WORK"

if [ -z "${DTEST:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p dtest-cli)
    DTEST=$ROOT/target/release/dtest
fi
OLD=${OLD:-}

if ! "$VENV/bin/python" -c "import reelay" 2>/dev/null; then
    python3 -m venv "$VENV"
    if ! "$VENV/bin/pip" install -q reelay; then
        echo "reelay cannot be installed here (pip install reelay failed); no comparison" >&2
        exit 1
    fi
fi
REELAY_VERSION=$("$VENV/bin/pip" show reelay 2>/dev/null | sed -n 's/^Version: //p')

TRACE=$WORK/t.dtrace
"$DTEST" trace synth --testers 4 --events "$EVENTS" --seed 1 -o "$TRACE"
"$DTEST" trace show --format jsonl "$TRACE" > "$WORK/t.jsonl"

# name | dtest formula | reelay pattern | python expressions of its propositions
PROPS=(
  "verdict_after_start|G (verdict -> O start)|{p} -> once{q}|e['kind'] == 'verdict'|e['kind'] == 'start'"
  "leave_since_enter|G (barrier_leave(_, _, dir = recv) -> (!barrier_broken S barrier_enter))|{p} -> ((not {r}) since {q})|e['kind'] == 'barrier_leave' and e['dir'] == 'recv'|e['kind'] == 'barrier_enter'"
)

cat > "$WORK/reelay_run.py" <<'PY'
import json, sys, time
import reelay
path, pattern, pexpr, qexpr = sys.argv[1:5]
p = eval("lambda e: " + pexpr)
q = eval("lambda e: " + qexpr)
l0 = time.perf_counter()
rows = []
with open(path) as f:
    for line in f:
        e = json.loads(line)
        rows.append({"p": bool(p(e)), "q": bool(q(e)), "r": e["kind"] == "barrier_broken"})
load = time.perf_counter() - l0
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
best_w = best_c = None
for _ in range(runs):
    m = reelay.discrete_timed_monitor(pattern=pattern)
    w0, c0 = time.perf_counter(), time.process_time()
    first_bad, value = None, True
    for i, r in enumerate(rows):
        out = m.update(r)
        if "value" in out:
            value = out["value"]
        if not value and first_bad is None:
            first_bad = i
    w1, c1 = time.perf_counter(), time.process_time()
    best_w = w1 - w0 if best_w is None else min(best_w, w1 - w0)
    best_c = c1 - c0 if best_c is None else min(best_c, c1 - c0)
verdict = "holds" if first_bad is None else "violated"
print(f"{best_w:.3f} {best_c:.3f} {verdict} {first_bad} {load + best_w:.3f}")
PY

# best_of BIN: best wall and CPU (user+sys) of $RUNS runs of `BIN check`.
best_of() {
    local bw=999 bc=999 w u s c
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$1" check "$WORK/p.spec" "$TRACE" > "$WORK/out" 2>> "$WORK/stderr" || true
        read -r w u s < <(tail -n 1 "$WORK/time")
        c=$(echo "$u + $s" | bc | sed 's/^\./0./')
        bw=$(echo "if ($w < $bw) $w else $bw" | bc | sed 's/^\./0./')
        bc=$(echo "if ($c < $bc) $c else $bc" | bc | sed 's/^\./0./')
    done
    echo "$bw $bc"
}
ratio() { if [ "$(echo "$2 > 0" | bc)" = 1 ]; then echo "scale=1; $1 / $2" | bc; else echo "inf"; fi; }
echo "events: $EVENTS   reelay: $REELAY_VERSION   dtest: $($DTEST --version)   load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dtest: end to end (start, read the binary trace, check), best of $RUNS."
echo "reelay: its monitor loop only (wall, cpu), best of $RUNS, and with loading the jsonl export (e2e)."
[ -n "$OLD" ] && echo "old: $OLD, timed the same way (columns old-wall, old-cpu)."
printf "%-20s %-9s %10s %10s %11s %10s %10s %7s %7s %7s" property verdict dtest-wall dtest-cpu reelay-wall reelay-cpu reelay-e2e wall-x cpu-x e2e-x
[ -n "$OLD" ] && printf " %9s %9s" old-wall old-cpu
echo
for row in "${PROPS[@]}"; do
    IFS='|' read -r name formula pattern pexpr qexpr <<< "$row"
    echo "property $name: $formula" > "$WORK/p.spec"
    read -r best_w best_c < <(best_of "$DTEST")
    dverdict=$(awk 'NR==1 {print $1}' "$WORK/out")
    old_cols=""
    if [ -n "$OLD" ]; then
        read -r ow oc < <(best_of "$OLD")
        old_cols=$(printf " %8ss %8ss" "$ow" "$oc")
    fi
    read -r rw rc rverdict rbad re2e < <("$VENV/bin/python" "$WORK/reelay_run.py" "$WORK/t.jsonl" "$pattern" "$pexpr" "$qexpr" "$RUNS")
    case "$dverdict" in holds) d=holds ;; *) d=violated ;; esac
    agree=""; [ "$d" = "$rverdict" ] || agree="  (VERDICTS DIFFER: dtest $dverdict, reelay $rverdict)"
    printf "%-20s %-9s %9ss %9ss %10ss %9ss %9ss %6sx %6sx %6sx%s%s\n" "$name" "$d" "$best_w" "$best_c" "$rw" "$rc" "$re2e" \
        "$(ratio "$rw" "$best_w")" "$(ratio "$rc" "$best_c")" "$(ratio "$re2e" "$best_w")" "$old_cols" "$agree"
done
echo "work files: $WORK"
