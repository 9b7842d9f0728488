"""`swimbench generate`: whole models of every design generating text: time to first token, per-token decode
latency, tokens/s, energy per generated token and peak memory, beside mamba-ssm's MambaLMHeadModel with its
own generate(cg=True). Rows go to a run directory as `latency`'s do (atomic rows, --resume, oom rows, the
environment), which `report` and `gate` read. Docs: docs/generate.md.
"""
from __future__ import annotations

import contextlib
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
from ..models.presets import PRESETS
from ..sweeps.spec import (COMPARATOR, DTYPES, GENERATE_OPTIONS, GENERATE_RULES, OPTIONS, GenerateSweep,
                           MeasureSettings, problem, top_k_rule)
from . import app
from .errors import UsageError, bad, one_of, run_name, split_ints, split_strs, writable_dir
from .latency import FORMATS, _device, _flag, _given, _gpu_name
from .long_runs import duration, warn_if_long
from .rundirs import close_attempt, dry_run, hold, iso, refuse_changes, resumable, summary_json

# Without a GPU, what runs in minutes on a CPU: the tiny model, short prompts, a few tokens.
CPU_DEFAULTS = {"preset": "tiny", "prompt": (24,), "new_tokens": 6, "batch": (1, 3), "experts": (3,),
                "top_k": (1,)}
# option -> the field it sets: the model and generations (GenerateSweep), the measurement (latency's own)
MEASURE_OPTIONS = {o: f for o, f in OPTIONS.items() if o in ("budget", "min_reps", "warmup", "energy",
                                                              "energy_window", "seed")}
FIELDS = {**GENERATE_OPTIONS, **MEASURE_OPTIONS}
LIST_FIELDS = ("variants", "experts", "top_k", "prompt", "batch")
# the command's own options: what a resumed run may be given
OWN = ("ctx", "device", "out", "name", "resume", "dry_run", "fmt")


def _overrides(ctx: typer.Context, notes: Optional[list] = None) -> dict[str, tuple[str, object]]:
    """field -> (flag, value) for every option given on the command line, each checked by its field's
    declared rule (swimbench.sweeps.spec) before anything heavy runs; a list flag's repeated values are
    kept once, with a note in `notes`."""
    from ..sweeps.spec import distinct
    from .errors import repeats_note
    out = {}
    for name in _given(ctx):
        if name not in FIELDS:
            continue
        flag, value, field = _flag(ctx, name), ctx.params[name], FIELDS[name]
        if field in LIST_FIELDS:
            value = split_strs(value, flag) if field == "variants" else split_ints(flag, value)
            note = repeats_note(flag, value)
            if note and notes is not None:
                notes.append(note)
            value = distinct(value)
        elif field == "comparator":
            value = "on" if value else "off"
        elif field == "preset":
            if value == "none":
                value = None
            else:
                one_of(flag, [value], tuple(PRESETS))
        allowed = problem(field, value, GENERATE_RULES)
        if allowed is not None:
            raise bad(flag, ",".join(map(str, value)) if isinstance(value, tuple) else value, allowed)
        out[field] = (flag, value)
    return out


def _check(sweep: GenerateSweep, over: dict) -> None:
    """What no single field's rule sees: the model's size given, and experts against top-k."""
    if sweep.preset is None and (sweep.d_model is None or sweep.n_layer is None):
        raise UsageError("--preset none needs --d-model and --layers")
    if any(designs.get(v).experts for v in sweep.variants):
        allowed, _ = top_k_rule(sweep.experts, sweep.top_k)
        if allowed is not None:
            raise bad(over.get("top_k", ("--top-k",))[0], ",".join(map(str, sweep.top_k)), allowed)


EXAMPLES = """Examples:

  swimbench generate --dry-run                          # the rows and their estimated time; measures nothing

  swimbench generate --preset tiny -v dense,swimba -n 16   # a CPU-sized run (the default without a GPU)

  swimbench generate --preset 1.4b                      # the GPU run beside mamba-ssm's MambaLMHeadModel

  swimbench generate --preset 370m -E 4,8,16 -k 1 --prompt 2048,8192 -b 1,16

  swimbench generate --preset none --d-model 1280 --layers 36     # any size

  swimbench generate --resume reports/RUN               # finish a killed run

Docs: docs/generate.md."""


