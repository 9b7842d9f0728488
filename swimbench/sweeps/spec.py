"""A sweep (variants x experts x top-k x seq x batch x layers, with the reference layer it is sized
against) and the settings of the measurement, as plain frozen dataclasses that round-trip to JSON."""
from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Optional

from .. import designs
from ..config import ROUTINGS, Reference

DTYPES = ("bf16", "fp16", "fp32")
TIMING_MODES = ("graph", "eager")    # CUDA-graph replay (GPU only) or eager calls
COMPARATOR_MODES = ("auto", "on", "off")
COMPARATOR = "mamba_ssm"            # the variant name of mamba-ssm's own Mamba layer rows


@dataclass(frozen=True)
class Point:
    """One configuration: one row of results."""
    variant: str
    experts: int
    top_k: int
    seq: int
    batch: int
    layers: int

    @property
    def key(self) -> str:
        return (f"{self.variant}/E{self.experts}/k{self.top_k}/seq{self.seq}/b{self.batch}"
                f"/L{self.layers}")

    def label(self) -> str:
        moe = "" if not _has_experts(self.variant) else f" E={self.experts} k={self.top_k}"
        layers = f" x{self.layers} layers" if self.layers > 1 else ""
        return f"{self.variant}{moe} seq={self.seq} b={self.batch}{layers}"


# --- what each field accepts: one table for flags and profiles alike ------------------------------
def _int(lo: int, hi: Optional[int] = None):
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
    return ok, (f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}")


def _ints(lo: int, hi: int):
    ok1, _ = _int(lo, hi)
    return (lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(ok1(x) for x in v),
            f"a non-empty list of integers from {lo} to {hi}")


def _num(lo: float, hi: float, strict: bool = False):
    """A finite number from lo (excluded when strict) to hi: inf and nan overflow what is made of them."""
    def ok(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and (v > lo if strict else v >= lo) and v <= hi)
    return ok, f"a finite number {'>' if strict else '>='} {lo:g} and <= {hi:g}"


def _choice(allowed):
    return (lambda v: v in allowed), "one of " + ", ".join(allowed)


def _bool():
    return (lambda v: isinstance(v, bool)), "true or false"

def _variants():
    # the allowed text is made when asked: designs may be registered after this module is imported
    return ((lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(x in designs.names() for x in v)),
            lambda: "a non-empty list of " + ", ".join(designs.names()))


def distinct(values) -> tuple:
    """A list setting's values, each once, in the order first given: a repeated value is one row (list
    flags may be repeated, and their values add up: `-E 2 -E 2,4` is 2,4)."""
    return tuple(dict.fromkeys(values))


def repeated(values) -> list:
    """The values that `distinct` drops, once each (what a command's note names)."""
    seen: dict = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    return [v for v, n in seen.items() if n > 1]


def setting(default=MISSING, *, rule, section: str, option: Optional[str] = None, factory=MISSING):
    """A setting, declared once: its default, what it accepts (`rule`: a check and the text naming what is
    allowed), the section of a TOML profile that holds it, and the `swimbench latency` option that sets it
    (the option's parameter name; None: profiles only). Profiles, flags, run metadata and --resume all
    read these declarations."""
    return field(default=default, default_factory=factory,
                 metadata={"rule": rule, "section": section, "option": option})


_REF = Reference()
# Upper bounds of sizes and counts: past them a size overflows, or a sweep never ends (a batch or
# sequence too large for the device is measured as an oom row).
MAX_D_MODEL, MAX_SEQ, MAX_REPS = 65_536, 1 << 40, 100_000


def _has_experts(variant: str) -> bool:
    return variant != COMPARATOR and designs.get(variant).experts


