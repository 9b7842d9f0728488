"""`--gpus N` of `swimbench latency` and `swimbench ep`: the command again as N ranks under torchrun, one
GPU each (docs/distributed.md); and the device a rank runs on."""
from __future__ import annotations

import shlex
import subprocess

from .errors import UsageError, bad


def launch(gpus: int, device: str, command: str) -> int:
    """Run `command` (as typed: "swimbench <subcommand> ...") again as `gpus` ranks under torchrun,
    without its --gpus; returns torchrun's exit status. Bad input is a one-line error (exit 2)."""
    import torch

    from .. import distributed
    try:
        already = distributed.launched()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if already:
        raise UsageError("--gpus: this process is already a rank of a torchrun launch; drop --gpus")
    if gpus < 1:
        raise bad("--gpus", gpus, "an integer >= 1")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        raise UsageError(f"--gpus {gpus}: no CUDA GPU is visible here (on the CPU, run ranks with torchrun "
                         f"and --device cpu: docs/distributed.md)")
    if gpus > visible:
        raise bad("--gpus", gpus, f"an integer from 1 to {visible}, the GPUs visible here")
    if device not in ("auto", "cuda"):
        raise bad("--device", device, "auto or cuda with --gpus (rank r runs on cuda:r)")
    words, args = shlex.split(command)[1:], []
    while words:
        w = words.pop(0)
        if w == "--gpus":
            words.pop(0)
        elif not w.startswith("--gpus="):
            args.append(w)
    return subprocess.run(distributed.torchrun(gpus, args), env=distributed.launch_env()).returncode


def rank_device(dev, world, spec: str):
    """Under torchrun, rank r of a host runs on cuda:<local rank> (or on the CPU, where it was asked)."""
    if world.size == 1 or dev.type != "cuda":
        return dev
    import torch
    if spec.startswith("cuda:"):
        raise bad("--device", spec, "auto or cuda under torchrun (rank r runs on cuda:<local rank>)")
    if world.local_rank >= torch.cuda.device_count():
        raise UsageError(f"rank {world.rank} has no GPU: {torch.cuda.device_count()} visible for "
                         f"{world.size} ranks")
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)