@app.command(epilog=EXAMPLES)
def generate(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-m", help="Model size: " + ", ".join(PRESETS)
                                         + ", or none with --d-model and --layers."),
    d_model: Optional[int] = typer.Option(None, help="Model width (replaces the preset's)."),
    layers: Optional[int] = typer.Option(None, "--layers", "-L", help="Blocks (replaces the preset's)."),
    vocab_size: Optional[int] = typer.Option(None, help="Vocabulary (replaces the preset's; padded to 8)."),
    variants: Optional[List[str]] = typer.Option(None, "--variants", "-v", metavar="NAME,...",
                                                 help="Designs: " + ", ".join(designs.names()) + "."),
    experts: Optional[List[str]] = typer.Option(None, "--experts", "-E", metavar="INT,...",
                                                help="Expert counts, e.g. 4,8."),
    top_k: Optional[List[str]] = typer.Option(None, "--top-k", "-k", metavar="INT,...",
                                              help="Experts per token, e.g. 1,2."),
    routing: Optional[str] = typer.Option(None, help="Expert choice: balanced, skewed or learned."),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", "-p", metavar="INT,...",
                                               help="Prompt lengths, e.g. 2048,8192."),
    new_tokens: Optional[int] = typer.Option(None, "--new-tokens", "-n", help="Tokens generated per sequence."),
    batch: Optional[List[str]] = typer.Option(None, "--batch", "-b", metavar="INT,...",
                                              help="Batch sizes, e.g. 1,16."),
    dtype: Optional[str] = typer.Option(None, help="Weights and activations: " + ", ".join(DTYPES) + "."),
    mamba_ssm: Optional[bool] = typer.Option(None, "--mamba-ssm/--no-mamba-ssm",
                                             help="mamba-ssm's MambaLMHeadModel rows (GPU; auto: when they "
                                                  "can run)."),
    budget: float = typer.Option(1.0, help="Seconds of timed generations per row (at least one)."),
    min_reps: int = typer.Option(3, help="At least this many timed generations, budget permitting."),
    warmup: int = typer.Option(1, help="Untimed generations first."),
    energy: bool = typer.Option(True, "--energy/--no-energy", help="Energy per generated token (NVML, GPU)."),
    energy_window: float = typer.Option(1.0, help="Seconds (>= 1) of decode steps per energy figure."),
    seed: int = typer.Option(0, help="Seed of the weights and prompts."),
    device: str = typer.Option("auto", help="auto, cuda, cuda:N or cpu."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Parent of the run directory."),
    name: Optional[str] = typer.Option(None, show_default="generate-PRESET", help="Run directory suffix."),
    resume: Optional[Path] = typer.Option(None, help="Measure only the rows missing from RUN_DIR."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved models, the rows and a time "
                                                          "estimate; measure nothing."),
    fmt: str = typer.Option("table", "--format", help="Summary on stdout: table or json."),
):
    """Whole-model prefill and generation of every design: TTFT, per-token latency, tokens/s, J/token."""
    repeats: list[str] = []
    over = _overrides(ctx, repeats)
    if fmt not in FORMATS:
        raise bad("--format", fmt, "one of " + ", ".join(FORMATS))
    for pname, field in MEASURE_OPTIONS.items():            # defaults included: they are this command's
        value = ctx.params[pname]
        allowed = problem(field, value, GENERATE_RULES)
        if allowed is not None:
            raise bad(_flag(ctx, pname), value, allowed)
    run_name("--name", name)
    dev = _device(device)
    cuda = dev.type == "cuda"
    if energy and "energy" in _given(ctx) and not cuda:
        raise UsageError(f"--energy needs a CUDA GPU, and this run is on device={dev.type}")
    settings = MeasureSettings(budget_s=budget, min_reps=min_reps, warmup_reps=warmup, energy=energy and cuda,
                               energy_window_s=energy_window, seed=seed)
    from ..results import RunDir
    run = meta = None
    with contextlib.ExitStack() as held:
        if resume is not None:
            for own in ("out", "name"):
                if own in _given(ctx):
                    raise UsageError(f"{_flag(ctx, own)} cannot be used with --resume: a resumed run keeps its "
                                     f"directory ({resume})")
            try:
                run = RunDir.existing(resume)
            except OSError as e:
                raise bad("--resume", str(resume), f"a run directory of swimbench generate ({e})") from None
            if not dry_run:
                hold(held, run, resume)
            sweep, settings, meta = _resumed(run, resume, over, dev)
        else:
            if (out / RunDir.METADATA).is_file():
                raise bad("--out", str(out), "the parent of run directories, not a run directory itself "
                                             "(--resume continues one)")
            base = GenerateSweep() if cuda else GenerateSweep(**CPU_DEFAULTS)
            sweep = replace(base, **{f: v for f, (_, v) in over.items() if f in GENERATE_OPTIONS.values()})
            _check(sweep, over)
        from ..measure.generation import dims_of
        try:
            dims = dims_of(sweep)
        except ValueError as e:
            raise UsageError(str(e)) from None
        from ..config import Reference
        from ..flops.sizing import match_problem    # every block FLOP-matched: the sizes that needs
        cases = sorted({(v, E, k) for v in sweep.variants if designs.get(v).experts
                        for E in sweep.experts for k in sweep.top_k if k <= E})
        allowed = match_problem(cases, Reference(dims.d_model, sweep.expand, sweep.d_state, sweep.d_conv),
                                "prefill", sweep.align, routing=sweep.routing,
                                capacity_factor=sweep.capacity_factor, ffn_mult=sweep.ffn_mult)
        if allowed is not None and "d_model" not in over and "experts" in over:
            raise bad(over["experts"][0], ",".join(map(str, sweep.experts)),
                      f"expert counts that d_model {dims.d_model} can FLOP-match, or a --d-model of {allowed}")
        if allowed is not None:
            flag = over.get("d_model", (f"--preset {dims.name}: its d_model",))[0]
            raise bad(flag, dims.d_model, allowed)
        with_comparator, why = _comparators(sweep.comparator, cuda, sweep.comparator == "on")
        notes = [*repeats, *([why] if why else [])]
        if not cuda:
            notes.append("decode steps run eagerly on the CPU (CUDA graphs need a GPU): per-token times include "
                         "Python's launches")
        points = sweep.points(dims.name, dims.n_layer, comparator=with_comparator)
        if not points:
            raise UsageError("nothing to measure: no design and size gives a row")
        from ..measure.estimate import generate_s
        estimate = generate_s(sweep, points, settings, dev.type)

        def say_if_long():                  # after every input is checked, before any work
            warn_if_long(estimate, dev.type, f"{dims.name} model, {len(points)} rows",
                         "fewer rows, a smaller --preset, --prompt, --batch or --new-tokens shorten it" if cuda
                         else "the CPU-sized run is swimbench generate --preset tiny (the default without a "
                              "GPU), with --prompt and --new-tokens in the tens")
        if dry_run:
            say_if_long()
            _dry_run(sweep, settings, dims, points, estimate, notes, fmt)
            return
        if resume is None:
            writable_dir("--out", out)
        say_if_long()
        code = _run(dev, sweep, settings, points, run, meta, out, name or f"generate-{dims.name}", notes, fmt,
                    held)
    if code:
        raise typer.Exit(code)