@dataclass(frozen=True)
class Sweep:
    # the dense reference every variant is FLOP-matched to (flat: these are the profile's [model] keys)
    d_model: int = setting(_REF.d_model, rule=_int(1, MAX_D_MODEL), section="model", option="d_model")
    expand: int = setting(_REF.expand, rule=_int(1, 64), section="model", option="expand")
    d_state: int = setting(_REF.d_state, rule=_int(1, 256), section="model", option="d_state")
    d_conv: int = setting(_REF.d_conv, rule=_int(1, 8), section="model", option="d_conv")
    dtype: str = setting("bf16", rule=_choice(DTYPES), section="model", option="dtype")
    # the axes; variants: any registered design (swimbench.designs), by default the built-in ones
    variants: tuple[str, ...] = setting(rule=_variants(), section="sweep", option="variants",
                                        factory=lambda: designs.names(default_only=True))
    experts: tuple[int, ...] = setting((2, 4, 8, 16), rule=_ints(1, 1024), section="sweep", option="experts")
    top_k: tuple[int, ...] = setting((1, 2), rule=_ints(1, 1024), section="sweep", option="top_k")
    seq: tuple[int, ...] = setting((2048,), rule=_ints(1, MAX_SEQ), section="sweep", option="seq")
    batch: tuple[int, ...] = setting((1,), rule=_ints(1, MAX_SEQ), section="sweep", option="batch")
    layers: tuple[int, ...] = setting((1,), rule=_ints(1, 64), section="sweep", option="layers")
    # FLOP-match every variant to dense (prefill); False: expand * d_model for all
    match: bool = setting(True, rule=_bool(), section="sweep", option="match")
    align: int = setting(8, rule=_int(1, 256), section="sweep")
    # mamba-ssm's Mamba as a comparator row: auto, on, off
    comparator: str = setting("auto", rule=_choice(COMPARATOR_MODES), section="sweep", option="mamba_ssm")
    # how routed variants choose experts (docs/layers.md)
    routing: str = setting("balanced", rule=_choice(ROUTINGS), section="sweep", option="routing")
    # MoE-Mamba's Switch FFN capacity and expert width (in units of d_inner)
    capacity_factor: float = setting(1.25, rule=_num(1, 1024), section="model",
                                   option="capacity_factor")
    ffn_mult: int = setting(1, rule=_int(1, 64), section="model", option="ffn_mult")

    def __post_init__(self):
        for f in ("variants", "experts", "top_k", "seq", "batch", "layers"):
            object.__setattr__(self, f, distinct(getattr(self, f)))

    def points(self, comparator: bool = False) -> list[Point]:
        """Every configuration, seq and batch outermost so each (seq, batch) block completes early.

        Dense has no experts: one row per (seq, batch, layers). A MoE variant gets one row per
        (experts, top_k) with top_k <= experts; the comparator one row beside dense."""
        out = []
        for seq in self.seq:
            for batch in self.batch:
                for layers in self.layers:
                    if comparator:
                        out.append(Point(COMPARATOR, 1, 1, seq, batch, layers))
                    for v in self.variants:
                        if not _has_experts(v):
                            out.append(Point(v, 1, 1, seq, batch, layers))
                            continue
                        for E in self.experts:
                            for k in self.top_k:
                                if k <= E:
                                    out.append(Point(v, E, k, seq, batch, layers))
        return out

    def reference(self) -> Reference:
        return Reference(self.d_model, self.expand, self.d_state, self.d_conv)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Sweep":
        return cls(**_tuples(cls, d))


STORED_BEFORE = {"prefill": "eager"}   # settings added since, as runs stored before did them
                                      # (their rows: swimbench.results.COLUMNS_BEFORE)


