"""`swimbench generate`: whole models of every design generating text: time to first token, per-token decode
latency, tokens/s, energy per generated token and peak memory, beside mamba-ssm's MambaLMHeadModel with its
own generate(cg=True). Rows go to a run directory as `latency`'s do (atomic rows, --resume, oom rows, the
environment), which `report` and `gate` read. Docs: docs/generate.md.
"""
from __future__ import annotations

import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .. import designs
from ..config import ROUTINGS
from ..models.presets import PRESETS
from ..sweeps.spec import COMPARATOR, COMPARATOR_MODES, DTYPES, GenerateSweep, MeasureSettings
from . import app
from .errors import UsageError, bad, one_of, positive, split_ints, split_strs
from .latency import EXIT_ERRORS, EXIT_INTERRUPTED, _device, _gpu_name, _iso

# Without a GPU, what runs in minutes on a CPU: the tiny model, short prompts, a few tokens.
CPU_DEFAULTS = {"preset": "tiny", "prompt": (24,), "new_tokens": 6, "batch": (1, 3), "experts": (3,),
                "top_k": (1,)}
GPU_ONLY = ("energy",)


def _sweep(cuda: bool, **given) -> GenerateSweep:
    base = GenerateSweep() if cuda else GenerateSweep(**CPU_DEFAULTS)
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def _check(sweep: GenerateSweep, gave_model: bool) -> None:
    if sweep.preset is not None:
        one_of("--preset", [sweep.preset], tuple(PRESETS))
    elif sweep.d_model is None or sweep.n_layer is None:
        raise UsageError("--preset none needs --d-model and --layers")
    for flag, v in (("--d-model", sweep.d_model), ("--layers", sweep.n_layer), ("--vocab-size", sweep.vocab_size)):
        if v is not None:
            positive(flag, v)
    if sweep.vocab_size is not None and sweep.vocab_size < 2:
        raise bad("--vocab-size", sweep.vocab_size, "an integer >= 2")
    one_of("--variants", sweep.variants, designs.names())
    for flag, values in (("--experts", sweep.experts), ("--top-k", sweep.top_k), ("--prompt", sweep.prompt),
                         ("--batch", sweep.batch)):
        for v in values:
            positive(flag, v)
    if sweep.new_tokens < 2:
        raise bad("--new-tokens", sweep.new_tokens, "an integer >= 2 (the first token and a decode step)")
    if any(designs.get(v).experts for v in sweep.variants) and max(sweep.top_k) > max(sweep.experts):
        raise bad("--top-k", ",".join(map(str, sweep.top_k)),
                  f"values at most the largest --experts ({max(sweep.experts)})")
    one_of("--dtype", [sweep.dtype], DTYPES)
    one_of("--routing", [sweep.routing], ROUTINGS)
    one_of("--mamba-ssm", [sweep.comparator], COMPARATOR_MODES)


