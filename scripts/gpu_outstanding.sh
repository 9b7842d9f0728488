#!/usr/bin/env bash
# The GPU work still owed to issues 11, 13, 14 and 15, in calls of under 10 minutes each, most
# valuable first, each step under its own timeout and logging into $OUT as it goes (so a call cut
# short by the device's limit still brings back what it did). Run from the repository root on the
# lent H200 with the device wheels in .whl/ (carry it; part B also needs the mamba-ssm wheel there):
#
#   OUT=$OUT bash scripts/gpu_outstanding.sh A   # ~8 min: the GPU suite (tests/gpu: issue 11's router
#                                                # fix and fp16 fallback, issue 14's option matrix, every
#                                                # check above), issue 11's 17 missing b128 rows
#                                                # (latency --resume of the committed decode run)
#   OUT=$OUT bash scripts/gpu_outstanding.sh B   # ~7 min: issue 13's generate run (gpu_generate.sh)
#   OUT=$OUT bash scripts/gpu_outstanding.sh C   # ~6 min: issue 14's gate reruns and the 10% slowdown
#   OUT=$OUT bash scripts/gpu_outstanding.sh D   # ~4 min: issue 15 at world size 1 (gpu_distributed.sh)
#
# SWIMBENCH_GIT_COMMIT is taken from the checkout when git is there; set it otherwise (the device
# copy of the tree has no .git).
set -u
PART=${1:?"which part: A, B, C or D"}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export SWIMBENCH_GIT_COMMIT=${SWIMBENCH_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
. scripts/device_env.sh > "$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; exit 1; }
echo "commit $SWIMBENCH_GIT_COMMIT" >> "$OUT/env.txt"

step() {            # step NAME SECONDS CMD...: the command's output in $OUT/NAME.log, its exit and wall
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    timeout -s INT "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc, wall $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.txt"
    tail -4 "$OUT/$name.log"
}

case $PART in
A)
    OUT="$OUT/suite" SUITE_S=320 bash scripts/gpu_suite.sh > /dev/null 2>&1      # its log: suite/gpu-suite.log
    echo "suite: exit $?" | tee -a "$OUT/steps.txt"; tail -2 "$OUT/suite/gpu-suite.log"
    RUN=reports/h200-2026-12-02-decode
    step decode-resume 200 python3 -m swimbench latency --resume "$RUN"
    mkdir -p "$OUT/run" && cp -r "$RUN" "$OUT/run/"          # the run with its new rows comes back
    ;;
B)
    OUT="$OUT/generate" bash scripts/gpu_generate.sh > "$OUT/generate.log" 2>&1
    echo "generate: exit $?" | tee -a "$OUT/steps.txt"; tail -20 "$OUT/generate.log"
    ;;
C)
    step gate-reruns 560 bash scripts/gpu_gate_reruns.sh "$OUT/gate-reruns"
    ;;
D)
    OUT="$OUT/distributed" bash scripts/gpu_distributed.sh > "$OUT/distributed.log" 2>&1
    echo "distributed: exit $?" | tee -a "$OUT/steps.txt"; tail -20 "$OUT/distributed.log"
    ;;
*)
    echo "gpu_outstanding: part '$PART' is not allowed: expected A, B, C or D"; exit 2
    ;;
esac
