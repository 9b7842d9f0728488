"""`swimbench latency`: prefill and decode latency, throughput, energy and memory over a sweep.

Flags override the profile (`--profile`, default `default` on a GPU and `cpu` without one); every
finished configuration is written to <out>/<timestamp>-<profile>/results.csv at once, so a run that is
interrupted or killed loses only the configuration in flight, and `--resume RUN_DIR` measures only
what is missing. Docs: docs/latency.md.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .. import designs
from ..sweeps.spec import (COMPARATOR, DTYPES, OPTIONS, SETTINGS, Sweep, problem,
                           top_k_rule)
from . import app
from .errors import UsageError, bad, run_name, split_ints, split_strs, writable_dir
from .launch import launch, rank_device
from .long_runs import duration, warn_if_long
from .rundirs import (EXIT_ERRORS, EXIT_INTERRUPTED, EXIT_NOTHING, close_attempt, dry_run, hold, iso,
                      refuse_changes, resumable, summary_json)

# option name (the function parameter) -> the field of Sweep or MeasureSettings it sets: the settings'
# own declarations (swimbench.sweeps.spec); options that set no field are the command's own (OWN)
FIELDS = OPTIONS
_TYPES = {f.name: f.type for f in SETTINGS}
LISTS = tuple(o for o, f in FIELDS.items() if _TYPES[f].startswith("tuple"))
FLOATS = tuple(o for o, f in FIELDS.items() if _TYPES[f] == "float")
OWN = ("ctx", "profile", "device", "out", "name", "resume", "dry_run", "fmt", "gpus")
# Flags that only mean something on a CUDA GPU, with the value that asks for the GPU feature.
GPU_ONLY = {"flush_l2": True, "prefill": "graph", "decode": "graph", "mamba_ssm": True, "energy": True,
            "power_interval": None}
SWEEP_FIELDS = {f.name for f in fields(Sweep)}


def _given(ctx: typer.Context) -> list[str]:
    return [p.name for p in ctx.command.params
            if getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]


def _flag(ctx: typer.Context, name: str) -> str:
    param = next(p for p in ctx.command.params if p.name == name)
    value = ctx.params[name]
    if getattr(param, "is_flag", False) and param.secondary_opts and value is False:
        return param.secondary_opts[0]
    return param.opts[0]


def _command(ctx: typer.Context) -> str:
    """The command as typed; when called in-process (not from the shell), rebuilt from its flags."""
    if sys.argv[1:2] == [ctx.info_name]:
        return shlex.join(["swimbench", *sys.argv[1:]])
    words = ["swimbench", ctx.info_name]
    for name in _given(ctx):
        param = next(p for p in ctx.command.params if p.name == name)
        value = ctx.params[name]
        words.append(_flag(ctx, name))
        if not getattr(param, "is_flag", False):
            words.append(",".join(value) if isinstance(value, (list, tuple)) else str(value))
    return shlex.join(words)


def _overrides(ctx: typer.Context, notes: Optional[list] = None) -> dict[str, tuple[str, object]]:
    """field -> (flag, value) for every sweep or measurement flag given, each checked on its own; a list
    flag's repeated values are kept once, with a note in `notes`."""
    from ..sweeps.spec import distinct
    from .errors import repeats_note
    out = {}
    for name in _given(ctx):
        if name not in FIELDS:
            continue
        flag, value = _flag(ctx, name), ctx.params[name]
        if name in LISTS:
            value = split_strs(value) if name == "variants" else split_ints(flag, value)
            note = repeats_note(flag, value)
            if note and notes is not None:
                notes.append(note)
            value = distinct(value)
        elif name == "mamba_ssm":
            value = "on" if value else "off"
        elif name in FLOATS:
            value = float(value)
        field = FIELDS[name]
        allowed = problem(field, value)
        if allowed is not None:
            got = ",".join(map(str, value)) if isinstance(value, tuple) else value
            raise bad(flag, got, allowed)
        out[field] = (flag, value)
    return out


