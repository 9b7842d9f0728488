# swimbench: `make run` installs and runs the main job on its default profile; `make test` installs
# and runs the tests. Both build .venv on first use; see README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# On a CPU machine, take the CPU build of torch (a plain `torch` requirement pulls a multi-GB CUDA
# build). Skipped when the venv already imports a torch, e.g. one made with --system-site-packages.
TORCH_CPU ?= torch==2.13.0
# mamba-ssm, our reference and comparator, builds on a CPU machine only this way (shared/wheels),
# and without its dependencies: they are tilelang, nvidia-cutlass-dsl, quack-kernels, transformers...
# (GBs a CPU machine never runs). What its package imports, beside torch, triton and einops (in
# pyproject.toml), is huggingface_hub (Mamba2's hub mixin) and transformers (its language model,
# MambaLMHeadModel, which `swimbench generate` compares with); swimbench/mamba_ref.py copes with the
# rest being absent.
MAMBA     ?= mamba-ssm==2.3.2.post1
MAMBA_DEPS ?= huggingface_hub transformers

.PHONY: install run flops test gate lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@echo "install 1/6: virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "install 2/6: pip"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null \
	    && echo "install 3/6: torch: already in the venv, kept" \
	    || { echo "install 3/6: $(TORCH_CPU), CPU build (a few minutes on a cold pip cache)" \
	         && $(BIN)/python -m pip install -q "$(TORCH_CPU)"; }
	@echo "install 4/6: swimbench, editable, with its test extra"
	@# setuptools boxes a warning about editable installs that is no news here; others still show
	@PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e ".[test]"
	@# mamba-ssm's own dependencies are left out on purpose: what swimbench uses of them goes in
	@# first, and mamba-ssm last with --no-deps, which leaves pip's resolver nothing to warn about
	@echo "install 5/6: $(MAMBA) without its CUDA extension, and $(MAMBA_DEPS)"
	@$(BIN)/python -m pip install -q $(MAMBA_DEPS)
	@MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
	    $(BIN)/python -m pip install -q --no-build-isolation --no-deps "$(MAMBA)"
	@echo "install 6/6: import check (swimbench.mamba_ref)"
	@$(BIN)/python -c "from swimbench import mamba_ref; mamba_ref.Mamba(); mamba_ref.selective_scan_ref(); mamba_ref.lm_head_model()"
	@touch $@
	@echo "installed: $(BIN)/swimbench"

run: install
	$(BIN)/swimbench latency

flops: install
	$(BIN)/swimbench flops

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/python -m ruff check .

gate: install
	$(BIN)/swimbench gate --baseline profiles/baselines/flops.json --show changes

clean:
	rm -rf $(VENV) build *.egg-info
