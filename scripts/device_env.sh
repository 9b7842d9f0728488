# Source at the start of a command on the lent GPU machine (no package registry there):
#   . scripts/device_env.sh
# installs the carried wheels (.whl/: fvcore, mamba-ssm with its CUDA extension) and swimbench
# itself without resolving dependencies, on top of the image's CUDA torch and Triton.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
set +e
