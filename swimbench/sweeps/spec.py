"""A sweep (variants x experts x top-k x seq x batch x layers, with the reference layer it is sized
against) and the settings of the measurement, as plain frozen dataclasses that round-trip to JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
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


_REF = Reference()


def _has_experts(variant: str) -> bool:
    return variant != COMPARATOR and designs.get(variant).experts


@dataclass(frozen=True)
class Sweep:
    # the dense reference every variant is FLOP-matched to (flat: these are the profile's [model] keys)
    d_model: int = _REF.d_model
    expand: int = _REF.expand
    d_state: int = _REF.d_state
    d_conv: int = _REF.d_conv
    dtype: str = "bf16"
    # the axes
    # any registered design (swimbench.designs); by default the built-in ones
    variants: tuple[str, ...] = field(default_factory=lambda: designs.names(default_only=True))
    experts: tuple[int, ...] = (2, 4, 8, 16)
    top_k: tuple[int, ...] = (1, 2)
    seq: tuple[int, ...] = (2048,)
    batch: tuple[int, ...] = (1,)
    layers: tuple[int, ...] = (1,)
    match: bool = True             # FLOP-match every variant to dense (prefill); False: expand*d_model
    align: int = 8
    comparator: str = "auto"       # mamba-ssm's Mamba as a comparator row: auto, on, off
    routing: str = "balanced"      # how routed variants choose experts (docs/layers.md)
    capacity_factor: float = 1.25  # MoE-Mamba's Switch FFN capacity
    ffn_mult: int = 1              # MoE-Mamba's expert FFN width, in units of d_inner

    def __post_init__(self):
        for f in ("variants", "experts", "top_k", "seq", "batch", "layers"):   # a repeat is one row
            object.__setattr__(self, f, tuple(dict.fromkeys(getattr(self, f))))

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
    budget_s: float = 1.0          # timed repetitions per measurement (prefill; decode likewise)
    min_reps: int = 10
    warmup_reps: int = 2
    warmup_s: float = 0.25
    flush_l2: bool = False         # GPU only
    prefill: str = "graph"         # graph (GPU only) or eager
    decode: str = "graph"          # graph (GPU only) or eager
    decode_sample_s: float = 1e-3  # decode calls grouped so one sample lasts at least this
    energy: bool = True            # GPU with NVML only; elsewhere the columns stay empty
    energy_window_s: float = 1.0
    power_interval_ms: float = 20.0
    seed: int = 0

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


# --- what each field accepts: one table for flags and profiles alike ------------------------------
def _int(lo: int, hi: Optional[int] = None):
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
    return ok, (f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}")


def _ints(lo: int):
    ok1, _ = _int(lo)
    return (lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(ok1(x) for x in v),
            f"a non-empty list of integers >= {lo}")


def _num(lo: float, strict: bool = False):
    def ok(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool)
                and (v > lo if strict else v >= lo))
    return ok, f"a number {'>' if strict else '>='} {lo:g}"


def _choice(allowed):
    return (lambda v: v in allowed), "one of " + ", ".join(allowed)


def _bool():
    return (lambda v: isinstance(v, bool)), "true or false"


def _variants():
    # the allowed text is made when asked: designs may be registered after this module is imported
    return ((lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(x in designs.names() for x in v)),
            lambda: "a non-empty list of " + ", ".join(designs.names()))


RULES = {
    "d_model": _int(1), "expand": _int(1), "d_state": _int(1, 256), "d_conv": _int(1, 8),
    "dtype": _choice(DTYPES), "align": _int(1),
    "variants": _variants(),
    "experts": _ints(1), "top_k": _ints(1), "seq": _ints(1), "batch": _ints(1), "layers": _ints(1),
    "match": _bool(), "comparator": _choice(COMPARATOR_MODES), "routing": _choice(ROUTINGS),
    "capacity_factor": _num(0, strict=True), "ffn_mult": _int(1),
    "budget_s": _num(0, strict=True), "min_reps": _int(1), "warmup_reps": _int(1), "warmup_s": _num(0),
    "flush_l2": _bool(), "prefill": _choice(TIMING_MODES), "decode": _choice(TIMING_MODES),
    "decode_sample_s": _num(0),
    "energy": _bool(), "energy_window_s": _num(1.0), "power_interval_ms": _num(1.0), "seed": _int(0),
}


def problem(field: str, value) -> Optional[str]:
    """None when `value` is acceptable for `field`, else what the field accepts."""
    ok, allowed = RULES[field]
    return None if ok(value) else (allowed() if callable(allowed) else allowed)
