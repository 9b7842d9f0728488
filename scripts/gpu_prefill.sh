#!/usr/bin/env bash
# Prefill at its best (issue 10) in one device call: kernel checks and timings, the layer checks, where a
# layer's prefill time goes, and optionally a latency run and a rerun for the gate. Under $OUT (at most
# 8 files come back): log.txt, checks.csv, kernels.csv (printed in the log too; NO_CSV=1 drops them),
# lat/<run>/ (LATENCY_ARGS), rerun/<run>/ (RERUN_ARGS; its power trace dropped).
# Pass SWIMBENCH_GIT_COMMIT=<commit>: the device copy has no usable .git.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1
echo "== kernels: checks and timings"
timeout ${KERNELS_S:-240} python3 scripts/gpu_prefill.py --out "$OUT" ${PREFILL_ARGS:-}
[ "${NO_CSV:-0}" = 1 ] && rm -f "$OUT/checks.csv" "$OUT/kernels.csv"
echo "== layer checks"
timeout ${LAYERS_S:-120} python3 scripts/gpu_layers.py
if [ "${PROFILE_S:-60}" != 0 ]; then
  echo "== where prefill time goes"
  timeout ${PROFILE_S:-60} python3 scripts/gpu_profile_layer.py dense:1:1 swimba:8:1 swimba:8:2 --seq 8192 --top 14
fi
if [ -n "${LATENCY_ARGS:-}" ]; then
  echo "== swimbench latency $LATENCY_ARGS"
  t0=$(date +%s)
  timeout -s INT ${LATENCY_S:-200} python3 -m swimbench latency $LATENCY_ARGS --out "$OUT/lat"
  echo "exit $? wall $(( $(date +%s) - t0 )) s"
fi
if [ -n "${RERUN_ARGS:-}" ]; then
  echo "== rerun for the gate: swimbench latency $RERUN_ARGS"
  timeout -s INT ${RERUN_S:-90} python3 -m swimbench latency $RERUN_ARGS --out "$OUT/rerun"
  rm -f "$OUT"/rerun/*/power.csv
fi