@app.command()
def generate(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-m", help="Model size: " + ", ".join(PRESETS)
                                         + ", or none with --d-model and --layers (default: 1.4b on a GPU, "
                                         "tiny without one)."),
    d_model: Optional[int] = typer.Option(None, help="Model width (replaces the preset's)."),
    layers: Optional[int] = typer.Option(None, "--layers", "-L", help="Blocks (replaces the preset's)."),
    vocab_size: Optional[int] = typer.Option(None, help="Vocabulary (replaces the preset's; padded to 8)."),
    variants: Optional[List[str]] = typer.Option(None, "--variants", "-v",
                                                 help="Designs: " + ", ".join(designs.names()) + "."),
    experts: Optional[List[str]] = typer.Option(None, "--experts", "-E", help="Expert counts, e.g. 4,8."),
    top_k: Optional[List[str]] = typer.Option(None, "--top-k", "-k", help="Experts per token, e.g. 1,2."),
    routing: Optional[str] = typer.Option(None, help="Expert choice: balanced, skewed or learned."),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", "-p", help="Prompt lengths, e.g. 2048,8192."),
    new_tokens: Optional[int] = typer.Option(None, "--new-tokens", "-n", help="Tokens generated per sequence."),
    batch: Optional[List[str]] = typer.Option(None, "--batch", "-b", help="Batch sizes, e.g. 1,16."),
    dtype: Optional[str] = typer.Option(None, help="Weights and activations: " + ", ".join(DTYPES) + "."),
    mamba_ssm: Optional[bool] = typer.Option(None, "--mamba-ssm/--no-mamba-ssm",
                                             help="mamba-ssm's MambaLMHeadModel rows (GPU; default: when "
                                                  "they can run)."),
    budget: float = typer.Option(1.0, help="Seconds of timed generations per row (at least one)."),
    min_reps: int = typer.Option(3, help="At least this many timed generations, budget permitting."),
    warmup: int = typer.Option(1, help="Untimed generations first."),
    energy: bool = typer.Option(True, "--energy/--no-energy", help="Energy per generated token (NVML, GPU)."),
    energy_window: float = typer.Option(1.0, help="Seconds (>= 1) of decode steps per energy figure."),
    seed: int = typer.Option(0, help="Seed of the weights and prompts."),
    device: str = typer.Option("auto", help="auto, cuda, cuda:N or cpu."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Parent of the run directory."),
    name: Optional[str] = typer.Option(None, help="Run directory suffix (default: generate-PRESET)."),
    resume: Optional[Path] = typer.Option(None, help="Measure only the rows missing from RUN_DIR."),
):
    """Whole-model prefill and generation of every design: TTFT, per-token latency, tokens/s, J/token."""
    dev = _device(device)
    cuda = dev.type == "cuda"
    if not budget > 0:
        raise bad("--budget", budget, "a number > 0")
    positive("--min-reps", min_reps)
    positive("--warmup", warmup)
    if not energy_window >= 1:
        raise bad("--energy-window", energy_window, "a number >= 1")
    if name is not None and (not name or any(c in name for c in "/\\")):
        raise bad("--name", name, "a non-empty name without slashes")
    mode = None if mamba_ssm is None else ("on" if mamba_ssm else "off")
    given = {"preset": None if preset in (None, "none") else preset, "d_model": d_model, "n_layer": layers,
             "vocab_size": vocab_size, "dtype": dtype, "routing": routing, "new_tokens": new_tokens,
             "comparator": mode,
             "variants": tuple(split_strs(variants)) if variants else None,
             "experts": tuple(split_ints("--experts", experts)) if experts else None,
             "top_k": tuple(split_ints("--top-k", top_k)) if top_k else None,
             "prompt": tuple(split_ints("--prompt", prompt)) if prompt else None,
             "batch": tuple(split_ints("--batch", batch)) if batch else None}
    settings = MeasureSettings(budget_s=budget, min_reps=min_reps, warmup_reps=warmup, energy=energy and cuda,
                               energy_window_s=energy_window, seed=seed)
    from ..results import RunDir
    run = None
    if resume is not None:
        try:
            run = RunDir.existing(resume)
            meta = run.read_metadata()
            if meta.get("tool") != "swimbench generate":
                raise ValueError(f"written by {meta.get('tool')}")
            sweep = GenerateSweep.from_dict(meta["generate"])
            settings = MeasureSettings.from_stored(meta["settings"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise bad("--resume", str(resume), f"a run directory of swimbench generate ({e})") from None
        if was_other_device(meta, dev):
            raise bad("--resume", str(resume), "a run measured on this device")
    else:
        if preset == "none":
            given["preset"] = None
            sweep = replace(_sweep(cuda, **given), preset=None)
        else:
            sweep = _sweep(cuda, **given)
        _check(sweep, d_model is not None)
    from ..measure.generation import dims_of
    try:
        dims = dims_of(sweep)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with_comparator, why = _comparators(sweep.comparator, cuda, mode == "on")
    notes = [why] if why else []
    if not cuda:
        notes.append("decode steps run eagerly on the CPU (CUDA graphs need a GPU): per-token times include "
                     "Python's launches")
        if dims.d_model * dims.n_layer * max(sweep.prompt) > 2 ** 21:
            notes.append(f"the CPU runs the reference scans, a Python loop over time: a {dims.name} model "
                         f"(d_model {dims.d_model}, {dims.n_layer} layers) with prompt {max(sweep.prompt)} "
                         f"will take long (the tiny preset runs in seconds)")
    points = sweep.points(dims.name, dims.n_layer, comparator=with_comparator)
    code = _run(ctx, dev, sweep, settings, points, run, out, name or f"generate-{dims.name}", notes)
    if code:
        raise typer.Exit(code)


def _comparators(mode: str, cuda: bool, asked: bool) -> tuple[bool, Optional[str]]:
    """Whether mamba-ssm's MambaLMHeadModel rows run, and a note. Without its CUDA extension they run on its
    reference scan and say so in scan_impl; without a GPU or without mamba-ssm they cannot run."""
    if mode == "off":
        return False, None
    from .. import mamba_ref
    why = ("its generate needs a CUDA GPU" if not cuda else
           "mamba-ssm is not importable" if mamba_ref.mamba_ssm() is None else None)
    if why is not None:
        if asked:
            raise UsageError(f"--mamba-ssm: the mamba-ssm rows cannot run here: {why}")
        return False, f"mamba-ssm comparator rows skipped: {why}"
    if not mamba_ref.has_cuda_scan():
        return True, ("mamba-ssm's CUDA extension is missing: its rows run its reference scan (scan_impl says "
                      "so) and their time to first token is not mamba-ssm's")
    return True, None


def was_other_device(meta: dict, dev) -> bool:
    was = meta.get("environment") or {}
    return was.get("device") != dev.type or (was.get("gpu") or {}).get("name") != _gpu_name(dev)


def _command() -> str:
    if sys.argv[1:2] == ["generate"]:
        return shlex.join(["swimbench", *sys.argv[1:]])
    return "swimbench generate (called in-process)"


def _run(ctx, dev, sweep, settings, points, run, out, name, notes) -> int:
    import torch

    from ..measure.energy import Nvml, NvmlUnavailable, PowerSampler
    from ..measure.env import capture
    from ..measure.generation import GenerationMeasurer
    from ..results import RunDir
    from ..sweeps.runner import run_sweep, stop_on_signals

    console = Console(stderr=True)
    cuda = dev.type == "cuda"
    nvml = sampler = None
    if settings.energy:
        try:
            nvml = Nvml.open(dev)
        except NvmlUnavailable as e:
            notes.append(f"energy columns empty: {e}")
    elif cuda:
        notes.append("energy not measured (--no-energy)")
    else:
        notes.append(f"energy columns empty: device={dev.type} has no NVML energy counter")
    env = capture(dev, nvml)
    env["command"], env["argv"] = _command(), sys.argv
    started = time.time()
    if run is None:
        run = RunDir.create(out, name)
        meta = {"tool": "swimbench generate", "created": _iso(started), "status": "running",
                "profile": {"name": name, "path": None, "description": "swimbench generate"},
                "generate": sweep.as_dict(), "settings": settings.as_dict(),
                "comparator": any(p.variant == COMPARATOR for p in points),
                "points": [p.key for p in points], "environment": env, "attempts": []}
    else:
        meta = run.read_metadata()
    attempt = len(meta["attempts"]) + 1
    meta["attempts"].append({"attempt": attempt, "started": _iso(started), "command": env["command"],
                             "environment": env, "notes": notes})
    run.write_metadata(meta)
    results = run.results(order=meta["points"])
    done = results.done_keys()
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    todo = [p for p in points if p.key not in done]
    console.print(f"run directory: {run.path}  ({len(points)} configurations"
                  + (f", {len(points) - len(todo)} already done" if done else "") + f", device={dev.type})")
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)               # as latency: tiny CPU models are op overhead
    if nvml is not None:
        sampler = PowerSampler(nvml, settings.power_interval_ms / 1e3).start()
    measurer = GenerationMeasurer(sweep, settings, dev, nvml, sampler,
                                  note=lambda s: console.print(f"[yellow]note:[/] {s}"))

    def record(point, row, samples):
        row.update({"device": dev.type, "attempt": attempt, "measured_at": _iso(time.time())})
        for k in ("model", "new_tokens"):
            row.setdefault(k, getattr(point, k))
        if samples is not None:
            run.append_samples(point.key, attempt, samples)
        results.put(row)
        if sampler is not None:
            run.append_power(sampler.take_new())

    def on_end(point, row):
        console.print(_line(point, row))

    outcome = None
    try:
        with stop_on_signals() as rearm:
            outcome = run_sweep(points, measurer, record, done, on_start=lambda p: rearm(), on_end=on_end)
    except KeyboardInterrupt:
        pass
    finally:
        torch.set_num_threads(threads)
        if sampler is not None:
            sampler.stop()
            run.append_power(sampler.take_new())
        if nvml is not None:
            nvml.close()
    interrupted = outcome is None or outcome.interrupted
    meta["status"] = ("interrupted" if interrupted else "complete with errors" if outcome.errors else "complete")
    meta["attempts"][-1].update({"finished": _iso(time.time()), "wall_s": round(time.time() - started, 3),
                                 "status": meta["status"],
                                 **({} if outcome is None else {"measured": len(outcome.measured),
                                                                "oom": outcome.oom, "errors": outcome.errors})})
    run.write_metadata(meta)
    stdout = Console() if Console().is_terminal else Console(width=200)
    stdout.print(summary_table(results.frame(), dev.type))
    console.print(f"results: {run.path / run.RESULTS}  (wall {time.time() - started:.1f} s)")
    if interrupted:
        console.print(f"[yellow]interrupted[/]: completed rows are kept; resume with: "
                      f"swimbench generate --resume {shlex.quote(str(run.path))}")
        return EXIT_INTERRUPTED
    if outcome.errors:
        console.print(f"[red]{len(outcome.errors)} configuration(s) failed[/]: see the error column")
        return EXIT_ERRORS
    return 0


def _line(point, row) -> str:
    if row.get("status") != "ok":
        return f"[red]{row.get('status')}[/] {point.label()}: {row.get('error', '')}"
    return (f"[green]ok[/] {point.label()}: first token {row['ttft_ms']:.2f} ms, {row['token_ms']:.3f} ms per token "
            f"(p10 {row['token_ms_p10']:.3f}, p90 {row['token_ms_p90']:.3f}), {row['gen_tokens_per_s']:,.0f} tokens/s")


def summary_table(df, device: str) -> Table:
    """Per row: time to first token, per-token latency and its spread, tokens/s, against dense's and
    mamba-ssm's rows of the same prompt and batch."""
    import pandas as pd
    ok = df[df["status"] == "ok"]
    base = {(r.seq, r.batch): r.token_ms for r in ok.itertuples() if r.variant == "dense"}
    theirs = {(r.seq, r.batch): r.token_ms for r in ok.itertuples() if r.variant == COMPARATOR}

    def f(v, fmt):
        return "" if v is None or pd.isna(v) else format(v, fmt)
    table = Table(title=f"swimbench generate, device={device}: medians", box=box.SIMPLE_HEAD)
    cols = ("model", "variant", "E", "k", "prompt", "new", "b", "TTFT ms", "ms/token", "p10", "p90", "x dense",
            "x mamba_ssm", "tok/s", "mJ/tok", "peak MiB", "status")
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "variant", "status") else "right", no_wrap=True)
    for r in df.itertuples():
        good = r.status == "ok"
        d, m = base.get((r.seq, r.batch)), theirs.get((r.seq, r.batch))
        table.add_row(str(r.model), str(r.variant), f(r.experts, "d"), f(r.top_k, "d"), f(r.seq, "d"),
                      f(r.new_tokens, "d"), f(r.batch, "d"), f(r.ttft_ms, ".2f"), f(r.token_ms, ".3f"),
                      f(r.token_ms_p10, ".3f"), f(r.token_ms_p90, ".3f"),
                      f(r.token_ms / d if good and d else None, ".2f"),
                      f(r.token_ms / m if good and m else None, ".2f"), f(r.gen_tokens_per_s, ",.0f"),
                      f(r.gen_j_per_token * 1e3 if good else None, ".3f"), f(r.gen_peak_mib, ",.0f"), str(r.status))
    table.caption = ("TTFT: prefill of the prompt to its greedy token; ms/token: decode steps of the whole model "
                     "(p10, p90 over the generated tokens); x dense, x mamba_ssm: per-token time over theirs")
    return table