@dataclass(frozen=True)
class MeasureSettings:
    # timed repetitions per measurement (prefill; decode likewise)
    budget_s: float = setting(1.0, rule=_num(0, 3600, strict=True), section="measure",
                             option="budget")
    min_reps: int = setting(10, rule=_int(1, MAX_REPS), section="measure", option="min_reps")
    warmup_reps: int = setting(2, rule=_int(1, MAX_REPS), section="measure", option="warmup")
    warmup_s: float = setting(0.25, rule=_num(0, 3600), section="measure")
    flush_l2: bool = setting(False, rule=_bool(), section="measure", option="flush_l2")          # GPU only
    prefill: str = setting("graph", rule=_choice(TIMING_MODES), section="measure", option="prefill")   # graph: GPU
    decode: str = setting("graph", rule=_choice(TIMING_MODES), section="measure", option="decode")
    # decode calls grouped so one sample lasts at least this
    decode_sample_s: float = setting(1e-3, rule=_num(0, 1), section="measure")
    # GPU with NVML only; elsewhere the columns stay empty
    energy: bool = setting(True, rule=_bool(), section="measure", option="energy")
    energy_window_s: float = setting(1.0, rule=_num(1.0, 600), section="measure", option="energy_window")
    power_interval_ms: float = setting(20.0, rule=_num(1.0, 60_000), section="measure",
                                      option="power_interval")
    seed: int = setting(0, rule=_int(0, 2**63 - 1), section="measure", option="seed")
    # the sweep measured this many times, each in another order: the spread between runs (the gate's)
    repeats: int = setting(1, rule=_int(1, 100), section="measure", option="repeats")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MeasureSettings":
        return cls(**_tuples(cls, d))

    @classmethod
    def from_stored(cls, d: dict) -> "MeasureSettings":
        """The settings a run directory recorded; runs written before a setting existed did what is
        in STORED_BEFORE (prefill was timed eagerly), so resuming them keeps doing it."""
        return cls.from_dict({**STORED_BEFORE, **d})

    def with_(self, **kw) -> "MeasureSettings":
        return replace(self, **kw)


