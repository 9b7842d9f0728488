#!/usr/bin/env bash
# torch.distributed on the lent GPU machine (docs/distributed.md). Run from the repository root with the
# device wheels in .whl/; logs and run directories under $OUT.
#
# Default, one H200 (NCCL at world size 1; about 3 minutes):
#   1. tests/gpu/test_distributed.py as the ranks of torchrun: the expert-parallel layers equal the
#      single-process layers (fp32 and bf16, E = 8, 13, 64, capacity drops), NCCL all_to_all_single with
#      one rank (the GPU suite runs the same tests in its own process, a group of one rank);
#   2. `swimbench latency --gpus 1`: a small sweep through the launcher (torchrun, one rank): rows carry
#      rank, world_size and device_index; metadata carries every GPU and `nvidia-smi topo -m`;
#   3. `swimbench ep --gpus 1`: MoE-Mamba, RoM and Swimba at E = 8 and 64, experts "sharded" over one
#      rank (the exchange with itself) and replicated; ep.csv, figures and ep.md.
#
# MULTI=1, on nvidia-h200-x2, -x4 or -x8 (GPUS: how many, default all visible): the issue's acceptance runs:
#   4. the check at 2 ranks and at GPUS ranks;
#   5. the default profile on 1 GPU, then spread over GPUS (compare wall_s in the two metadata.json files:
#      the spread run should take at most 1.15/GPUS of the first, plus start-up), and a two-run report;
#   6. `swimbench ep` at E = 8 and 64 over 1, 2, 4 (and 8) GPUs into one run directory, figures included.
#
# NVLink multicast is never used: the launcher and every process set the three variables below
# themselves (swimbench/distributed.py); they are exported here too, for the log.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
. scripts/device_env.sh || exit 1
export PYTHONFAULTHANDLER=1
export SWIMBENCH_GIT_COMMIT=${SWIMBENCH_GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}
nvidia-smi topo -m
env | grep -E '^(NCCL_NVLS_ENABLE|TORCH_SYMM_MEM_DISABLE_MULTICAST|NVSHMEM_DISABLE_NVLS)='
status=0
step() { echo; echo "=== $1 ($(date -u +%H:%M:%S))"; }
check() {   # check N: the layer tests as N ranks, each rank a pytest process
  timeout -s INT 300 python3 -m torch.distributed.run --nnodes 1 --nproc-per-node "$1" --master-addr 127.0.0.1 \
    --master-port $((29500 + $1)) -m pytest tests/gpu/test_distributed.py -q -p no:cacheprovider || status=1
}

step "1. expert-parallel layers against single-process layers, NCCL, 1 rank"
check 1

step "2. swimbench latency --gpus 1 (torchrun, one rank)"
timeout 300 swimbench latency --gpus 1 -v dense,swimba,moe_mamba,rom -E 8 -k 1 --seq 1024 --budget 0.2 \
  --no-energy --out "$OUT" --name gpus1 || status=1
python3 - "$OUT" <<'PY' || status=1
import json, sys
from pathlib import Path
import pandas as pd
(run,) = sorted(Path(sys.argv[1]).glob("*-gpus1"))[-1:]
df = pd.read_csv(run / "results.csv")
print(df[["key", "status", "rank", "world_size", "device", "device_index", "prefill_ms", "decode_us"]].to_string())
env = json.loads((run / "metadata.json").read_text())["environment"]
print("gpus in metadata:", [g["name"] for g in env.get("gpus", [])], "| topology captured:", bool(env.get("topology")))
assert set(df["status"]) == {"ok"} and set(df["rank"]) == {0} and set(df["world_size"]) == {1}
PY

step "3. swimbench ep --gpus 1: E = 8, 64"
timeout 420 swimbench ep --gpus 1 -E 8,64 --reps 10 --out "$OUT" --name ep || status=1

if [ "${MULTI:-0}" = 1 ]; then
  GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
  step "4. the check at 2 and $GPUS ranks"
  check 2
  [ "$GPUS" -gt 2 ] && check "$GPUS"

  step "5. the default profile: 1 GPU, then $GPUS GPUs"
  timeout 900 swimbench latency --gpus 1 --out "$OUT" --name default-x1 || status=1
  timeout 900 swimbench latency --gpus "$GPUS" --out "$OUT" --name "default-x$GPUS" || status=1
  one=$(ls -d "$OUT"/*-default-x1 | tail -1); many=$(ls -d "$OUT"/*-default-x"$GPUS" | tail -1)
  python3 - "$one" "$many" "$GPUS" <<'PY'
import json, sys
one, many, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
wall = [json.loads(open(f"{d}/metadata.json").read())["attempts"][-1]["wall_s"] for d in (one, many)]
print(f"wall: 1 GPU {wall[0]:.0f} s, {n} GPUs {wall[1]:.0f} s: {wall[1] / wall[0]:.3f} of it "
      f"(acceptance: at most {1.15 / n:.3f} plus start-up)")
PY
  swimbench report "$one" "$many" --out "$OUT/default-x1-vs-x$GPUS" || status=1

  step "6. swimbench ep over 1, 2, 4 (8) GPUs into one run"
  ep=$(ls -d "$OUT"/*-ep | tail -1)
  for n in 2 4 8; do
    [ "$n" -le "$GPUS" ] || continue
    timeout 600 swimbench ep --gpus "$n" -E 8,64 --reps 20 --append "$ep" || status=1
  done
  cat "$ep/ep.md"
fi
step "done: status $status"
exit $status
