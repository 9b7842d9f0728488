"""Validation that reports bad input as one line naming the flag and what it accepts."""
from __future__ import annotations

from typing import Iterable, Sequence

import typer

try:  # typer >= 0.2x ships its own copy of click; older typer uses click itself
    from typer._click.exceptions import ClickException as ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException as ClickException, UsageError

Abort = typer.Abort


def bad(flag: str, got, allowed: str) -> UsageError:
    return UsageError(f"{flag} {got!r} is not allowed: expected {allowed}")


def positive(flag: str, value: int) -> int:
    if value is None or value < 1:
        raise bad(flag, value, "an integer >= 1")
    return value


def in_range(flag: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise bad(flag, value, f"an integer from {lo} to {hi}")
    return value


def one_of(flag: str, values: Iterable[str], allowed: Sequence[str]) -> list[str]:
    out = []
    for v in values:
        if v not in allowed:
            raise bad(flag, v, "one of " + ", ".join(allowed))
        out.append(v)
    return out


def split_ints(flag: str, values) -> list[int]:
    """Integers from repeated flags or comma/space-separated lists."""
    out = []
    for v in split_strs(values):
        try:
            out.append(int(v))
        except ValueError:
            raise bad(flag, v, "integers, e.g. 1,2,4,8") from None
    return out


def split_strs(values) -> list[str]:
    """Words from repeated flags or comma/space-separated lists."""
    return [v for item in values for v in str(item).replace(",", " ").split()]