def _tuples(cls, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown fields for {cls.__name__}: {', '.join(sorted(unknown))}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


SETTINGS = (*fields(Sweep), *fields(MeasureSettings))     # every setting, each declared once above
RULES = {f.name: f.metadata["rule"] for f in SETTINGS}
SECTIONS = {sec: tuple(f.name for f in SETTINGS if f.metadata["section"] == sec) for sec in ("model", "sweep",
                                                                                            "measure")}
OPTIONS = {f.metadata["option"]: f.name for f in SETTINGS if f.metadata["option"]}   # latency option -> field


def top_k_rule(experts, top_k) -> tuple[Optional[str], list[tuple[int, int]]]:
    """The one rule of `latency` and `flops` for experts x top-k: a pair with k > E is left out (the
    pairs returned, for a note); a k above every E leaves nothing, and is refused (what is allowed)."""
    if max(top_k) > max(experts):
        return f"values at most the largest --experts ({max(experts)})", []
    return None, [(E, k) for E in experts for k in top_k if k > E]


def problem(field: str, value, rules: Optional[dict] = None) -> Optional[str]:
    """None when `value` is acceptable for `field`, else what the field accepts. `rules`: a table of
    rules other than latency's (GENERATE_RULES)."""
    ok, allowed = (RULES if rules is None else rules)[field]
    return None if ok(value) else (allowed() if callable(allowed) else allowed)


# --- `swimbench generate`: whole models generating text (docs/generate.md) -----------------------------
@dataclass(frozen=True)
class GenPoint:
    """One generation configuration: one row of a generate run. `seq` is the prompt's length and `layers`
    the model's blocks, so that the columns a row shares with latency rows mean the same."""
    variant: str
    experts: int
    top_k: int
    seq: int
    batch: int
    layers: int
    new_tokens: int
    model: str              # the preset (or "custom")

    @property
    def key(self) -> str:
        return (f"gen/{self.model}/{self.variant}/E{self.experts}/k{self.top_k}/prompt{self.seq}"
                f"/new{self.new_tokens}/b{self.batch}")

    def label(self) -> str:
        moe = "" if not _has_experts(self.variant) else f" E={self.experts} k={self.top_k}"
        return f"{self.model} {self.variant}{moe} prompt={self.seq} new={self.new_tokens} b={self.batch}"


# What generate's settings accept where they are latency's too (a prompt is a seq): Sweep's rules.
_AS_LATENCY = {f.name: f.metadata["rule"] for f in fields(Sweep)}
# Past these a whole model's size overflows what any GPU holds, or a generation never ends: an SSM's
# step costs the same at every position, so per-token latency needs no generation longer than this.
MAX_LAYERS, MAX_VOCAB, MAX_NEW_TOKENS = 1024, 1 << 22, 1 << 16


@dataclass(frozen=True)
class GenerateSweep:
    """The models and generations of a generate run: a preset (or d_model and n_layer), its designs at
    matched FLOPs, prompts, new tokens and batches. Each field declares what it accepts and the
    `swimbench generate` option that sets it (section "generate"), as Sweep's do for `latency`; the
    preset's name is checked against swimbench.models.presets by the command, the model's sizes are
    swimbench.flops.model's."""
    preset: Optional[str] = setting("1.4b", rule=(lambda v: v is None or isinstance(v, str), "a preset name"),
                                    section="generate", option="preset")
    d_model: Optional[int] = setting(None, rule=_AS_LATENCY["d_model"], section="generate", option="d_model")
    n_layer: Optional[int] = setting(None, rule=_int(1, MAX_LAYERS), section="generate", option="layers")
    vocab_size: Optional[int] = setting(None, rule=_int(2, MAX_VOCAB), section="generate", option="vocab_size")
    expand: int = setting(_REF.expand, rule=_AS_LATENCY["expand"], section="generate")
    d_state: int = setting(_REF.d_state, rule=_AS_LATENCY["d_state"], section="generate")
    d_conv: int = setting(_REF.d_conv, rule=_AS_LATENCY["d_conv"], section="generate")
    dtype: str = setting("bf16", rule=_AS_LATENCY["dtype"], section="generate", option="dtype")
    variants: tuple[str, ...] = setting(rule=_AS_LATENCY["variants"], section="generate", option="variants",
                                        factory=lambda: designs.names(default_only=True))
    experts: tuple[int, ...] = setting((8,), rule=_AS_LATENCY["experts"], section="generate", option="experts")
    top_k: tuple[int, ...] = setting((1, 2), rule=_AS_LATENCY["top_k"], section="generate", option="top_k")
    prompt: tuple[int, ...] = setting((2048,), rule=_AS_LATENCY["seq"], section="generate", option="prompt")
    new_tokens: int = setting(256, rule=_int(2, MAX_NEW_TOKENS), section="generate", option="new_tokens")
    batch: tuple[int, ...] = setting((1, 16), rule=_AS_LATENCY["batch"], section="generate", option="batch")
    routing: str = setting("balanced", rule=_AS_LATENCY["routing"], section="generate", option="routing")
    capacity_factor: float = setting(1.25, rule=_AS_LATENCY["capacity_factor"], section="generate")
    ffn_mult: int = setting(1, rule=_AS_LATENCY["ffn_mult"], section="generate")
    align: int = setting(8, rule=_AS_LATENCY["align"], section="generate")
    # mamba-ssm's MambaLMHeadModel rows: auto, on, off
    comparator: str = setting("auto", rule=_AS_LATENCY["comparator"], section="generate", option="mamba_ssm")

    def __post_init__(self):
        for f in ("variants", "experts", "top_k", "prompt", "batch"):
            object.__setattr__(self, f, distinct(getattr(self, f)))

    def points(self, model: str, n_layer: int, comparator: bool = False) -> list[GenPoint]:
        """Prompt and batch outermost; the comparator first in each block, then every design."""
        out = []
        for prompt in self.prompt:
            for batch in self.batch:
                if comparator:
                    out.append(GenPoint(COMPARATOR, 1, 1, prompt, batch, n_layer, self.new_tokens, model))
                for v in self.variants:
                    pairs = [(E, k) for E in self.experts for k in self.top_k if k <= E] \
                        if _has_experts(v) else [(1, 1)]
                    out += [GenPoint(v, E, k, prompt, batch, n_layer, self.new_tokens, model) for E, k in pairs]
        return out

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "GenerateSweep":
        return cls(**_tuples(cls, d))


GENERATE_RULES = {f.name: f.metadata["rule"] for f in (*fields(GenerateSweep), *fields(MeasureSettings))}
# generate option -> GenerateSweep field; its measurement options are latency's (OPTIONS)
GENERATE_OPTIONS = {f.metadata["option"]: f.name for f in fields(GenerateSweep) if f.metadata["option"]}
