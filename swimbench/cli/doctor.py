"""`swimbench doctor`: whether this machine runs swimbench, checked as a user would run it: the
environment, every op's Triton kernel against its reference, every command once at tiny sizes.
Docs: docs/doctor.md."""
from __future__ import annotations

import typer

from . import app
from .errors import one_of

FORMATS = ("text", "json")


@app.command()
def doctor(
    fmt: str = typer.Option("text", "--format", "-f", help="text (a line per check) or json."),
    device: str = typer.Option("auto", help="auto, cuda, cuda:N or cpu."),
    skip_commands: bool = typer.Option(False, "--skip-commands",
                                       help="Check the environment and the kernels only, not the commands."),
):
    """Check this machine: environment, each op's kernel against its reference, each command at tiny sizes.

    One line per check (PASS, FAIL or SKIP, its name, what it found) and a count; exit 0 when nothing
    failed, 1 otherwise."""
    one_of("--format", [fmt], FORMATS)
    from .latency import _device
    dev = _device(device)
    from ..doctor import engine
    from ..doctor.environment import lines
    from ..doctor.result import closing_line

    env = engine.environment(dev)
    if fmt == "text":
        for line in lines(env):
            typer.echo(line)
    results = []
    for result in engine.checks(dev, env, skip_commands):
        results.append(result)
        if fmt == "text":
            typer.echo(result.line())
    if fmt == "text":
        typer.echo(closing_line(results))
    else:
        typer.echo(engine.as_json(env, results))
    code = engine.exit_code(results)
    if code:
        raise typer.Exit(code)
