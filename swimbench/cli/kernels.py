"""`swimbench kernels`: kernel-level benchmark of the scan and decode-step kernels, beside mamba-ssm's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .. import designs
from . import app
from .errors import (UsageError, bad, in_range, one_of, positive, split_ints, split_strs, write_output,
                     writable_file)

KERNELS = designs.bench_kernels()
DTYPES = ("bf16", "fp16", "fp32")
OUT_SUFFIXES = (".csv", ".json")
UNITS = ("state updates: one token advancing one sequence's whole SSM state (b*l per scan, b per step); "
         "bytes: every input read once, every output written once (a step reads and writes its state); "
         "copy bw: a 1 GiB device-to-device copy, bytes read plus written; "
         "x floor: time over max(bytes / copy bw, FLOPs / bf16 GEMM rate), FLOPs 2 x the op's multiply-adds "
         "(kernels/flops.py), m or c: memory or compute bounds it. The scan's FLOPs run on CUDA cores, not "
         "the tensor cores the GEMM rate is measured on, so its compute floor is an under-estimate.")


@app.command()
def kernels(
    kernel: List[str] = typer.Option(list(KERNELS), "--kernel", "-K", metavar="NAME,...",
                                     help="Kernels: " + ", ".join(KERNELS)),
    batch: List[str] = typer.Option(["1", "8"], "--batch", "-b", metavar="INT,...", help="Scan batch sizes, e.g. 1,8."),
    length: List[str] = typer.Option(["8192"], "--length", "-l", metavar="INT,...",
                                     help="Scan lengths, e.g. 8192,32768."),
    step_batch: List[str] = typer.Option(["1", "128"], "--step-batch", metavar="INT,...",
                                         help="Decode-step batch sizes."),
    d_inner: int = typer.Option(4096, help="Channels per trajectory (per expert for separated)."),
    d_state: int = typer.Option(16, help="SSM state size N (1..256)."),
    experts: List[str] = typer.Option(["8"], "--experts", "-E", metavar="INT,...",
                                      help="Expert counts for swimba and separated."),
    top_k: int = typer.Option(2, "--top-k", "-k", help="Experts per token (Swimba's mixed streams)."),
    dtype: str = typer.Option("bf16", help="Input dtype: " + ", ".join(DTYPES)),
    mamba: bool = typer.Option(True, help="Also time mamba-ssm's kernels where importable."),
    rep: int = typer.Option(100, help="Milliseconds of timed repeats per case."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the rows to FILE (.csv or .json)."),
):
    """Time each kernel at each shape: median time, state updates/s, bytes moved, share of copy bandwidth,
    time over the floor the device's measured ceilings put under it."""
    from ..sweeps.spec import distinct
    from .errors import repeats_note
    given = {"--kernel": one_of("--kernel", split_strs(kernel, "--kernel"), KERNELS),
             "--batch": [positive("--batch", b) for b in split_ints("--batch", batch)],
             "--length": [positive("--length", n) for n in split_ints("--length", length)],
             "--step-batch": [positive("--step-batch", b) for b in split_ints("--step-batch", step_batch)],
             "--experts": [positive("--experts", e) for e in split_ints("--experts", experts)]}
    repeats = [n for flag, values in given.items() for n in [repeats_note(flag, values)] if n]
    kernel_list, batches, lengths, step_batches, expert_list = (list(distinct(v)) for v in given.values())
    positive("--d-inner", d_inner)
    in_range("--d-state", d_state, 1, 256)
    positive("--top-k", top_k)
    if top_k > min(expert_list):
        raise bad("--top-k", top_k, f"an integer from 1 to the smallest --experts ({min(expert_list)})")
    one_of("--dtype", [dtype], DTYPES)
    positive("--rep", rep)
    if out is not None and out.suffix not in OUT_SUFFIXES:
        raise bad("--out", str(out), "a file ending in " + " or ".join(OUT_SUFFIXES))
    if out is not None:
        writable_file("--out", out)

    import torch
    if not torch.cuda.is_available():
        raise UsageError("no CUDA GPU here: swimbench kernels times GPU kernels, run it on a machine with one")
    for note in repeats:
        typer.echo(f"note: {note}", err=True)
    import pandas as pd

    from ..measure import kernel_bench as kb
    from ..measure.ceilings import floor, measure

    cases = []
    for k in kernel_list:
        Es = [1] if k.startswith("dense") else expert_list
        shapes = [(b, 1) for b in step_batches] if k.endswith("-step") else [(b, n) for b in batches for n in lengths]
        for E in Es:
            for b, n in shapes:
                cases.append(kb.Case(k, b, n, d_inner, d_state, E, min(top_k, E), dtype))

    console = Console(stderr=True)
    rows = []
    with console.status("measuring the device's ceilings (copy bandwidth, bf16 GEMM)...") as status:
        ceilings = measure("cuda")
        copy_bw = ceilings.gbps * 1e9
        for c in cases:
            status.update(f"timing {c.label}")
            for r in kb.bench(c, "cuda", copy_bw, with_mamba=mamba, rep_ms=rep):
                f = floor(r["bytes"], r.get("flops"), ceilings)
                rows.append(dict(r, label=c.label, copy_gbps=ceilings.gbps, gemm_tflops=ceilings.tflops,
                                 floor_ms=f.seconds * 1e3 if f else None,
                                 x_floor=r["ms"] / (f.seconds * 1e3) if f else None,
                                 floor_bound=f.bound if f else None))
    _print(rows, ceilings, torch.cuda.get_device_name())
    if out is not None:
        df = pd.DataFrame(rows)
        write_output("--out", out, df.to_csv(index=False) if out.suffix == ".csv" else
                     json.dumps(dict(device=torch.cuda.get_device_name(), copy_gbps=ceilings.gbps,
                                     ceilings=ceilings.as_meta(), units=UNITS,
                                     rows=df.to_dict("records")), indent=2) + "\n")


def _print(rows: list[dict], ceilings, device: str) -> None:
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)        # logs and pipes get the whole table, not an 80-column squeeze
    out.print(table(rows, ceilings, device))


def table(rows: list[dict], ceilings, device: str) -> Table:
    """The benchmark table of `rows` (kernel_bench rows with label, x_floor and floor_bound)."""
    out = Table(title=f"swimbench kernels on {device} (copy {ceilings.gbps:,.0f} GB/s, bf16 GEMM "
                      f"{ceilings.tflops:,.0f} TFLOP/s)", caption=UNITS, box=box.SIMPLE_HEAD, pad_edge=False)
    longest = max((len(r["label"]) for r in rows), default=4)
    for name in ("case", "impl", "time", "updates/s", "MB moved", "GB/s", "of copy bw", "x floor", "plan"):
        # the case names a row: never cut or wrapped, however narrow the terminal
        out.add_column(name, justify="left" if name in ("case", "impl", "plan") else "right",
                       **(dict(no_wrap=True, min_width=longest) if name == "case" else {}))
    for r in rows:
        t = f"{r['us']:,.2f} us" if r["us"] < 1e3 else f"{r['ms']:,.3f} ms"
        x = f"{r['x_floor']:.2f} {r['floor_bound'][0]}" if r.get("x_floor") is not None else ""
        out.add_row(r["label"], r["impl"], t, f"{r['state_updates_per_s']:.3g}", f"{r['bytes'] / 1e6:,.1f}",
                    f"{r['gbps']:,.0f}", f"{r['frac_copy_bw']:.0%}", x, r["plan"])
    return out
