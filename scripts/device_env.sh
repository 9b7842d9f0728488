# Source at the start of a command on the lent GPU machine (no package registry there):
#   . scripts/device_env.sh
# installs the carried wheels (.whl/: fvcore, mamba-ssm with its CUDA extension) and swimbench
# itself without resolving dependencies, on top of the image's CUDA torch and Triton, then prints
# the GPU's state and the time, so that every log records them.
set -e
# without .whl/ (a call that cannot carry the 40 MB mamba-ssm wheel beside the tree) mamba-ssm is absent
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
set +e
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
date -u +"%Y-%m-%dT%H:%M:%SZ"
