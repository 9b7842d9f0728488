"""The `swimbench` command. Each subcommand lives in its own module and registers on `app`."""
from __future__ import annotations

import os
import signal
import sys


def _interrupted_at_start(signum, frame):      # Ctrl-C while the command line loads: no traceback
    os.write(2, b"swimbench: interrupted during start-up\n")
    os._exit(130)


if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_at_start)

import typer  # noqa: E402

from .. import __version__  # noqa: E402
from .errors import Abort, ClickException, UsageError  # noqa: E402

# Starting the command line imports neither torch nor the engine: the command modules import what their
# work needs inside their functions, so `--version`, `--help` and `CMD --help` answer at once
# (tests/cli/test_startup.py holds them to it).
_HELP_ASKED = "swimbench.help_asked"


class _Group(typer.core.TyperGroup):
    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        words = rest[:rest.index("--")] if "--" in rest else rest
        ctx.meta[_HELP_ASKED] = cmd is not None and any(w in cmd.get_help_option_names(ctx) for w in words)
        return name, cmd, rest


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark and profile mixture-of-experts state-space models.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"swimbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """Benchmark and profile mixture-of-experts state-space models."""
    # checked before any command does work; `CMD --help` does none, and the check imports torch
    if "SWIMBENCH_KERNELS" in os.environ and not ctx.meta.get(_HELP_ASKED):
        from ..kernels._dispatch import kernel_mode
        try:
            kernel_mode()
        except ValueError as e:
            raise UsageError(str(e)) from None


from . import flops as _flops  # noqa: E402,F401  (registers the command)
from . import kernels as _kernels  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import gate as _gate  # noqa: E402,F401
from . import latency as _latency  # noqa: E402,F401
from . import ep as _ep  # noqa: E402,F401
from . import generate as _generate  # noqa: E402,F401
from . import doctor as _doctor  # noqa: E402,F401


EXIT_IO = 74            # sysexits' EX_IOERR: the disk failed mid-run (full, read-only, gone)


def main(argv=None) -> None:
    """Entry point: bad input ends in one line naming the flag, with exit status 2, never a traceback."""
    interrupted = []

    def interrupt(signum, frame):        # outside a sweep (which handles its own): say so, exit 130
        interrupted.append(signum)
        raise KeyboardInterrupt
    if signal.getsignal(signal.SIGINT) in (_interrupted_at_start, signal.default_int_handler):
        signal.signal(signal.SIGINT, interrupt)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="swimbench", standalone_mode=False)
    except (Abort, KeyboardInterrupt):
        print("swimbench: aborted", file=sys.stderr)
        sys.exit(130)
    except ClickException as e:
        msg = one_line(e.format_message())
        if msg:  # empty when help was printed instead (no command given)
            print(f"swimbench: error: {msg}", file=sys.stderr)
        sys.exit(e.exit_code)
    except OSError as e:      # a disk that fills or goes away mid-run: the files written so far stay
        where = f" ({e.filename})" if e.filename else ""
        print(f"swimbench: error: cannot write or read{where}: {e.strerror or e}", file=sys.stderr)
        sys.exit(EXIT_IO)
    finally:
        if signal.getsignal(signal.SIGINT) is interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if rv == 130 and interrupted:          # typer turns Ctrl-C into a silent exit status 130
        print("swimbench: interrupted", file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)


def one_line(msg: str) -> str:
    return " ".join(msg.split())
