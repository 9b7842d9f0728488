#!/usr/bin/env bash
# The GPU suite (tests/gpu) in one device call, from the repository root with the device wheels in .whl/
# (mamba-ssm with its CUDA extension; without it the tests that need mamba-ssm skip, saying so):
#
#   OUT=$OUT bash scripts/gpu_suite.sh [PYTEST ARGS...]     # e.g. -k "kernels or layers", -x
#
# Under $OUT: gpu-suite.log (the GPU's state, every test's outcome, failures in full, the slowest tests)
# and gpu-suite.xml (JUnit: one case per test id, with its time and any failure). SUITE_S limits the
# pytest run (default 540 s, inside a 10-minute call); on time-out pytest is interrupted (SIGINT) and
# still reports what finished. The last line printed is pytest's summary; the exit status is pytest's.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-suite.log") 2>&1
. scripts/device_env.sh || exit 1
python3 -c "import torch, triton; from swimbench import mamba_ref
print('torch', torch.__version__, 'triton', triton.__version__, 'mamba-ssm', mamba_ref.version(),
      'CUDA extension', mamba_ref.has_cuda_scan())"
# pytest-xdist (in the GPU image): WORKERS processes share the GPU, one test file each at a time, so that
# Triton's compilation on a fresh machine runs on several cores; WORKERS=0 runs everything in one process
workers=()
if [ "${WORKERS:-4}" != 0 ] && python3 -c "import xdist" 2>/dev/null; then
    workers=(-n "${WORKERS:-4}" --dist loadfile)
fi
t0=$(date +%s)
timeout -s INT -k 30 "${SUITE_S:-540}" python3 -m pytest tests/gpu -q -p no:cacheprovider --durations=15 \
    ${workers[@]+"${workers[@]}"} --junitxml="$OUT/gpu-suite.xml" "$@" > "$OUT/pytest.txt" 2>&1
rc=$?
cat "$OUT/pytest.txt"
summary=$(grep -E " in [0-9.]+s" "$OUT/pytest.txt" | tail -1)
rm -f "$OUT/pytest.txt"
echo "gpu suite: exit $rc, wall $(( $(date +%s) - t0 )) s"
echo "${summary:-no pytest summary (see above)}"
exit $rc
