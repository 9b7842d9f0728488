#!/usr/bin/env bash
# Does the gate survive reruns, and does it catch a real slowdown? (issue 14, item 6)
#
#   bash scripts/gpu_gate_reruns.sh [OUT]             # on the GPU: about 5-6 minutes on an H200
#   DEVICE=cpu bash scripts/gpu_gate_reruns.sh [OUT]  # the same check on the CPU, at toy sizes
#
# 1. a baseline: one small sweep with --repeats (each row measured REPEATS times, each time in
#    another order of the sweep; its interval spans the repeats' medians), written with gate --update;
# 2. RERUNS fresh processes of the same sweep on the same code, each gated against that baseline:
#    every one must pass (a FAIL is a false alarm);
# 3. one more run with swimba slowed by 10% (SWIMBENCH_INJECT_SLOWDOWN=swimba:0.10, read only in
#    swimbench/measure/timing.py: a sleep kernel of 10% of each timed call's own time, on the same
#    stream), which the gate must fail, on swimba's rows only.
# The gate runs at a 1.05 threshold on the timed metrics, half the injected slowdown: at the default
# 1.10 a 10% slowdown sits on the threshold itself and is caught about half the time.
# Prints one line per run and a last line `false alarms: F of RERUNS; slowdown: caught|MISSED`;
# exits 1 when a rerun failed or the slowdown was missed. Everything stays under OUT.
set -u
OUT=${1:-reports/gate-reruns-$(date +%Y%m%d-%H%M%S)}
SB=${SWIMBENCH:-swimbench}
RERUNS=${RERUNS:-10}
REPEATS=${REPEATS:-3}
SKIP=()
if [ "${DEVICE:-cuda}" = cpu ]; then
    SWEEP=(--device cpu -v dense,swimba,rom -E 2,4 -k 1 --seq 16 --d-model 16 --d-state 4 --dtype fp32
           --budget 0.05 --min-reps 5 --warmup 2)
    # A shared CPU's load changes between processes and moves every absolute time together (seen:
    # 1.7-2.3x between two reruns, while each run's repeats agreed): on the CPU the gate takes the
    # ratios to dense on the same run, which that load cancels, as docs/gate.md advises.
    SKIP=(--skip prefill_ms --skip decode_us)
else
    SWEEP=(--device cuda -v dense,swimba,rom -E 8 -k 2 --seq 2048 --batch 1 --dtype bf16
           --budget 0.1 --no-energy --no-mamba-ssm)
fi
LIMITS=(-t prefill_ms=1.05 -t decode_us=1.05 -t prefill_ms/dense=1.05 -t decode_us/dense=1.05
        -t prefill_x_floor=1.05 -t decode_x_floor=1.05)
mkdir -p "$OUT"
T0=$(date +%s)

measure() {   # measure NAME [env...]: one run of the sweep into OUT/<timestamp>-NAME; echoes its path
    local name=$1
    shift
    env "$@" "$SB" latency "${SWEEP[@]}" --repeats "$REPEATS" --out "$OUT" --name "$name" \
        >"$OUT/$name.log" 2>&1 || { echo "latency $name failed: see $OUT/$name.log" >&2; exit 2; }
    ls -d "$OUT"/*-"$name"
}

gate() {      # gate RUN NAME: the verdict as JSON in OUT/gate-NAME.json; echoes its exit status and counts
    local run=$1 name=$2
    "$SB" gate "$run" --baseline "$OUT/baseline.json" "${LIMITS[@]}" "${SKIP[@]}" --format json \
        >"$OUT/gate-$name.json" \
        2>"$OUT/gate-$name.err"
    local rc=$?
    python3 - "$OUT/gate-$name.json" "$rc" <<'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError:
    print(f"exit {sys.argv[2]} (no verdict: see the .err file)")
    sys.exit()
failed = sorted({v["configuration"] for v in doc["verdicts"] if v["verdict"] in ("regressed", "changed", "failed")})
print(f"exit {sys.argv[2]} {doc['verdict']} {doc['counts']}" + (f" failing: {', '.join(failed)}" if failed else ""))
EOF
    return $rc
}

base=$(measure baseline) || exit 2
"$SB" gate "$base" --baseline "$OUT/baseline.json" --update >"$OUT/baseline-update.log" 2>&1 || {
    echo "gate --update failed: see $OUT/baseline-update.log"; exit 2; }
echo "baseline: $base ($(( $(date +%s) - T0 )) s)"

alarms=0
for i in $(seq 1 "$RERUNS"); do
    run=$(measure "rerun$i") || exit 2
    line=$(gate "$run" "rerun$i")
    rc=$?
    [ "$rc" -ne 0 ] && alarms=$((alarms + 1))
    echo "rerun $i: $line ($(( $(date +%s) - T0 )) s)"
done

run=$(measure slowed SWIMBENCH_INJECT_SLOWDOWN=swimba:0.10) || exit 2
line=$(gate "$run" slowed)
rc=$?
# caught: the gate fails, on swimba's rows and on no other design's
caught=$(python3 - "$OUT/gate-slowed.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
failed = {v["configuration"].split("/")[0] for v in doc["verdicts"] if v["verdict"] in ("regressed", "failed")}
print("caught" if failed == {"swimba"} else f"MISSED (failing designs: {sorted(failed) or 'none'})")
EOF
)
echo "slowed swimba by 10%: $line"
echo "false alarms: $alarms of $RERUNS; slowdown: $caught ($(( $(date +%s) - T0 )) s, device=${DEVICE:-cuda})"
[ "$alarms" -eq 0 ] && [ "$caught" = caught ] && [ "$rc" -eq 1 ]
