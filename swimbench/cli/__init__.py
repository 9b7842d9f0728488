"""The `swimbench` command. Each subcommand lives in its own module and registers on `app`."""
from __future__ import annotations

import sys

import typer

from .errors import Abort, ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark and profile mixture-of-experts state-space models.")


@app.callback()
def _root():
    """Benchmark and profile mixture-of-experts state-space models."""


from . import flops as _flops  # noqa: E402,F401  (registers the command)
from . import kernels as _kernels  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import gate as _gate  # noqa: E402,F401
from . import latency as _latency  # noqa: E402,F401
from . import ep as _ep  # noqa: E402,F401


def main(argv=None) -> None:
    """Entry point: bad input ends in one line naming the flag, with exit status 2, never a traceback."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="swimbench", standalone_mode=False)
    except Abort:
        print("swimbench: aborted", file=sys.stderr)
        sys.exit(130)
    except ClickException as e:
        msg = one_line(e.format_message())
        if msg:  # empty when help was printed instead (no command given)
            print(f"swimbench: error: {msg}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


def one_line(msg: str) -> str:
    return " ".join(msg.split())
