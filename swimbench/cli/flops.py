"""`swimbench flops`: FLOPs per token of each design at matched FLOPs, counted three ways."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ..flops.table import FlopsRequest

from .. import designs
from ..config import Reference
from ..models.presets import PRESETS
from . import app
from ..sweeps.spec import problem, top_k_rule
from .errors import UsageError, bad, in_range, one_of, split_ints, split_strs, write_output, writable_file

FORMATS = ("table", "csv", "json")
PHASES = ("prefill", "decode")
MATCH_TOLERANCE_PCT = 1.0
ALIGNS = (1, 2, 4, 8, 16, 32, 64)
MAX_TRACED = 4096        # seq and batch of the traced forward
MODEL_IGNORES = ("d_model", "seq", "batch", "match")     # layer flags a whole model (--model) has no use for
CONVENTION = ("FLOPs per token, 2 per multiply-add (a lone multiply counts as one multiply-add; "
              "additions outside a multiply and exp/softplus/silu are not counted). fvcore counts "
              "one per multiply-add and is doubled here; FlopCounterMode counts two.")
# Short headers keep the table readable in an 80-column terminal.
HEADERS = {"variant": "variant", "experts": "E", "top_k": "k", "d_inner": "Di",
           "params_total": "params", "params_active": "active", "flops_analytic": "analytic",
           "flops_fvcore": "fvcore", "flops_torch": "torch", "mismatch_pct": "vs dense"}
TABLE_COLUMNS = ["variant", "experts", "top_k", "d_inner", "params_total", "params_active",
                 "flops_analytic", "flops_fvcore", "flops_torch", "mismatch_pct"]


def _check(d_model, expand, d_state, d_conv, experts, top_k, variants, seq, batch, match, fmt, align,
           capacity_factor, ffn_mult, model=None) -> list[int]:
    """The flags' values, checked by the rules `latency` uses for the same settings (sweeps/spec.py);
    returns the expert counts that stay (those below --top-k are left out, as `latency` leaves them)."""
    for flag, field, value in (("--d-model", "d_model", d_model), ("--expand", "expand", expand),
                               ("--d-state", "d_state", d_state), ("--d-conv", "d_conv", d_conv),
                               ("--experts", "experts", tuple(experts)), ("--top-k", "top_k", (top_k,)),
                               ("--capacity-factor", "capacity_factor", capacity_factor),
                               ("--ffn-mult", "ffn_mult", ffn_mult)):
        allowed = problem(field, value)
        if allowed is not None:
            got = ",".join(map(str, value)) if isinstance(value, tuple) else value
            raise bad(flag, got, allowed)
    allowed, _ = top_k_rule(experts, (top_k,))
    if allowed is not None:
        raise bad("--top-k", top_k, allowed)
    one_of("--variants", variants, designs.names())
    in_range("--seq", seq, 1, MAX_TRACED)
    in_range("--batch", batch, 1, MAX_TRACED)
    if seq * batch * d_model > MAX_TRACED * 256:
        raise bad("--seq", seq, f"a traced forward of at most {MAX_TRACED * 256:,} values (seq x batch x "
                                f"d-model; FLOPs per token do not depend on them)")
    one_of("--match", [match], PHASES)
    one_of("--format", [fmt], FORMATS)
    if align not in ALIGNS:
        raise bad("--align", align, "one of " + ", ".join(map(str, ALIGNS)))
    kept = [E for E in experts if E >= top_k]
    from ..flops.sizing import match_problem      # the sizes matching needs, before any layer is counted
    from ..sweeps.spec import MAX_D_MODEL
    cases = [(v, E, min(top_k, E)) for v in variants if designs.get(v).experts for E in kept]
    allowed = match_problem(cases, Reference(d_model, expand, d_state, d_conv), match, align, MAX_D_MODEL,
                            capacity_factor=capacity_factor, ffn_mult=ffn_mult)
    if allowed is not None and model is not None:       # the preset sets d_model: the experts are given
        raise bad("--experts", ",".join(map(str, kept)), f"expert counts that --model {model}'s d_model "
                                                          f"{d_model} can FLOP-match (it needs d_model {allowed})")
    if allowed is not None:
        raise bad("--d-model", d_model, allowed)
    return kept


@app.command()
def flops(
    ctx: typer.Context,
    d_model: int = typer.Option(2048, help="Reference dense layer: model width D."),
    expand: int = typer.Option(2, help="Reference dense layer: d_inner = expand * d_model."),
    d_state: int = typer.Option(16, help="SSM state size N (1..256)."),
    d_conv: int = typer.Option(4, help="Causal conv width K (1..8)."),
    experts: List[str] = typer.Option(["1", "2", "4", "8", "16", "32", "64"], "--experts", "-E", metavar="INT,...",
                                      help="Expert counts: repeat the flag or give a list, e.g. 1,4,16."),
    top_k: int = typer.Option(1, "--top-k", "-k", help="Experts per token."),
    variants: List[str] = typer.Option(list(designs.names(default_only=True)), "--variants", "-v", metavar="NAME,...",
                                       help="Variants: " + ", ".join(designs.names())),
    seq: int = typer.Option(64, help="Sequence length of the traced forward (prefill)."),
    batch: int = typer.Option(1, help="Batch of the traced forward."),
    match: str = typer.Option("prefill", help="Which FLOPs per token to match: prefill or decode."),
    align: int = typer.Option(8, help="Round matched d_inner to a multiple of this."),
    capacity_factor: float = typer.Option(1.25, help="MoE-Mamba: expert capacity factor (>= 1 here)."),
    ffn_mult: int = typer.Option(1, help="MoE-Mamba: expert FFN width d_ff = ffn_mult * d_inner."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the result to FILE."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="A whole language model instead of one layer: "
                                             + ", ".join(PRESETS) + " (its d_model; analytic counts)."),
):
    """FLOPs per token of each design, FLOP-matched to the dense Mamba layer (or a whole model, --model)."""
    from ..flops.table import FlopsRequest, rows   # heavy imports only once the input is valid

    from ..sweeps.spec import distinct
    from .errors import repeats_note
    experts, variants = split_ints("--experts", experts), split_strs(variants, "--variants")
    repeats = [n for n in (repeats_note("--experts", experts), repeats_note("--variants", variants)) if n]
    experts, variants = list(distinct(experts)), list(distinct(variants))
    if model is not None:
        one_of("--model", [model], tuple(PRESETS))
        from .latency import _given
        for name in MODEL_IGNORES:                  # the preset sets them: a value given would be dropped
            if name in _given(ctx):
                raise UsageError(f"--{name.replace('_', '-')} cannot be used with --model: a whole model is "
                                 f"counted analytically at its preset's width ({model}: d_model "
                                 f"{PRESETS[model].d_model})")
        d_model = PRESETS[model].d_model
    kept = _check(d_model, expand, d_state, d_conv, experts, top_k, variants, seq, batch, match, fmt, align,
                  capacity_factor, ffn_mult, model)
    if out is not None:
        writable_file("--out", out)
    for note in repeats:
        Console(stderr=True).print(f"note: {note}", highlight=False)
    if model is not None:
        _model_table(model, expand, d_state, d_conv, kept, top_k, variants, align, capacity_factor, ffn_mult,
                     fmt, out)
        return
    console = Console(stderr=True)
    left_out = [E for E in experts if E not in kept]
    if left_out and any(designs.get(v).experts for v in variants):
        console.print(f"note: --experts {','.join(map(str, left_out))} left out for the routed variants: "
                      f"fewer experts than --top-k {top_k}")
    ref = Reference(d_model, expand, d_state, d_conv)
    req = FlopsRequest(ref, tuple(kept), top_k, tuple(variants), seq, batch, match, align,
                       capacity_factor, ffn_mult)
    total = sum(len(kept) if designs.get(v).experts else 1 for v in variants)
    done = []

    def progress(r):      # on stderr, line by line, so that a pipe or a log sees the count advance
        done.append(r)
        console.print(f"counted {len(done)}/{total}: {r['variant']} E={r['experts']}", highlight=False)
    try:
        result = rows(req, on_row=progress)
    except ValueError as e:        # a variant that cannot be matched (e.g. too many active experts)
        raise bad("--top-k", top_k, f"a value the variants can match ({e})") from None
    text = _render(result, req, fmt)
    if text is not None:
        sys.stdout.write(text)
    if out is not None:
        write_output("--out", out, text if text is not None else _render(result, req, "csv"))
    if not all(r["counters_agree"] for r in result):
        console.print("[red]warning: the three FLOP counts disagree by more than 1% on some rows[/]")
    worst = max(result, key=lambda r: abs(r["mismatch_pct"]))
    if abs(worst["mismatch_pct"]) > MATCH_TOLERANCE_PCT:
        console.print(f"warning: {worst['variant']} E={worst['experts']} is {worst['mismatch_pct']:+.2f}% "
                      f"off dense at d_inner {worst['d_inner']}; a smaller --align matches closer")


def _render(result: list[dict], req: FlopsRequest, fmt: str) -> Optional[str]:
    import pandas as pd
    df = pd.DataFrame(result)[TABLE_COLUMNS]
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        meta = {"reference": vars(req.ref), "matched": req.match, "align": req.align, "seq": req.seq,
                "batch": req.batch, "capacity_factor": req.capacity_factor, "ffn_mult": req.ffn_mult,
                "routing": "balanced", "convention": CONVENTION,
                "request": req.as_dict()}          # what the FLOP gate recounts, field for field
        return json.dumps({**meta, "rows": result}, indent=2) + "\n"
    uncounted = sorted({op for r in result for op in r["fvcore_uncounted_ops"]})
    table = Table(title=f"MFLOPs per token at matched {req.match} FLOPs: D={req.ref.d_model} "
                        f"expand={req.ref.expand} N={req.ref.d_state} K={req.ref.d_conv}",
                  caption=CONVENTION + " Ops fvcore saw and left uncounted: " + ", ".join(uncounted) + ".",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for c in TABLE_COLUMNS:
        table.add_column(HEADERS[c], justify="left" if c == "variant" else "right")
    for r in result:
        table.add_row(r["variant"], str(r["experts"]), str(r["top_k"]), str(r["d_inner"]),
                      f"{r['params_total'] / 1e6:,.1f}M", f"{r['params_active'] / 1e6:,.1f}M",
                      f"{r['flops_analytic'] / 1e6:,.3f}", f"{r['flops_fvcore'] / 1e6:,.3f}",
                      f"{r['flops_torch'] / 1e6:,.3f}", f"{r['mismatch_pct']:+.2f}%")
    Console().print(table)
    return None


MODEL_COLUMNS = ["variant", "experts", "top_k", "d_inner", "params_total", "params_active", "flops_per_token",
                 "mismatch_pct"]


def _model_table(preset, expand, d_state, d_conv, experts, top_k, variants, align, capacity_factor, ffn_mult,
                 fmt, out) -> None:
    """`flops --model`: the whole model of each design, every block FLOP-matched to dense's."""
    import pandas as pd

    from ..flops.model import ModelDims, size_model
    dims = ModelDims.of(preset)
    result = []
    for variant in variants:
        for E in (experts if designs.get(variant).experts else (1,)):
            k = min(top_k, E)
            try:
                m = size_model(dims, variant, E, k, expand, d_state, d_conv, align, routing="balanced",
                               capacity_factor=capacity_factor, ffn_mult=ffn_mult)
            except ValueError as e:         # the expert count is what a small model cannot split
                raise bad("--experts", E, f"expert counts {variant} can match at --model {preset}'s "
                                          f"d_model {dims.d_model} ({e})") from None
            result.append({"variant": variant, "experts": E, "top_k": k, "d_inner": m.config.mixer.d_inner,
                           "params_total": m.params_total, "params_active": m.params_active,
                           "flops_per_token": m.flops_per_token, "mismatch_pct": m.mismatch_pct,
                           "mixer_flops_per_token": m.mixer_flops_per_token,
                           "head_flops_per_token": m.head_flops_per_token})
    head = {"model": preset, "d_model": dims.d_model, "n_layer": dims.n_layer, "vocab_size": dims.padded_vocab,
            "matched": "prefill", "convention": CONVENTION + " The model: n_layer mixers and the tied LM head "
            "(d_model x vocab multiply-adds per token); the embedding lookup and the norms are not counted."}
    if fmt == "table":
        table = Table(title=f"Whole model {preset}: D={dims.d_model}, {dims.n_layer} layers, vocab "
                            f"{dims.padded_vocab:,}; GFLOPs per token, every block FLOP-matched to dense",
                      caption=head["convention"], box=box.SIMPLE_HEAD, pad_edge=False)
        for c, h in (("variant", "variant"), ("experts", "E"), ("top_k", "k"), ("d_inner", "Di"),
                     ("params_total", "params"), ("params_active", "active"), ("flops_per_token", "GFLOP/tok"),
                     ("mismatch_pct", "vs dense")):
            table.add_column(h, justify="left" if c == "variant" else "right")
        for r in result:
            table.add_row(r["variant"], str(r["experts"]), str(r["top_k"]), str(r["d_inner"]),
                          f"{r['params_total'] / 1e6:,.1f}M", f"{r['params_active'] / 1e6:,.1f}M",
                          f"{r['flops_per_token'] / 1e9:,.4f}", f"{r['mismatch_pct']:+.2f}%")
        Console().print(table)
        text = None
    elif fmt == "csv":
        text = pd.DataFrame(result)[MODEL_COLUMNS].to_csv(index=False)
    else:
        text = json.dumps({**head, "rows": result}, indent=2) + "\n"
    if text is not None:
        sys.stdout.write(text)
    if out is not None:
        write_output("--out", out,
                     text if text is not None else pd.DataFrame(result)[MODEL_COLUMNS].to_csv(index=False))