def _help_defaults() -> None:
    """`generate --help` shows each model and generation option's default, on a GPU and without one
    (GenerateSweep's declarations and CPU_DEFAULTS), as `latency --help` shows its profiles'."""
    import inspect
    gpu, cpu = GenerateSweep(), GenerateSweep(**CPU_DEFAULTS)

    def text(v):
        return ",".join(map(str, v)) if isinstance(v, tuple) else "none" if v is None else str(v)
    for pname, param in inspect.signature(generate).parameters.items():
        info, field = param.default, GENERATE_OPTIONS.get(pname)
        if field is None or not isinstance(info, typer.models.OptionInfo):
            continue
        g, c = getattr(gpu, field), getattr(cpu, field)
        if g is None and c is None:
            info.show_default = "the preset's"
            continue
        info.show_default = f"{text(g)}; without a GPU: {text(c)}" if g != c else text(g)


_help_defaults()


def _resumed(run, resume, over: dict, dev):
    """The sweep, settings and metadata of a run to resume, diagnosed by the reader; a flag given with
    --resume must say what the run already holds."""
    from ..results import RunDir
    meta, sweep, settings = resumable(run, resume, "swimbench generate", RunDir.RESUME_GENERATE, "generate",
                                      GenerateSweep)
    refuse_changes(over, {**sweep.as_dict(), **settings.as_dict()})
    if was_other_device(meta, dev):
        raise bad("--resume", str(resume), "a run measured on this device")
    return sweep, settings, meta


