"""What `latency` and `generate` do alike with a run directory: hold it, resume it, close an attempt and
summarize it for programs."""
from __future__ import annotations

import json
import time

from .errors import UsageError, bad

EXIT_ERRORS, EXIT_NOTHING, EXIT_INTERRUPTED = 1, 5, 130     # a row failed; every row oom; interrupted


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def hold(held, run, resume) -> None:
    """Lock `run` (being resumed from the flag's value `resume`) for this process, in the ExitStack
    `held`; a second writer, or a directory this process cannot write, is one line."""
    from ..results.rundir import RunLocked
    try:
        held.enter_context(run.lock())
    except RunLocked as e:
        raise UsageError(f"--resume: {e}; wait for it to end") from None
    except OSError as e:
        raise bad("--resume", str(resume), f"a run directory this process can write ({e.strerror or e})") from None


def resumable(run, resume, tool: str, fields, key: str, sweep_cls):
    """(metadata, sweep, settings) of the run `run` that --resume `resume` continues: written by `tool`,
    its metadata holding `fields` (RunDir.RESUME...), its sweep under `key` as a `sweep_cls`, its rows
    and samples read by the reader `report` and `gate` use; else one line naming the problem."""
    from ..results.reader import RunError, check_resumable
    from ..sweeps.spec import GENERATE_RULES, MeasureSettings, Sweep, problem
    try:
        written = run.read_metadata().get("tool")
        if written is not None and written != tool:
            raise ValueError(f"written by {written}")
        meta = check_resumable(run, fields)
        sweep = sweep_cls.from_dict(meta[key])
        settings = MeasureSettings.from_stored(meta["settings"])
        rules = None if sweep_cls is Sweep else GENERATE_RULES      # what the flags are held to, the run too
        for name, value in {**sweep.as_dict(), **settings.as_dict()}.items():
            allowed = None if value is None and rules is not None else problem(name, value, rules)
            if allowed is not None:
                raise ValueError(f"metadata.json {name} = {value!r}: expected {allowed}")
    except RunError as e:
        raise bad("--resume", str(resume), f"a readable run directory of {tool}: {e}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise bad("--resume", str(resume), f"a run directory of {tool} ({e})") from None
    return meta, sweep, settings


def refuse_changes(over: dict, stored: dict) -> None:
    """A flag given with --resume must say what the run already holds (`stored`: field -> value)."""
    for field, (flag, value) in over.items():
        old = tuple(stored[field]) if isinstance(stored[field], list) else stored[field]
        if old != value:
            raise UsageError(f"{flag} differs from the run being resumed ({old!r} there); "
                             f"drop it or start a new run")


def close_attempt(meta: dict, outcome, frame, started: float) -> tuple[int, bool, bool]:
    """Record how this attempt ended in `meta`: (exit status, interrupted, nothing measured)."""
    interrupted = outcome is None or outcome.interrupted
    nothing = not interrupted and not (frame["status"] == "ok").any()
    meta["status"] = ("interrupted" if interrupted else "nothing measured" if nothing
                      else "complete with errors" if outcome.errors else "complete")
    meta["attempts"][-1].update({"finished": iso(time.time()), "wall_s": round(time.time() - started, 3),
                                 "status": meta["status"],
                                 **({} if outcome is None else {"measured": len(outcome.measured),
                                                                "oom": outcome.oom, "errors": outcome.errors})})
    code = (EXIT_INTERRUPTED if interrupted else EXIT_NOTHING if nothing else EXIT_ERRORS if outcome.errors
            else 0)
    return code, interrupted, nothing


def close_failed(run, meta: dict, err: OSError, started: float) -> None:
    """A disk that failed mid-run (full, read-only, gone): the attempt is closed in metadata.json as
    `failed`, naming the file and the error, where metadata.json can still be written (a full disk
    often still takes its few bytes over the old file's); else it stays `running`. The rows written
    before stay as they were, and `--resume` continues the run."""
    what = f"{err.filename}: {err.strerror or err}" if err.filename else str(err.strerror or err)
    meta["status"] = "failed"
    meta["attempts"][-1].update({"finished": iso(time.time()), "wall_s": round(time.time() - started, 3),
                                 "status": "failed", "error": f"cannot write or read {what}"})
    try:
        run.write_metadata(meta)
    except OSError:
        pass


def summary_json(frame, path, status: str, code: int, columns) -> str:
    """The summary for programs: the run, its status and exit code, and each row's `columns`."""
    cols = [c for c in columns if c in frame]
    rows = json.loads(frame[cols].to_json(orient="records"))
    return json.dumps({"run": str(path), "status": status, "exit": code, "rows": rows}, indent=2)


def dry_run(doc: dict, headline: str, values: dict, fmt: str) -> None:
    """What a sweep would measure, measuring nothing: `doc` as JSON, else the headline, every resolved
    value and the notes (doc["notes"])."""
    import sys

    from rich.console import Console
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    out = Console(highlight=False)
    out.print(headline)
    for k, v in values.items():
        out.print(f"  {k} = {v}")
    for note in doc["notes"]:
        out.print(f"  note: {note}")
