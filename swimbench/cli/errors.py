"""Validation that reports bad input as one line naming the flag and what it accepts."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

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


def finite(flag: str, value: float, lo: float, hi: float) -> float:
    """A finite number from lo to hi (inf and nan are refused: they overflow every size made from them)."""
    if value is None or not math.isfinite(value) or not lo <= value <= hi:
        raise bad(flag, value, f"a finite number from {lo:g} to {hi:g}")
    return value


# A file name holds at most 255 bytes (NAME_MAX); a run directory's is <YYYYmmdd-HHMMSS>-<name>[-N]
MAX_RUN_NAME = 255 - len("20260101-000000-") - len("-999")


def run_name(flag: str, name: Optional[str]) -> Optional[str]:
    """The suffix of a new run directory's name (None: the command's default): one path component,
    printable, so that it can neither escape --out nor break the shell lines that quote it, and short
    enough for a file name once the timestamp is put before it."""
    if name is not None and (not name.strip() or name in (".", "..") or any(c in name for c in "/\\")
                             or not name.isprintable() or len(name.encode()) > MAX_RUN_NAME):
        raise bad(flag, name if len(name) <= 40 else name[:37] + "...",
                  f"a non-empty name without slashes or control characters, at most {MAX_RUN_NAME} bytes")
    return name


def split_ints(flag: str, values) -> list[int]:
    """Integers from repeated flags or comma/space-separated lists; an empty list is refused."""
    out = []
    for v in split_strs(values, flag):
        try:
            if not v.isascii():             # int() reads any script's digits; the flags read ASCII
                raise ValueError(v)
            out.append(int(v))
        except ValueError:
            raise bad(flag, v, "integers, e.g. 1,2,4,8") from None
    return out


def split_strs(values, flag: Optional[str] = None) -> list[str]:
    """Words from repeated flags or comma/space-separated lists; with `flag`, an empty list is refused."""
    out = [v for item in values for v in str(item).replace(",", " ").split()]
    if flag is not None and not out:
        raise bad(flag, ",".join(map(str, values)), "a non-empty list, e.g. 1,2,4")
    return out


def repeats_note(flag: str, values) -> Optional[str]:
    """The note a command prints (once its input is valid) when a list flag names a value twice: the
    value is measured or counted once (swimbench.sweeps.spec.distinct)."""
    from ..sweeps.spec import repeated
    twice = repeated(values)
    if not twice:
        return None
    return f"{flag} {','.join(map(str, twice))} given more than once: kept once"


# --- outputs: checked before any work starts, written so that a failure leaves no partial file ------
def _unwritable(directory: Path) -> Optional[str]:
    """Why files cannot be created in `directory` (made if missing), or None: by trying, since
    permissions, read-only file systems and /proc all answer only then."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def writable_dir(flag: str, path: Path) -> Path:
    """A directory the command can write into (created if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise bad(flag, str(path), "a directory (this is an existing file)")
    why = _unwritable(path)
    if why is not None:
        raise bad(flag, str(path), f"a directory this process can write ({why})")
    return path


def writable_file(flag: str, path: Path) -> Path:
    """A regular file the command can (over)write, in a directory it can write."""
    path = Path(path)
    if path.is_dir():
        raise bad(flag, str(path), "a file name (this is a directory)")
    if path.exists() and not path.is_file():
        raise bad(flag, str(path), "a regular file (this is a device, pipe or socket)")
    if (path.parent / "metadata.json").is_file():        # it would replace or mix with a run's own files
        raise bad(flag, str(path), "a file outside run directories (this one's files are the run's)")
    why = _unwritable(path.parent)
    if why is not None:
        raise bad(flag, str(path), f"a file in a directory this process can write ({why})")
    return path


def write_output(flag: str, path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a full disk or a vanished directory leaves the old file (or
    none), never a truncated one, and ends in one line naming the flag."""
    from ..results.atomic import atomic_write_text
    try:
        atomic_write_text(Path(path), text)
    except OSError as e:
        raise bad(flag, str(path), f"a file that can be written ({e.strerror or e})") from None
