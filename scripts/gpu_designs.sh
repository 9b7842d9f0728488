#!/usr/bin/env bash
# The five designs on the GPU in one device call (issue 6): the layer checks of
# scripts/gpu_layers.py, then `swimbench latency --seq 8192` on the default profile, which includes
# MoE-Mamba and RoM. Run from the repository root with the device wheels in .whl/. Under $OUT:
#   log.txt  run/<timestamp>-default/{results.csv,metadata.json,samples.jsonl,power.csv}
# The device machine gets the tree without .git: pass SWIMBENCH_GIT_COMMIT=<commit> to record it.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1

echo "== layer checks: decode vs prefill, CUDA-graph steps, dense vs mamba-ssm (bf16, D=2048)"
timeout -s INT "${LAYERS_S:-150}" python3 scripts/gpu_layers.py

echo "== swimbench latency --seq 8192 (default profile: dense, swimba, separated, moe_mamba, rom)"
t0=$(date +%s)
# SIGINT on time-out: the sweep keeps every completed row, and --resume measures the rest.
timeout -s INT "${RUN_S:-400}" python3 -m swimbench latency --seq 8192 --out "$OUT/run"
echo "exit $? wall $(( $(date +%s) - t0 )) s"
