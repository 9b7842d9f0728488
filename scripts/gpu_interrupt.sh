#!/usr/bin/env bash
# Does `swimbench latency` on the GPU stop cleanly when `timeout` signals it? Prints which setup step
# (CUDA, NVML, the power sampler, mamba-ssm, Triton, graph capture) touches the SIGINT/SIGTERM
# handlers, then stops a short sweep in each way of HOW (timeout-SIG, foreground-SIG: timeout
# --foreground, kill-SIG: one kill from the shell; default timeout-INT timeout-TERM) and shows the
# status the run recorded.
# Run from the repository root with the device wheels in .whl/; logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1
export PYTHONFAULTHANDLER=1
[ -n "${HOW:-}" ] || python3 - <<'PY'
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
from swimbench.designs import build_layer
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
echo "shell: $(grep -E '^Sig(Blk|Ign)' /proc/$$/status | tr '\n' ' ')"
python3 -c "print('python:', ' '.join(l.strip() for l in open('/proc/self/status') if l.startswith(('SigBlk', 'SigIgn'))))"
SWEEP="-v dense,moe_mamba -E 2 -k 1 --seq 2048,4096,8192 --batch 1,4 --budget 0.5"
for how in ${HOW:-timeout-INT timeout-TERM}; do
  echo "== $how: swimbench latency $SWEEP"
  case $how in
    timeout-*)   timeout -s ${how#timeout-} 30 python3 -m swimbench latency $SWEEP --out "$OUT/$how" > "$OUT/$how.log" 2>&1 ;;
    foreground-*) timeout --foreground -s ${how#foreground-} 30 python3 -m swimbench latency $SWEEP --out "$OUT/$how" \
                    > "$OUT/$how.log" 2>&1 ;;
    kill-*)      python3 -m swimbench latency $SWEEP --out "$OUT/$how" > "$OUT/$how.log" 2>&1 &
                 pid=$!; sleep 30; kill -${how#kill-} $pid; wait $pid ;;
  esac
  echo "rc $?"
  sig=$how
  tail -4 "$OUT/$sig.log"
  python3 -c "import json, glob; m = json.load(open(glob.glob('$OUT/$sig/*/metadata.json')[0])); \
print('run status:', m['status'], '| attempt:', m['attempts'][-1].get('status'), m['attempts'][-1].get('measured'))"
  rm -rf "$OUT/$sig"
done
