#!/usr/bin/env bash
# Everything that says a tree works on the GPU, in one call of under 10 minutes (the device's limit):
# `swimbench doctor`, a tiny latency run with `report` and `gate` on it, `report` of every committed
# run directory (on the machine's CPUs, beside the GPU work), then the GPU test suite. Each step writes
# its log under $OUT as it goes, so a call cut short still brings back what it finished.
#
#   OUT=$OUT SWIMBENCH_GIT_COMMIT=<commit> bash scripts/gpu_acceptance.sh
#
# Needs the device wheels in .whl/ (mamba-ssm with its CUDA extension, fvcore; see scripts/device_env.sh).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SWIMBENCH_GIT_COMMIT=${SWIMBENCH_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
. scripts/device_env.sh > "$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; exit 1; }
echo "commit $SWIMBENCH_GIT_COMMIT" >> "$OUT/env.txt"
python3 -m pip list --format=freeze > "$OUT/pip-freeze.txt" 2>&1
SB="python3 -m swimbench"
WORK=$(mktemp -d)

step() {            # step NAME SECONDS CMD...: output in $OUT/NAME.log, exit status and wall in steps.txt
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    timeout -s INT "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc, wall $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.txt"
    tail -3 "$OUT/$name.log"
    return $rc
}

reports() {         # `swimbench report` of every committed run directory, 8 at a time, each its exit
    ls -d reports/*/ | while read -r d; do
        [ -f "$d/results.csv" ] || [ -f "$d/ep.csv" ] || continue
        echo "$d"
    done | xargs -P 8 -I{} sh -c \
        "$SB report {} --out $WORK/rendered/\$(basename {}) > $WORK/report-\$(basename {}).log 2>&1; \
         echo \"\$(basename {}) exit \$?\""
}

step doctor 240 $SB doctor
$SB doctor --format json > "$OUT/doctor.json" 2>/dev/null &       # the same checks, for the record
DOCTOR_JSON=$!
reports > "$OUT/reports.txt" 2>&1 &
REPORTS=$!
wait $DOCTOR_JSON
step tiny-latency 200 $SB latency -v dense,swimba -E 8 -k 1 --seq 2048 --batch 1 --budget 0.1 --no-energy \
    --out "$WORK/runs" --name "tiny"
RUN=$(ls -d "$WORK"/runs/*tiny* 2>/dev/null | head -1)
if [ -n "$RUN" ]; then
    step tiny-report 120 $SB report "$RUN" --out "$WORK/tiny-report"
    gpu=$(python3 -c "import torch; print('h200' if 'H200' in torch.cuda.get_device_name() else 'h100')")
    step tiny-gate 60 $SB gate "$RUN" --baseline "profiles/baselines/$gpu.json" --format json
    tar -C "$(dirname "$RUN")" -czf "$OUT/tiny-run.tgz" "$(basename "$RUN")"
fi
wait $REPORTS
echo "reports: $(grep -c ' exit 0$' "$OUT/reports.txt") of $(wc -l < "$OUT/reports.txt") exit 0" | tee -a "$OUT/steps.txt"
grep -v ' exit 0$' "$OUT/reports.txt"
step gpu-suite 330 python3 -m pytest tests/gpu -q -p no:cacheprovider --junitxml="$OUT/gpu-suite.xml"
cat "$OUT/steps.txt"
