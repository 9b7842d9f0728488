#!/usr/bin/env bash
# Does `swimbench latency` on the GPU stop cleanly when `timeout` signals it? Prints which setup step
# (CUDA, NVML, the power sampler, mamba-ssm, Triton, graph capture) touches the SIGINT/SIGTERM
# handlers, then interrupts a short sweep with SIGINT and with SIGTERM and shows the run's status.
# Run from the repository root with the device wheels in .whl/; logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1
export PYTHONFAULTHANDLER=1
python3 - <<'PY'
import signal
import torch

def show(step):
    print(f"{step:28s} SIGINT={signal.getsignal(signal.SIGINT)!s:45.45s} SIGTERM={signal.getsignal(signal.SIGTERM)}")

show("start")
import swimbench.cli  # noqa: F401
show("import swimbench.cli")
torch.zeros(1, device="cuda")
show("CUDA context")
from swimbench.measure.energy import Nvml, PowerSampler
nvml = Nvml.open(torch.device("cuda"))
show("NVML open")
sampler = PowerSampler(nvml, 0.02).start()
show("power sampler")
from swimbench import mamba_ref
mamba_ref.Mamba()
show("mamba_ssm")
from swimbench.config import Reference
from swimbench.flops.sizing import match
from swimbench.layers import build_layer
from swimbench.measure.graphs import capture
layer = build_layer(match("moe_mamba", Reference(), 2, 1).cfg, device="cuda", dtype=torch.bfloat16)
x = torch.randn(1, 512, 2048, device="cuda", dtype=torch.bfloat16)
with torch.no_grad():
    layer(x)
    show("Triton forward")
    capture(lambda: layer(x))()
show("graph capture")
sampler.stop()
nvml.close()
PY
for sig in INT TERM; do
  echo "== timeout -s $sig 30 swimbench latency ..."
  timeout -s $sig 30 python3 -m swimbench latency -v dense,moe_mamba -E 2 -k 1 --seq 2048,4096,8192 \
      --batch 1,4 --budget 0.5 --out "$OUT/$sig" > "$OUT/$sig.log" 2>&1
  echo "rc $?"
  tail -4 "$OUT/$sig.log"
  python3 -c "import json, glob; m = json.load(open(glob.glob('$OUT/$sig/*/metadata.json')[0])); \
print('run status:', m['status'], '| attempt:', m['attempts'][-1].get('status'), m['attempts'][-1].get('measured'))"
  rm -f "$OUT"/$sig/*/samples.jsonl "$OUT"/$sig/*/power.csv
done
