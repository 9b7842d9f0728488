#!/usr/bin/env bash
# Whole-model generation (issue 13) in one device call on one H200, about 6-8 minutes:
#   1. tests/gpu/test_generate.py: our dense model against mamba-ssm's MambaLMHeadModel with the same
#      weights (130m size, fp32 and bf16, 64 greedy steps, logits tolerance), and our graph-replayed
#      generation against our eager one;
#   2. swimbench generate --preset 1.4b, default designs (dense, swimba, separated, moe_mamba, rom at
#      E = 8, k = 1, 2, and the mamba_ssm rows), prompt 2048, 256 new tokens, batch 1 and 16, bf16;
#   3. swimbench report on the run; the goals table last.
# Under $OUT: log.txt, gen/<run>/ (results.csv, metadata.json, samples.jsonl, power.csv) and
# gen/<run>/report/ (figures, summary.md). GENERATE_ARGS replaces the run's flags; GENERATE_S its time limit.
# Pass SWIMBENCH_GIT_COMMIT=<commit>: the device copy has no usable .git.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
. scripts/device_env.sh || exit 1
echo "== equivalence: our dense model vs MambaLMHeadModel (GPU), tests/gpu/test_generate.py"
t0=$(date +%s)
timeout -s INT ${CHECK_S:-150} python3 -m pytest tests/gpu/test_generate.py -q -p no:cacheprovider
check=$?
echo "exit $check wall $(( $(date +%s) - t0 )) s"
ARGS=${GENERATE_ARGS:---preset 1.4b --prompt 2048 --new-tokens 256 --batch 1,16 -E 8 -k 1,2 --budget 1 --min-reps 2 --warmup 1}
echo "== swimbench generate $ARGS"
t0=$(date +%s)
timeout -s INT ${GENERATE_S:-330} python3 -m swimbench generate $ARGS --out "$OUT/gen"
gen=$?
echo "exit $gen wall $(( $(date +%s) - t0 )) s"
RUN=$(ls -d "$OUT"/gen/*/ 2>/dev/null | head -1)
if [ -n "$RUN" ]; then
  echo "== swimbench report $RUN"
  timeout 90 python3 -m swimbench report "$RUN" --out "$RUN/report" | tail -3
  echo "== summary (checks exit $check, generate exit $gen)"
  python3 scripts/gpu_generate.py summary "$RUN"
else
  echo "== no run directory: generate exit $gen, checks exit $check"
fi