def _device(spec: str):
    import torch
    if spec not in ("auto", "cpu", "cuda") and not spec.startswith("cuda:"):
        raise bad("--device", spec, "auto, cpu, cuda or cuda:N")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:                    # cuda:x, cuda:-1
        raise bad("--device", spec, "auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise bad("--device", spec, "cpu or auto: no CUDA GPU is visible here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise bad("--device", spec, f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return dev


def _split(values: dict) -> tuple[dict, dict]:
    sweep = {k: v for k, v in values.items() if k in SWEEP_FIELDS}
    return sweep, {k: v for k, v in values.items() if k not in SWEEP_FIELDS}


def _check_combination(sweep: Sweep, over: dict, notes: list, prof: dict) -> None:
    """The rules between settings (top-k against experts, the sizes FLOP matching needs), each blamed
    on where its value came from: the flag, else the profile's key."""
    if not any(designs.get(v).experts for v in sweep.variants):
        return
    allowed, left_out = top_k_rule(sweep.experts, sweep.top_k)
    if allowed is not None:
        raise _refused("top_k", sweep.top_k, allowed, over, prof)
    if left_out:
        notes.append("left out, fewer experts than top-k: " + ", ".join(f"E={E} k={k}" for E, k in left_out))
    if sweep.match:
        from ..flops.sizing import match_problem
        from ..sweeps.spec import MAX_D_MODEL
        cases = {(p.variant, p.experts, p.top_k) for p in sweep.points() if designs.get(p.variant).experts}
        allowed = match_problem(sorted(cases), sweep.reference(), "prefill", sweep.align, MAX_D_MODEL,
                                routing=sweep.routing, capacity_factor=sweep.capacity_factor,
                                ffn_mult=sweep.ffn_mult)
        if allowed is not None and "d_model" not in over and "experts" in over:
            raise bad(over["experts"][0], ",".join(map(str, sweep.experts)),
                      f"expert counts that d_model {sweep.d_model} can FLOP-match, or a --d-model of {allowed}")
        if allowed is not None:
            raise _refused("d_model", sweep.d_model, allowed + " (or --no-match)", over, prof)


def _refused(field: str, value, allowed: str, over: dict, prof: dict) -> UsageError:
    """`value` of `field` refused, naming the flag that gave it, else the profile file and its key."""
    from ..sweeps.spec import SECTIONS
    got = ",".join(map(str, value)) if isinstance(value, tuple) else value
    if field in over:
        return bad(over[field][0], got, allowed)
    section = next((sec for sec, keys in SECTIONS.items() if field in keys), None)
    if field in ((prof.get("content") or {}).get(section) or {}):
        where = prof.get("path") or prof.get("name")
        return UsageError(f"--profile: profile {where}: [{section}] {field} = "
                          f"{list(value) if isinstance(value, tuple) else value!r} is not allowed: "
                          f"expected {allowed}")
    flag = "--" + next((o for o, f in FIELDS.items() if f == field), field).replace("_", "-")
    return UsageError(f"{flag} (default {got}) is not allowed here: expected {allowed}")


def _comparator(mode: str, cuda: bool, flag: Optional[str]) -> tuple[bool, Optional[str]]:
    """Whether mamba-ssm's Mamba rows run, and why not when they do not."""
    if mode == "off":
        return False, None
    why = None
    if not cuda:
        why = "it needs a CUDA GPU"
    else:
        from .. import mamba_ref
        try:
            if not mamba_ref.has_cuda_scan():
                why = "mamba-ssm or its CUDA extension is not importable"
            else:
                mamba_ref.Mamba()
        except Exception as e:  # noqa: BLE001  (a broken install is a reason, not a crash)
            why = f"mamba-ssm does not import ({type(e).__name__}: {e})"
    if why is not None and mode == "on" and flag is not None:
        raise UsageError(f"{flag}: the mamba-ssm comparator cannot run here: {why}")
    return why is None, (f"mamba-ssm comparator rows skipped: {why}" if why else None)


@app.command()
def latency(
    ctx: typer.Context,
    profile: Optional[str] = typer.Option(None, "--profile", "-p",
                                          show_default="default on a GPU, cpu without one",
                                          help="Profile name in profiles/ or a .toml path."),
    variants: Optional[List[str]] = typer.Option(None, "--variants", "-v",
                                                 help="Variants: " + ", ".join(designs.names()) + "."),
    experts: Optional[List[str]] = typer.Option(None, "--experts", "-E", help="Expert counts, e.g. 2,4,8."),
    top_k: Optional[List[str]] = typer.Option(None, "--top-k", "-k", help="Experts per token, e.g. 1,2."),
    seq: Optional[List[str]] = typer.Option(None, "--seq", "-s", help="Sequence lengths (prefill)."),
    batch: Optional[List[str]] = typer.Option(None, "--batch", "-b", help="Batch sizes."),
    layers: Optional[List[str]] = typer.Option(None, "--layers", "-L", help="Stack depths (residual)."),
    d_model: Optional[int] = typer.Option(None, help="Dense reference: model width D."),
    expand: Optional[int] = typer.Option(None, help="Dense reference: d_inner = expand * D."),
    d_state: Optional[int] = typer.Option(None, help="SSM state size N (1..256)."),
    d_conv: Optional[int] = typer.Option(None, help="Conv width K (1..8)."),
    dtype: Optional[str] = typer.Option(None, help="Weights and activations: " + ", ".join(DTYPES) + "."),
    match: Optional[bool] = typer.Option(None, "--match/--no-match",
                                         help="FLOP-match every variant to dense (prefill), or use "
                                              "expand * d_model for all."),
    mamba_ssm: Optional[bool] = typer.Option(None, "--mamba-ssm/--no-mamba-ssm",
                                             help="Add mamba-ssm's own Mamba as a comparator row (GPU)."),
    budget: Optional[float] = typer.Option(None, help="Seconds of timed repetitions per measurement."),
    min_reps: Optional[int] = typer.Option(None, help="At least this many timed samples."),
    warmup: Optional[int] = typer.Option(None, help="At least this many untimed warm-up calls."),
    flush_l2: Optional[bool] = typer.Option(None, "--flush-l2/--no-flush-l2",
                                            help="Flush the L2 cache before each prefill sample (GPU)."),
    prefill: Optional[str] = typer.Option(None, help="Prefill timing: graph (CUDA-graph replay, GPU) "
                                                     "or eager (the host's launches included)."),
    decode: Optional[str] = typer.Option(None, help="Decode timing: graph (CUDA-graph replay, GPU) "
                                                    "or eager."),
    energy: Optional[bool] = typer.Option(None, "--energy/--no-energy",
                                          help="Energy per token from NVML (GPU)."),
    energy_window: Optional[float] = typer.Option(None, help="Seconds (>= 1) of back-to-back calls "
                                                             "per energy figure."),
    power_interval: Optional[float] = typer.Option(None, help="Power-trace sampling interval, ms (GPU)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the weights and inputs."),
    routing: Optional[str] = typer.Option(None, help="Expert choice of routed variants: balanced "
                                                     "(equal load), skewed (power law) or learned "
                                                     "(the untrained router's top-k)."),
    capacity_factor: Optional[float] = typer.Option(None, help="MoE-Mamba: expert capacity factor."),
    ffn_mult: Optional[int] = typer.Option(None, help="MoE-Mamba: expert FFN width / d_inner."),
    device: str = typer.Option("auto", help="auto, cuda, cuda:N or cpu."),
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Parent of the run directory."),
    name: Optional[str] = typer.Option(None, show_default="the profile name", help="Run directory suffix."),
    resume: Optional[Path] = typer.Option(None, help="Measure only the rows missing from RUN_DIR."),
    repeats: Optional[int] = typer.Option(None, help="Measure the sweep this many times, each time in "
                                                     "another order; a row's interval spans its "
                                                     "repeats' medians (the gate's between-run noise)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved sweep, its row count and "
                                                          "an estimate of its time; measure nothing."),
    fmt: str = typer.Option("table", "--format", "-f", help="The summary on stdout: table or json."),
    gpus: Optional[int] = typer.Option(None, "--gpus", help="Spread the sweep over this many GPUs of this "
                                                            "host, one rank each, under torchrun "
                                                            "(docs/distributed.md)."),
):
    """Prefill and decode latency, tokens/s, TFLOP/s, bandwidth, J/token and peak memory over a sweep."""
    repeats: list[str] = []
    over = _overrides(ctx, repeats)              # flag by flag, before anything heavy runs
    if fmt not in FORMATS:
        raise bad("--format", fmt, "one of " + ", ".join(FORMATS))
    if gpus is not None:
        raise typer.Exit(launch(gpus, device, _command(ctx)))
    from ..sweeps.spread import Spread
    try:
        spread = Spread.join()
    except ValueError as e:                 # torchrun's variables, set by hand and wrong
        raise UsageError(str(e)) from None
    from ..measure.timing import injected_slowdowns
    try:
        injected_slowdowns()
    except ValueError as e:
        raise UsageError(str(e)) from None
    dev = rank_device(_device(device), spread.world, device)
    cuda = dev.type == "cuda"
    given = _given(ctx)
    for pname, gpu_value in GPU_ONLY.items():
        if not cuda and pname in given and (gpu_value is None or ctx.params[pname] == gpu_value):
            raise UsageError(f"{_flag(ctx, pname)} needs a CUDA GPU, and this run is on "
                             f"device={dev.type}")
    run_name("--name", name)
    if resume is not None:
        for own in ("out", "name"):
            if own in given:
                raise UsageError(f"{_flag(ctx, own)} cannot be used with --resume: a resumed run keeps its "
                                 f"directory ({resume})")
    console = Console(stderr=True)
    from ..results import RunDir

    with contextlib.ExitStack() as held:
        if resume is not None:
            try:
                run = RunDir.existing(resume)
            except OSError as e:
                raise bad("--resume", str(resume), f"a run directory of swimbench latency ({e})") from None
            if not dry_run and spread.world.lead:       # rank 0 holds the run for all its ranks
                hold(held, run, resume)
            sweep, settings, prof, meta = _resumed(ctx, run, resume, over, profile, dev)
        else:
            if (out / RunDir.METADATA).is_file():
                raise bad("--out", str(out), "the parent of run directories, not a run directory itself "
                                             "(--resume continues one)")
            sweep, settings, prof = _profiled(profile, cuda, over)
            run = meta = None
        notes: list[str] = list(repeats)
        if resume is None:                  # a profile's lists are kept once as the flags' are
            from .errors import repeats_note
            where = prof.get("path") or prof.get("name")
            notes += [n for sec, body in (prof.get("content") or {}).items() if isinstance(body, dict)
                      for key, v in body.items() if isinstance(v, list)
                      for n in [repeats_note(f"profile {where} [{sec}] {key}", v)] if n]
        _check_combination(sweep, over, notes, prof)
        settings = _on_device(sweep, settings, cuda, notes)
        with_comparator, why = _comparator(sweep.comparator, cuda, over.get("comparator", (None,))[0])
        if why:
            notes.append(why)
        points = sweep.points(comparator=with_comparator)
        estimate = estimate_s(sweep, points, settings, dev.type)

        def say_if_long():                  # after every input is checked, before any work
            if spread.world.lead:
                warn_if_long(estimate, dev.type, f"{len(points)} rows x {settings.repeats} repeat(s), d_model "
                             f"{sweep.d_model}, seq up to {max(sweep.seq)}",
                             "--dry-run shows it; smaller --seq, --experts or --budget shorten it" if cuda else
                             "the CPU-sized run is swimbench latency --profile cpu (the default without a GPU; "
                             "profiles/cpu.toml)")
        if dry_run:
            say_if_long()
            _dry_run(sweep, settings, prof, points, estimate, notes, fmt)
            return
        if resume is None:
            writable_dir("--out", out)
        say_if_long()
        try:
            code = _run(ctx, console, dev, sweep, settings, prof, points, run, meta, out, name, notes, fmt, held,
                        spread)
        finally:
            spread.close()
    if code:
        raise typer.Exit(code)


def _profile_defaults() -> None:
    """`latency --help` shows each option's value in the profiles a bare run takes (default on a GPU,
    cpu without one), read from the files, and names what a list option holds."""
    import inspect

    from ..sweeps.profiles import ProfileError, load_profile
    try:
        gpu, cpu = load_profile("default"), load_profile("cpu")
    except ProfileError:
        return

    def text(v):
        return ",".join(map(str, v)) if isinstance(v, tuple) else str(v).lower() if isinstance(v, bool) else str(v)
    for pname, param in inspect.signature(latency).parameters.items():
        info, field = param.default, FIELDS.get(pname)
        if field is None or not isinstance(info, typer.models.OptionInfo):
            continue
        g, c = (getattr(p.sweep if field in SWEEP_FIELDS else p.measure, field) for p in (gpu, cpu))
        info.show_default = f"{text(g)}; cpu profile: {text(c)}" if g != c else text(g)
        if pname in LISTS:
            info.metavar = "NAME,..." if pname == "variants" else "INT,..."


_profile_defaults()
FORMATS = ("table", "json")


def _resumed(ctx, run, resume, over, profile, dev):
    """The sweep, settings, profile and metadata of a run to resume, diagnosed by the reader."""
    from ..results import RunDir
    meta, sweep, settings = resumable(run, resume, "swimbench latency", RunDir.RESUME, "sweep", Sweep)
    refuse_changes(over, {**sweep.as_dict(), **settings.as_dict()})
    if profile is not None and profile not in (meta["profile"].get("name"), meta["profile"].get("path")):
        raise bad("--profile", profile, f"{meta['profile'].get('name')!r}, the resumed run's profile")
    was = meta["environment"]
    here_gpu = _gpu_name(dev)
    if was.get("device") != dev.type or (was.get("gpu") or {}).get("name") != here_gpu:
        raise bad("--resume", str(resume), f"a run measured on this device ({dev.type} {here_gpu or ''}"
                                           f"); it was measured on {was.get('device')} "
                                           f"{(was.get('gpu') or {}).get('name') or ''}".rstrip())
    return sweep, settings, meta["profile"], meta


def _profiled(profile, cuda, over):
    """The sweep and settings of a profile with the flags' overrides."""
    from ..sweeps.profiles import ProfileError, load_profile
    try:
        prof_obj = load_profile(("default" if cuda else "cpu") if profile is None else profile)
    except ProfileError as e:
        raise UsageError(f"--profile: {e}") from None
    s_over, m_over = _split({f: v for f, (_, v) in over.items()})
    sweep, settings = replace(prof_obj.sweep, **s_over), replace(prof_obj.measure, **m_over)
    prof = {"name": prof_obj.name, "path": prof_obj.path, "description": prof_obj.description,
            "content": prof_obj.raw}
    return sweep, settings, prof


def _on_device(sweep, settings, cuda: bool, notes: list):
    """The settings as this device can do them, with a note for each change."""
    if cuda:
        return settings
    graphs = [p for p in ("prefill", "decode") if getattr(settings, p) == "graph"]
    if graphs:
        settings = settings.with_(**{p: "eager" for p in graphs})
        notes.append(f"{' and '.join(graphs)} timed eagerly: CUDA graphs need a GPU (rows say "
                     + ", ".join(f"{p}_mode=eager" for p in graphs) + ")")
    if settings.flush_l2:
        settings = settings.with_(flush_l2=False)
        notes.append("no L2 flush on the CPU")
    if sweep.d_model * max(sweep.seq) > 2 ** 16:
        notes.append("the CPU runs the reference scans, a Python loop over time: large --d-model "
                     "or --seq will take long (profiles/cpu.toml is sized for minutes)")
    return settings


def estimate_s(sweep, points, settings, device_type: str) -> float:
    """The sweep's time: every row's calls at the device's rough rates through the timing loop
    (swimbench.measure.estimate), times the repeats."""
    from ..measure.estimate import layer_points_s
    return settings.repeats * layer_points_s(sweep, points, settings, device_type)[1]


def _dry_run(sweep, settings, prof, points, estimate: float, notes: list, fmt: str) -> None:
    doc = {"profile": prof["name"], "sweep": sweep.as_dict(), "settings": settings.as_dict(),
           "rows": len(points), "repeats": settings.repeats, "estimate_s": round(estimate, 1),
           "points": [p.key for p in points], "notes": notes}
    dry_run(doc, f"profile {prof['name']}: {len(points)} rows x {settings.repeats} repeat(s), estimated "
                 f"{duration(estimate)}", {**sweep.as_dict(), **settings.as_dict()}, fmt)


def _gpu_name(dev) -> Optional[str]:
    import torch
    return torch.cuda.get_device_properties(dev).name if dev.type == "cuda" else None


def _run(ctx, console, dev, sweep, settings, prof, points, run, meta, out, name, notes, fmt, held, spread) -> int:
    import torch
    cuda = dev.type == "cuda"
    threads = torch.get_num_threads()
    if not cuda and "OMP_NUM_THREADS" not in os.environ:
        # Tiny CPU layers are all op overhead; an intra-op thread pool only adds stalls of tens of
        # milliseconds whenever another process takes a core (seen: 50x outliers on 2 busy cores).
        torch.set_num_threads(1)
        notes.append("CPU timed on 1 thread (set OMP_NUM_THREADS to choose)")
    try:
        return _measure(ctx, console, dev, sweep, settings, prof, points, run, meta, out, name, notes, fmt,
                        held, spread)
    finally:
        torch.set_num_threads(threads)


def _measure(ctx, console, dev, sweep, settings, prof, points, run, meta, out, name, notes, fmt,
             held, spread) -> int:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from ..measure.energy import Nvml, NvmlUnavailable, PowerSampler
    from ..measure.env import capture
    from ..measure.point import PointMeasurer, combine_repeats
    from ..results import RunDir
    from ..sweeps.runner import run_sweep, stop_on_signals

    cuda = dev.type == "cuda"
    lead = spread.world.lead             # rank 0 writes the metadata and prints; the others only measure
    if not lead:
        console = Console(stderr=True, quiet=True)
    nvml = sampler = None
    if not settings.energy:
        notes.append("energy not measured (--no-energy or energy = false): energy columns empty")
    elif not cuda:
        notes.append(f"energy columns empty: device={dev.type} has no NVML energy counter")
    else:
        try:
            nvml = Nvml.open(dev)
        except NvmlUnavailable as e:
            notes.append(f"energy columns empty: {e}")
    env = capture(dev, nvml, profile=prof)
    env["command"], env["argv"] = _command(ctx), sys.argv
    started = time.time()
    if run is None:
        if lead:
            try:
                run = RunDir.create(out, name or prof["name"])
            except OSError as e:
                raise bad("--out", str(out), f"a directory this process can write ({e.strerror or e})") from None
            held.enter_context(run.lock())
        meta = {"tool": "swimbench latency", "created": iso(started), "status": "running",
                "profile": prof, "sweep": sweep.as_dict(), "settings": settings.as_dict(),
                "comparator": any(p.variant == COMPARATOR for p in points),
                "points": [p.key for p in points], "environment": env, "attempts": []}
    else:
        meta["points"] = [p.key for p in points]
    attempt = spread.agree(len(meta["attempts"]) + 1)
    if spread.spread:
        run = RunDir(spread.agree(str(run.path) if lead else None), shared=True)
        env["distributed"] = {"world_size": spread.world.size, "backend": spread.world.backend,
                              "ranks": spread.gather(_rank_env(spread.world, dev, env))}
    ceilings = _ceilings(console, dev, meta, attempt, notes)
    meta["attempts"].append({"attempt": attempt, "started": iso(started), "command": env["command"],
                             "environment": env, "notes": notes})
    meta["status"] = "running"
    spread.wait()                        # every rank has read the metadata before rank 0 rewrites it
    if lead:
        run.write_metadata(meta)
    results = run.results(order=meta["points"])
    done = results.done_keys()
    spread.wait()                        # every rank knows what is done before any rank adds a row
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    todo = [p for p in points if p.key not in done]
    mine = spread.mine(todo)
    over = f" over {spread.world.size} ranks" if spread.spread else ""
    console.print(f"run directory: {run.path}  ({len(points)} configurations"
                  + (f", {len(points) - len(todo)} already done, measuring {len(todo)}" if done else "")
                  + f", device={dev.type}{' ' + env['gpu']['name'] if cuda else ''}{over})")
    if nvml is not None and lead:
        sampler = PowerSampler(nvml, settings.power_interval_ms / 1e3).start()

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        transient=False, disable=not lead)
    measurer = PointMeasurer(sweep, settings, dev, nvml, sampler,
                             note=lambda s: progress.console.print(f"[yellow]note:[/] {s}"), ceilings=ceilings)

    def record(point, row, samples):
        row.update({"device": dev.type, "device_index": _index(dev), "rank": spread.world.rank,
                    "world_size": spread.world.size, "attempt": attempt, "measured_at": iso(time.time())})
        if samples is not None:
            run.append_samples(point.key, attempt, samples)
        results.put(row)
        if sampler is not None:
            run.append_power(sampler.take_new())

    def on_end(point, row):
        if spread.spread:                # every rank's rows, read back from the shared file
            progress.update(task, completed=_finished(results, todo, attempt) * settings.repeats)
        else:
            progress.advance(task)
        progress.console.print(_row_line(point, row))

    def on_start(point):
        rearm()
        progress.update(task, description=point.label())

    outcome = None
    try:
        with stop_on_signals() as rearm, progress:
            task = progress.add_task("starting", total=len(todo) * settings.repeats)
            outcome = run_sweep(mine, measurer, record, done, on_start=on_start, on_end=on_end,
                                repeats=settings.repeats, combine=combine_repeats)
    except KeyboardInterrupt:
        pass
    except OSError as e:                 # the disk failed mid-run: said in metadata.json where it can be
        if lead:
            from .rundirs import close_failed
            close_failed(run, meta, e, started)
        raise
    finally:
        if sampler is not None:
            sampler.stop()
            run.append_power(sampler.take_new())
        if nvml is not None:
            nvml.close()
    outcome = _together(spread, outcome)
    if not lead:
        interrupted = outcome is None or outcome.interrupted
        return EXIT_INTERRUPTED if interrupted else EXIT_ERRORS if outcome.errors else 0
    results.reload()
    frame = results.frame()
    code, interrupted, nothing = close_attempt(meta, outcome, frame, started)
    run.write_metadata(meta)
    if fmt == "json":
        sys.stdout.write(summary_json(frame, run.path, meta["status"], code, SUMMARY) + "\n")
    else:
        stdout = Console()
        if not stdout.is_terminal:
            stdout = Console(width=200)     # logs and pipes get the whole table, not an 80-column squeeze
        stdout.print(summary_table(frame, dev.type))
    slow_host = host_bound(frame)
    if slow_host:
        named = ", ".join(slow_host[:4]) + (", ..." if len(slow_host) > 4 else "")
        console.print(f"[yellow]note:[/] {len(slow_host)} row(s) take the host longer to launch eagerly than "
                      f"the GPU to run (prefill_launch_ms >= prefill_ms): eager timings of them measure "
                      f"Python, not the layer ({named})")
    console.print(f"results: {run.path / run.RESULTS}  (wall {time.time() - started:.1f} s)")
    if interrupted:
        console.print(f"[yellow]interrupted[/]: completed rows are kept; resume with: "
                      f"swimbench latency --resume {shlex.quote(str(run.path))}")
        return EXIT_INTERRUPTED
    if nothing:
        console.print(f"[red]nothing measured[/]: every row is {', '.join(sorted(set(frame['status'])))} "
                      f"(exit {EXIT_NOTHING}); smaller --seq, --batch or --d-model fit")
        return EXIT_NOTHING
    if outcome.errors:
        console.print(f"[red]{len(outcome.errors)} configuration(s) failed[/]: see the error column")
    return code


SUMMARY = ("key", "status", "variant", "experts", "top_k", "seq", "batch", "layers", "dtype", "repeats",
           "prefill_mode", "prefill_ms", "prefill_ms_ci_lo", "prefill_ms_ci_hi", "prefill_tokens_per_s",
           "prefill_tflops", "decode_mode", "decode_us", "decode_us_ci_lo", "decode_us_ci_hi",
           "prefill_j_per_token", "prefill_peak_mib", "decode_peak_mib", "error")


def _index(dev):
    import torch
    if dev.type != "cuda":
        return None
    return dev.index if dev.index is not None else torch.cuda.current_device()


def _finished(results, todo, attempt: int) -> int:
    """Points of `todo` with a row from this attempt, whichever rank wrote it."""
    return sum(str(results.rows.get(p.key, {}).get("attempt")) == str(attempt) for p in todo)


def _rank_env(world, dev, env: dict) -> dict:
    return {"rank": world.rank, "local_rank": world.local_rank, "host": env["host"], "pid": os.getpid(),
            "device": str(dev), "gpu": (env.get("gpu") or {}).get("name")}


def _together(spread, outcome):
    """Every rank's outcome as one (on every rank): interrupted if any rank was. None when interrupted
    before the sweep started."""
    if not spread.spread:
        return outcome
    from ..sweeps.runner import Outcome
    parts = spread.gather(outcome)
    if any(p is None for p in parts):
        return None
    return Outcome(planned=sum(p.planned for p in parts), skipped=sum(p.skipped for p in parts),
                   measured=[k for p in parts for k in p.measured], oom=[k for p in parts for k in p.oom],
                   errors=[k for p in parts for k in p.errors], interrupted=any(p.interrupted for p in parts))


def _ceilings(console, dev, meta: dict, attempt: int, notes: list):
    """The device's ceilings for this run's floors: measured now on a GPU and kept in meta["ceilings"];
    a resumed run keeps those of its first measurement, so that all its rows share one floor (and
    measures them now if it has none: a run from before they were measured). None on the CPU."""
    from ..measure.ceilings import DeviceCeilings, measure
    from ..sweeps.runner import release_memory
    if dev.type != "cuda":
        return None
    kept = DeviceCeilings.from_meta(meta.get("ceilings"))
    if kept is not None:
        console.print(f"device ceilings kept from attempt {meta['ceilings'].get('attempt', 1)}: "
                      f"{_ceilings_text(kept)}")
        return kept
    try:
        with console.status("measuring the device's ceilings (copy bandwidth, bf16 GEMM)..."):
            measured = measure(dev)
    except Exception as e:  # noqa: BLE001  (no floors is a note, not a failed run)
        notes.append(f"device ceilings not measured ({type(e).__name__}: {e}): floor columns empty")
        return None
    finally:
        release_memory()            # the first row's peak memory must not hold the probes' buffers
    meta["ceilings"] = {**measured.as_meta(), "attempt": attempt}
    console.print(f"device ceilings: {_ceilings_text(measured)}")
    return measured


def _ceilings_text(c) -> str:
    return f"{c.gbps:,.0f} GB/s copy, {c.tflops:,.0f} TFLOP/s bf16 GEMM ({c.source})"


def _row_line(point, row) -> str:
    if row.get("status") != "ok":
        return f"[red]{row.get('status')}[/] {point.label()}: {row.get('error', '')}"
    j = row.get("prefill_j_per_token")
    energy = f", {j * 1e3:.3f} mJ/token" if j is not None else ""
    launch = row.get("prefill_launch_ms")
    launch = f", launch {launch:.3f} ms" if launch is not None else ""
    pre_floor, dec_floor = (f", {row[f'{p}_x_floor']:.2f}x its {row[f'{p}_floor_bound']} floor"
                            if row.get(f"{p}_x_floor") is not None else "" for p in ("prefill", "decode"))
    kernels = f", {row['decode_kernels']} kernels" if row.get("decode_kernels") is not None else ""
    return (f"[green]ok[/] {point.label()}: prefill {row['prefill_ms']:.3f} ms ({row['prefill_mode']}"
            f"{launch}, {row['prefill_tflops']:.1f} TFLOP/s{energy}{pre_floor}), decode "
            f"{row['decode_us']:.1f} us ({row['decode_mode']}{dec_floor}{kernels})")


def _x_floor(r, phase: str) -> str:
    """'3.21 m': a phase's time over its floor and the floor's bound (m memory, c compute); '' for
    rows without (CPU runs, older runs)."""
    import pandas as pd
    x = getattr(r, f"{phase}_x_floor", None)
    if x is None or pd.isna(x):
        return ""
    return f"{x:.2f} {str(getattr(r, f'{phase}_floor_bound'))[:1]}"


def _mode(r, phase: str) -> str:
    """' g' or ' e' after a median; older runs, without prefill_mode, timed prefill eagerly."""
    mode = getattr(r, f"{phase}_mode", None)
    return " g" if mode == "graph" else " e"


def host_bound(df) -> list[str]:
    """Rows whose eager forward takes the host longer to launch than the GPU takes to run it (as
    timed): an eager timing of them measures Python, not the layer."""
    import pandas as pd
    if "prefill_launch_ms" not in df:
        return []
    launch = pd.to_numeric(df["prefill_launch_ms"], errors="coerce")
    median = pd.to_numeric(df["prefill_ms"], errors="coerce")
    return list(df.loc[(df["status"] == "ok") & (launch >= median), "key"])


def summary_table(df, device: str) -> Table:
    """The run at a glance: medians with their 95% intervals, throughput, energy, memory. Columns that
    are empty in every row (energy and memory on the CPU, say) are left out."""
    import pandas as pd
    text = ("key", "status", "error", "variant", "prefill_mode", "decode_mode", "prefill_floor_bound",
            "decode_floor_bound")
    num = df.apply(lambda c: c if c.name in text else pd.to_numeric(c, errors="coerce"))
    dense = {(r.seq, r.batch, r.layers): r.prefill_ms for r in num.itertuples()
             if r.variant == "dense" and r.status == "ok"}

    def f(v, fmt):
        return "" if v is None or pd.isna(v) else format(v, fmt)

    def cells(r):
        ok = r.status == "ok"
        base = dense.get((r.seq, r.batch, r.layers))
        half = (r.prefill_ms_ci_hi - r.prefill_ms_ci_lo) / 2 / r.prefill_ms * 100 if ok else None
        peak = max([v for v in (r.prefill_peak_mib, r.decode_peak_mib) if not pd.isna(v)], default=None)
        return {
            "variant": str(r.variant), "E": f(r.experts, "d"), "k": f(r.top_k, "d"), "seq": f(r.seq, "d"),
            "b": f(r.batch, "d"), "L": f(r.layers, "d"), "d_inner": f(r.d_inner, ".0f"),
            "prefill ms": (f"{r.prefill_ms:.3f}" + _mode(r, "prefill")) if ok else "",
            "±CI%": f(half, ".2f"),
            "launch ms": f(getattr(r, "prefill_launch_ms", None) if ok else None, ".3f"),
            "x dense": f(r.prefill_ms / base if ok and base else None, ".2f"),
            "Mtok/s": f(r.prefill_tokens_per_s / 1e6 if ok else None, ".3f"),
            "TFLOP/s": f(r.prefill_tflops if ok else None, ".2f"),
            "x floor": _x_floor(r, "prefill") if ok else "",
            "decode us": (f"{r.decode_us:.1f}" + _mode(r, "decode")) if ok else "",
            "dec x floor": _x_floor(r, "decode") if ok else "",
            "kern": f(getattr(r, "decode_kernels", None) if ok else None, ".0f"),
            "mJ/tok": f(r.prefill_j_per_token * 1e3 if ok else None, ".4f"),
            "dec mJ/tok": f(r.decode_j_per_token * 1e3 if ok else None, ".4f"),
            "peak MiB": f(peak, ".0f"), "status": str(r.status),
        }
    rows = [cells(r) for r in num.itertuples()]
    keep = [c for c in (rows[0] if rows else {}) if any(row[c] for row in rows) or c == "status"]
    table = Table(title=f"swimbench latency, device={device}: medians", box=box.SIMPLE_HEAD)
    for c in keep:
        table.add_column(c, justify="left" if c in ("variant", "status") else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[c] for c in keep))
    # what each column means, said once when any of the columns it names is shown
    legend = {("prefill ms",): "g: CUDA-graph replay, e: eager calls",
              ("±CI%",): "±CI%: half-width of the 95% bootstrap interval of the prefill median",
              ("launch ms",): "launch ms: host time to launch one eager forward",
              ("x dense",): "x dense: prefill time over dense at the same seq, batch and layers",
              ("x floor", "dec x floor"): "x floor: median over the least time the counted bytes (at the "
                                          "measured copy bandwidth) or FLOPs (at the measured bf16 GEMM "
                                          "rate) allow, m or c: which bound it",
              ("kern",): "kern: CUDA kernels in the decode step's graph",
              ("mJ/tok",): "mJ/tok: NVML energy counter"}
    table.caption = "; ".join(v for cols, v in legend.items() if set(cols) & set(keep))
    return table
