"""Named sweep profiles: small TOML files in profiles/ (read with tomllib).

    description = "what the profile is for"
    [model]    d_model, expand, d_state, d_conv, dtype,         # the dense reference,
               capacity_factor, ffn_mult                         # and MoE-Mamba's FFN
    [sweep]    variants, experts, top_k, seq, batch, layers,     # the axes (lists)
               match, align, comparator, routing
    [measure]  budget_s, min_reps, warmup_reps, warmup_s, flush_l2, prefill, decode, decode_sample_s,
               energy, energy_window_s, power_interval_ms, seed

Every key is optional: a missing one keeps the built-in default (swimbench.sweeps.spec); a profile
file that sets no key at all is refused. Unknown sections or keys, and values a field does not accept,
are errors that name the file and the key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

try:
    import tomllib
except ModuleNotFoundError:                       # Python 3.10
    import tomli as tomllib                       # type: ignore[no-redef]

from .spec import SECTIONS, MeasureSettings, Sweep, problem

REPO_PROFILES = Path(__file__).resolve().parents[2] / "profiles"


class ProfileError(ValueError):
    """A profile that cannot be found or read; the message is one line naming the file and key."""


@dataclass(frozen=True)
class Profile:
    name: str
    path: Optional[str]
    description: str
    sweep: Sweep
    measure: MeasureSettings
    raw: dict                   # the file's own content, recorded in the run's metadata


def profile_dirs() -> list[Path]:
    """Where a profile name is looked up: $SWIMBENCH_PROFILES, the repository's profiles/, ./profiles."""
    dirs = [Path(p) for p in os.environ.get("SWIMBENCH_PROFILES", "").split(os.pathsep) if p]
    return dirs + [REPO_PROFILES, Path.cwd() / "profiles"]


def available() -> list[str]:
    return sorted({p.stem for d in profile_dirs() if d.is_dir() for p in d.glob("*.toml")})


def find_profile(name: str) -> Path:
    """A path to an existing .toml file, or the name of a profile in one of `profile_dirs()`."""
    if not name.strip():                # Path("") is ".", a directory: say what is wrong instead
        raise ProfileError(f"{name!r} names no profile (available: {', '.join(available()) or 'none'})")
    p = Path(name)
    if p.suffix == ".toml" and p.is_file():
        return p
    if p.is_file():
        raise ProfileError(f"{name} is a file but not a profile: a profile is a .toml file")
    if p.is_dir():
        raise ProfileError(f"{name} is a directory, not a profile (a .toml file or a profile's name)")
    for d in profile_dirs():
        cand = d / f"{name}.toml"
        if cand.is_file():
            return cand
    have = ", ".join(available()) or "none"
    raise ProfileError(f"no profile named {name!r} (available: {have})")


def load_profile(name: str) -> Profile:
    path = find_profile(name)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProfileError(f"profile {path} is not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    except OSError as e:
        raise ProfileError(f"cannot read profile {path}: {e.strerror}") from None
    prof = parse_profile(text, path.stem, str(path))
    if not any(isinstance(v, dict) and v for v in prof.raw.values()):
        # every value would be the built-in default, the GPU sweep (D=2048, seq 2048), also on a CPU,
        # where it runs for hours: an empty file is a mistake more often than a choice
        raise ProfileError(f"profile {path} sets nothing (no [model], [sweep] or [measure] key): give the keys "
                           f"it changes, or leave --profile out for this device's default profile")
    return prof


def parse_profile(text: str, name: str = "<string>", path: Optional[str] = None) -> Profile:
    where = path or name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"profile {where} is not valid TOML: {e}") from None
    values: dict = {}
    description = ""
    for section, body in raw.items():
        if section == "description":
            if not isinstance(body, str):
                raise ProfileError(f"profile {where}: description = {body!r} is not allowed: expected a string")
            description = body
            continue
        if section not in SECTIONS or not isinstance(body, dict):
            raise ProfileError(f"profile {where}: unknown section {section!r} "
                               f"(known: description, {', '.join('[' + s + ']' for s in SECTIONS)})")
        for key, value in body.items():
            if key not in SECTIONS[section]:
                raise ProfileError(f"profile {where}: unknown key [{section}] {key} "
                                   f"(known: {', '.join(SECTIONS[section])})")
            if key == "comparator" and isinstance(value, bool):
                value = "on" if value else "off"
            if key.endswith("_s") or key.endswith("_ms"):
                value = float(value) if isinstance(value, int) and not isinstance(value, bool) else value
            allowed = problem(key, value)
            if allowed is not None:
                raise ProfileError(f"profile {where}: [{section}] {key} = {value!r} is not allowed: "
                                   f"expected {allowed}")
            values[key] = value
    sweep_keys = SECTIONS["model"] + SECTIONS["sweep"]
    sweep = Sweep.from_dict({k: v for k, v in values.items() if k in sweep_keys})
    measure = MeasureSettings.from_dict({k: v for k, v in values.items() if k in SECTIONS["measure"]})
    return Profile(name, path, description, sweep, measure, raw)