def _dry_run(sweep, settings, dims, points, estimate: float, notes: list, fmt: str) -> None:
    doc = {"model": dims.name, "d_model": dims.d_model, "n_layer": dims.n_layer, "vocab_size": dims.vocab_size,
           "generate": sweep.as_dict(), "settings": settings.as_dict(), "rows": len(points),
           "estimate_s": round(estimate, 1), "points": [p.key for p in points], "notes": notes}
    dry_run(doc, f"{dims.name} model (d_model {dims.d_model}, {dims.n_layer} layers, vocabulary "
                 f"{dims.vocab_size}): {len(points)} rows, estimated {duration(estimate)}",
            {**sweep.as_dict(), **settings.as_dict()}, fmt)


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


def _run(dev, sweep, settings, points, run, meta, out, name, notes, fmt, held) -> int:
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
        try:
            run = RunDir.create(out, name)
        except OSError as e:
            raise bad("--out", str(out), f"a directory this process can write ({e.strerror or e})") from None
        held.enter_context(run.lock())
        meta = {"tool": "swimbench generate", "created": iso(started), "status": "running",
                "profile": {"name": name, "path": None, "description": "swimbench generate"},
                "generate": sweep.as_dict(), "settings": settings.as_dict(),
                "comparator": any(p.variant == COMPARATOR for p in points),
                "points": [p.key for p in points], "environment": env, "attempts": []}
    attempt = len(meta["attempts"]) + 1
    meta["attempts"].append({"attempt": attempt, "started": iso(started), "command": env["command"],
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
        row.update({"device": dev.type, "attempt": attempt, "measured_at": iso(time.time())})
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
    except OSError as e:                 # the disk failed mid-run: said in metadata.json where it can be
        from .rundirs import close_failed
        close_failed(run, meta, e, started)
        raise
    finally:
        torch.set_num_threads(threads)
        if sampler is not None:
            sampler.stop()
            run.append_power(sampler.take_new())
        if nvml is not None:
            nvml.close()
    results.reload()
    frame = results.frame()
    code, interrupted, nothing = close_attempt(meta, outcome, frame, started)
    run.write_metadata(meta)
    if fmt == "json":
        sys.stdout.write(summary_json(frame, run.path, meta["status"], code, SUMMARY) + "\n")
    else:
        stdout = Console() if Console().is_terminal else Console(width=200)
        stdout.print(summary_table(frame, dev.type))
    console.print(f"results: {run.path / run.RESULTS}  (wall {time.time() - started:.1f} s)")
    if interrupted:
        console.print(f"[yellow]interrupted[/]: completed rows are kept; resume with: "
                      f"swimbench generate --resume {shlex.quote(str(run.path))}")
    elif nothing:
        console.print(f"[red]nothing measured[/]: every row is {', '.join(sorted(set(frame['status'])))} "
                      f"(exit {code}); a smaller model, --prompt or --batch fits")
    elif outcome.errors:
        console.print(f"[red]{len(outcome.errors)} configuration(s) failed[/]: see the error column")
    return code


SUMMARY = ("key", "status", "model", "variant", "experts", "top_k", "seq", "new_tokens", "batch", "layers",
           "dtype", "ttft_ms", "token_ms", "token_ms_p10", "token_ms_p90", "gen_tokens_per_s", "gen_j_per_token",
           "gen_peak_mib", "error")


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
