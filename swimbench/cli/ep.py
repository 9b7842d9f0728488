"""`swimbench ep`: expert-parallel timing of the routed designs over the GPUs of one host (docs/distributed.md).

Each configuration is timed with its experts sharded over the ranks (tokens exchanged with
all_to_all_single) and, for comparison, replicated on every rank; prefill and decode; the time inside
the collectives apart. Rows go to <run>/ep.csv, the figures and ep.md beside it. Run it once per world
size into one directory (`--append`), e.g. `--gpus 1`, then `--gpus 2 --append DIR`, `--gpus 4 --append
DIR`: the figures put them side by side against the number of GPUs.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..sweeps.spec import DTYPES, MAX_REPS, problem
from . import app
from .errors import UsageError, bad, in_range, run_name, split_ints, split_strs, writable_dir
from .latency import _command, _device
from .launch import launch, rank_device
from .long_runs import warn_if_long
from .rundirs import EXIT_NOTHING

MODES = ("expert", "replicated")


def _list(flag: str, value, field: str, notes: list) -> tuple:
    from ..sweeps.spec import distinct
    from .errors import repeats_note
    given = split_ints(flag, value)
    got = distinct(given)                   # a repeat is one row, with a note
    if repeats_note(flag, given):
        notes.append(repeats_note(flag, given))
    allowed = problem(field, got)
    if allowed is not None:
        raise bad(flag, ",".join(map(str, got)), allowed)
    return got


EXAMPLES = """Examples:

  swimbench ep --gpus 2 -E 8,64                # experts sharded over 2 GPUs of this host (torchrun)

  swimbench ep --gpus 1 --name ep-h100; swimbench ep --gpus 4 --append reports/RUN   # 1 and 4 GPUs, one run

  swimbench ep --device cpu --d-model 64 --seq 32 -E 4,8 --reps 3 --dtype fp32   # CPU-sized, one gloo rank

  swimbench report reports/RUN                 # its figures and ep.md

Docs: docs/distributed.md."""


@app.command("ep", epilog=EXAMPLES)
def ep(
    ctx: typer.Context,
    variants: List[str] = typer.Option(["moe_mamba,rom,swimba"], "--variants", "-v", metavar="NAME,...",
                                       help="Routed designs: moe_mamba, rom, swimba."),
    experts: List[str] = typer.Option(["8,64"], "--experts", "-E", metavar="INT,...", help="Expert counts."),
    top_k: List[str] = typer.Option(["1"], "--top-k", "-k", metavar="INT,...", help="Experts per token."),
    seq: List[str] = typer.Option(["2048"], "--seq", "-s", metavar="INT,...", help="Sequence lengths (prefill)."),
    batch: List[str] = typer.Option(["1"], "--batch", "-b", metavar="INT,...", help="Sequences per GPU."),
    d_model: int = typer.Option(2048, help="Dense reference width D; every design FLOP-matched to it."),
    dtype: str = typer.Option("bf16", help="Weights and activations: " + ", ".join(DTYPES) + "."),
    routing: str = typer.Option("balanced", help="balanced, skewed or learned (per rank's tokens)."),
    modes: List[str] = typer.Option(["expert,replicated"], "--modes", metavar="NAME,...",
                                    help="expert (sharded, exchanged) and/or replicated."),
    reps: int = typer.Option(20, help="Timed calls per phase (every rank runs the same number)."),
    warmup: int = typer.Option(3, help="Untimed calls before them."),
    seed: int = typer.Option(0, help="Seed of the weights (every rank the same) and inputs (per rank)."),
    device: str = typer.Option("auto", help="auto, cuda or cpu."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Parent of a new run directory."),
    name: str = typer.Option("ep", help="Run directory suffix."),
    append: Optional[Path] = typer.Option(None, help="Add the rows to this expert-parallel run directory "
                                                      "(another world size) instead of a new one."),
    gpus: Optional[int] = typer.Option(None, "--gpus", help="Run as this many ranks under torchrun, one GPU "
                                                            "each."),
):
    """Expert-parallel timing: time per token and communication share against GPUs, per design."""
    from ..layers.parallel import SUPPORTED
    from ..sweeps.spec import distinct
    from .errors import repeats_note
    notes: list[str] = [n for n in (repeats_note("--variants", split_strs(variants)),
                                    repeats_note("--modes", split_strs(modes))) if n]
    vs = distinct(split_strs(variants, "--variants"))
    for v in vs:
        if v not in SUPPORTED:
            raise bad("--variants", v, "routed designs: " + ", ".join(SUPPORTED))
    Es, ks = _list("--experts", experts, "experts", notes), _list("--top-k", top_k, "top_k", notes)
    seqs, batches = _list("--seq", seq, "seq", notes), _list("--batch", batch, "batch", notes)
    ms = distinct(split_strs(modes, "--modes"))
    for m in ms:
        if m not in MODES:
            raise bad("--modes", m, "expert and/or replicated")
    for flag, value, field in (("--d-model", d_model, "d_model"), ("--dtype", dtype, "dtype"),
                               ("--routing", routing, "routing"), ("--seed", seed, "seed")):
        allowed = problem(field, value)
        if allowed is not None:
            raise bad(flag, value, allowed)
    in_range("--reps", reps, 1, MAX_REPS)          # latency's bounds: past them a run never ends
    in_range("--warmup", warmup, 0, MAX_REPS)
    run_name("--name", name)
    if min(Es) < 2:
        raise bad("--experts", min(Es), "expert counts >= 2")
    if max(ks) > max(Es):
        raise bad("--top-k", max(ks), f"values at most the largest --experts ({max(Es)})")
    from ..config import Reference
    from ..flops.sizing import match_problem        # the sizes FLOP matching needs, before any work
    allowed = match_problem(sorted({(v, E, k) for v in vs for E in Es for k in ks if k <= E}),
                            Reference(d_model=d_model), routing=routing)
    if allowed is not None:
        raise bad("--d-model", d_model, allowed)
    if append is not None:
        from ..results import ep as ep_table
        if not ep_table.is_ep_run(append):
            raise bad("--append", str(append), "a run directory of swimbench ep")
    if gpus is not None:
        raise typer.Exit(launch(gpus, device, _command(ctx)))
    if device.startswith("cuda:"):
        raise bad("--device", device, "auto, cuda or cpu (rank r runs on cuda:<local rank>)")
    dev = _device(device)
    if append is None:
        writable_dir("--out", out)              # before any work (ranks under --gpus check it each)
    code = _run(ctx, vs, Es, ks, seqs, batches, d_model, dtype, routing, ms, reps, warmup, seed, dev, out, name,
                append, notes)
    if code:
        raise typer.Exit(code)


def _warn_if_long(vs, Es, ks, seqs, batches, ms, d_model, dtype, routing, calls: int, device_type: str) -> None:
    """The run's estimate, when long: said by rank 0 once every input is checked, before the first row."""
    from ..measure import expert_parallel as epm
    from ..measure.estimate import ep_s
    from ..sweeps.spec import Sweep
    points = epm.points(vs, Es, ks, seqs, batches, ms)
    sweep = Sweep(d_model=d_model, dtype=dtype, variants=vs, experts=Es, top_k=ks, seq=seqs, batch=batches,
                  routing=routing, comparator="off")
    warn_if_long(ep_s(sweep, points, calls, device_type), device_type, f"{len(points)} configurations",
                 "fewer --experts, --seq or --reps shorten it" if device_type == "cuda" else
                 "a CPU-sized run: swimbench ep --device cpu --d-model 64 --seq 32 -E 4,8 --reps 3 "
                 "--dtype fp32")


