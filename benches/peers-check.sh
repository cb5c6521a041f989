#!/usr/bin/env bash
# Side by side: `dtest check` and reelay (PyPI `reelay`, its Python API) on the
# same past-time properties over the same events of one synthetic trace.
#
#   benches/peers-check.sh            # 1 M events
#   EVENTS=5000000 benches/peers-check.sh
#
# reelay gets the events exported from the trace with `dtest trace show
# --format jsonl`, turned into its propositions beforehand (not timed): only
# its monitor loop is timed. dtest is timed end to end (process start, reading
# the binary trace, checking, report). Both wall and CPU (user+sys) times are
# printed; the machine is shared, so the CPU-time ratio is the steadier one.
# reelay is installed into a scratch venv ($WORK/venv) when it is missing.
set -euo pipefail

EVENTS=${EVENTS:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/dtest-peers-check.XXXXXX)}
VENV=${VENV:-$WORK/venv}
mkdir -p "$WORK"

(cd "$ROOT" && cargo build --release -q -p dtest-cli)
DTEST=$ROOT/target/release/dtest

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
verdict = "holds" if first_bad is None else "violated"
print(f"{w1 - w0:.3f} {c1 - c0:.3f} {verdict} {first_bad} {load + w1 - w0:.3f}")
PY

now() { date +%s.%N; }
echo "events: $EVENTS   reelay: $REELAY_VERSION   dtest: $($DTEST --version)"
echo "dtest: end to end (start, read the binary trace, check), best of 3."
echo "reelay: its monitor loop only (wall, cpu), and with loading the jsonl export (e2e)."
printf "%-20s %-9s %10s %10s %11s %10s %10s %7s %7s %7s\n" property verdict dtest-wall dtest-cpu reelay-wall reelay-cpu reelay-e2e wall-x cpu-x e2e-x
for row in "${PROPS[@]}"; do
    IFS='|' read -r name formula pattern pexpr qexpr <<< "$row"
    echo "property $name: $formula" > "$WORK/p.spec"
    best_w=999 best_c=999
    for _ in 1 2 3; do
        /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$DTEST" check "$WORK/p.spec" "$TRACE" > "$WORK/out" || true
        read -r w u s < <(tail -n 1 "$WORK/time")
        c=$(echo "$u + $s" | bc | sed 's/^\./0./')
        best_w=$(echo "if ($w < $best_w) $w else $best_w" | bc | sed 's/^\./0./')
        best_c=$(echo "if ($c < $best_c) $c else $best_c" | bc | sed 's/^\./0./')
    done
    dverdict=$(awk 'NR==1 {print $1}' "$WORK/out")
    read -r rw rc rverdict rbad re2e < <("$VENV/bin/python" "$WORK/reelay_run.py" "$WORK/t.jsonl" "$pattern" "$pexpr" "$qexpr")
    case "$dverdict" in holds) d=holds ;; *) d=violated ;; esac
    agree=""; [ "$d" = "$rverdict" ] || agree="  (VERDICTS DIFFER: dtest $dverdict, reelay $rverdict)"
    ratio() { if [ "$(echo "$2 > 0" | bc)" = 1 ]; then echo "scale=1; $1 / $2" | bc; else echo "inf"; fi; }
    printf "%-20s %-9s %9ss %9ss %10ss %9ss %9ss %6sx %6sx %6sx%s\n" "$name" "$d" "$best_w" "$best_c" "$rw" "$rc" "$re2e" \
        "$(ratio "$rw" "$best_w")" "$(ratio "$rc" "$best_c")" "$(ratio "$re2e" "$best_w")" "$agree"
done
echo "work files: $WORK"
