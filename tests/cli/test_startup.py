"""The command line starts without the engine: `--version`, `--help` and every `CMD --help` answer without
importing torch, triton, pandas or matplotlib (each took seconds to import on every call). Each case runs
in a fresh interpreter, since this test process has imported them all."""
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "triton", "pandas", "matplotlib")
PROBE = """
import json, sys
from swimbench.cli import main
code = None
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def _start(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return {**json.loads(done.stderr.strip().splitlines()[-1]), "stdout": done.stdout}


def _commands() -> list[str]:
    import typer

    from swimbench.cli import app
    return sorted(typer.main.get_command(app).commands)


def test_every_command_is_probed():
    assert {"flops", "latency", "generate", "ep", "report", "gate", "kernels"} <= set(_commands())


@pytest.mark.parametrize("args", [("--version",), ("--help",)])
def test_version_and_help_import_nothing_heavy(args):
    got = _start(*args)
    assert got["code"] == 0 and got["loaded"] == []
    assert ("swimbench " in got["stdout"]) if args == ("--version",) else all(c in got["stdout"]
                                                                            for c in _commands())


@pytest.mark.parametrize("command", _commands())
def test_command_help_imports_nothing_heavy(command, monkeypatch):
    # SWIMBENCH_KERNELS set (conftest sets it) is checked before a command works, not before its help
    monkeypatch.setenv("SWIMBENCH_KERNELS", "reference")
    got = _start(command, "--help")
    assert got["code"] == 0 and got["loaded"] == []
    assert f"swimbench {command}" in got["stdout"]


def test_a_command_that_works_still_checks_swimbench_kernels(monkeypatch):
    monkeypatch.setenv("SWIMBENCH_KERNELS", "fast")
    done = subprocess.run([sys.executable, "-m", "swimbench", "flops", "-E", "3"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "SWIMBENCH_KERNELS='fast'" in done.stderr