def _run(ctx, vs, Es, ks, seqs, batches, d_model, dtype, routing, ms, reps, warmup, seed, dev, out, name,
         append, notes=()) -> int:
    import torch

    from .. import distributed
    from ..measure import expert_parallel as epm
    from ..measure.env import capture
    from ..report.ep import render
    from ..results import ep as ep_table
    from ..sweeps.spec import Sweep
    from ..sweeps.runner import is_oom, release_memory
    from ..sweeps.spread import Spread

    try:
        world = distributed.join("nccl" if dev.type == "cuda" else "gloo", alone=True)
    except ValueError as e:                 # torchrun's variables, set by hand and wrong
        raise UsageError(str(e)) from None
    dev = rank_device(dev, world, str(dev))
    if dev.type == "cuda" and world.size == 1:
        torch.cuda.set_device(dev.index or 0)
    console = Console(stderr=True, quiet=not world.lead)
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    if world.lead:
        _warn_if_long(vs, Es, ks, seqs, batches, ms, d_model, dtype, routing, reps + warmup, dev.type)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        sweep = Sweep(d_model=d_model, dtype=dtype, variants=vs, experts=Es, top_k=ks, seq=seqs, batch=batches,
                      routing=routing, comparator="off")
        run = None
        if world.lead:
            run = Path(append) if append is not None else ep_table.create(out, name)
        run = Spread(world).agree(run)
        points = epm.points(vs, Es, ks, seqs, batches, ms)
        console.print(f"expert-parallel run: {run}  ({len(points)} configurations x prefill, decode; "
                      f"{world.size} rank(s), backend {world.backend}, device={dev.type})")
        started = time.time()
        oom = []
        for p in points:
            try:
                rows = epm.measure(p, sweep, world, dev, warmup, reps, seed)
            except Exception as e:          # out of memory: said, recorded in the attempt, and on
                if not is_oom(e):
                    raise
                oom.append(p)
                release_memory()
                console.print(f"[yellow]oom[/] {p.variant} E={p.experts} k={p.top_k} seq={p.seq} b={p.batch} "
                              f"{p.mode}: {escape(' '.join(str(e).split())[:200])}")
                continue
            if world.lead:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                ep_table.add(run, [{**r, "measured_at": stamp} for r in rows])
                for r in rows:
                    console.print(f"{p.variant} E={p.experts} k={p.top_k} seq={p.seq} b={p.batch} {p.mode:10s} "
                                  f"{r['phase']:7s} x{world.size}: {r['step_ms']:.3f} ms, "
                                  f"{r['us_per_token']:.4f} us/token, comm {100 * r['comm_share']:.1f}%")
        if world.lead:
            env = capture(dev)
            env["command"], env["argv"] = _command(ctx), sys.argv
            ep_table.add_attempt(run, {"command": env["command"], "world_size": world.size,
                                       "backend": world.backend, "wall_s": round(time.time() - started, 3),
                                       "points": len(points), "environment": env,
                                       "oom": [f"{p.variant}/E{p.experts}/k{p.top_k}/seq{p.seq}/b{p.batch}/{p.mode}"
                                               for p in oom]})
            if len(oom) == len(points):
                console.print(f"[red]nothing measured:[/] every configuration ran out of memory ({run})")
                return EXIT_NOTHING
            for path in render(run, run):
                console.print(f"wrote {path}")
        return 0
    except ValueError as e:
        raise UsageError(str(e)) from None
    finally:
        torch.set_num_threads(threads)
        distributed.leave()

