#!/usr/bin/env bash
# The GPU acceptance of `swimbench latency` in one device call (docs/latency.md, docs/performance.md).
# Run from the repository root with the device wheels in .whl/; everything lands under $OUT (<= 8 files):
#   log.txt  checks.json  compare.json  a/<run>/{results.csv,metadata.json,samples.jsonl,power.csv}
#   b/<run>/results.csv  (the second run of the dense row, for the 3% repeatability check)
# The device machine gets the tree without .git: pass SWIMBENCH_GIT_COMMIT=<commit> to record it.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1
python3 -c "import torch, triton, swimbench.kernels as k; from swimbench.measure.workload import scan_impl as s
print('torch', torch.__version__, 'triton', triton.__version__, 'scans:', {v: s(v, 'cuda') for v in ('dense', 'swimba', 'separated')})"

echo "== checks: engine vs do_bench, energy counter vs power trace"
timeout -s INT ${CHECKS_S:-120} python3 scripts/gpu_latency.py checks --json "$OUT/checks.json"

echo "== acceptance: swimbench latency --seq 8192 (default profile)"
t0=$(date +%s)
timeout -s INT ${RUN_A_S:-330} python3 -m swimbench latency --seq 8192 --out "$OUT/a"
echo "exit $? wall $(( $(date +%s) - t0 )) s"

echo "== repeat: the dense row again in a separate process"
timeout -s INT ${RUN_B_S:-60} python3 -m swimbench latency --seq 8192 -v dense --no-energy --no-mamba-ssm --out "$OUT/b"
rm -f "$OUT"/b/*/samples.jsonl "$OUT"/b/*/power.csv
python3 scripts/gpu_latency.py compare "$OUT"/a/*/ "$OUT"/b/*/ --json "$OUT/compare.json"
