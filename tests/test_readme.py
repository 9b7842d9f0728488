"""Every command of README.md's `## Commands` runs as written (issue 14): read from the README itself,
placeholders (`reports/<run>`, `[...]`) filled with real run directories, each run in a fresh process
from a scratch folder with the repository's profiles and baselines. A command ends as the README and
the docs say it does on a CPU machine: exit 0, or one line with its documented status where it needs
a GPU (`kernels`) or another GPU's baseline (`gate ... h200.json`). The `latency` commands of the GPU
profile take hours on a CPU: they run with `--dry-run`, which resolves every flag and the profile as
the run does, and the cpu profile's bare `swimbench latency` runs for real."""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Commands", 1)[1].split("\n- ", 1)[0]
    return [line.strip().split("  #")[0].strip() for line in block.splitlines()
            if line.startswith("    swimbench ")]


COMMANDS = readme_commands()
# what each command ends with on a CPU machine, where it is not 0: (exit status, words of its one line)
ON_A_CPU = {"swimbench kernels": (2, "no CUDA GPU"),
            "swimbench gate reports/<run> --baseline profiles/baselines/h200.json": (4, "measured on cpu"),
            "swimbench latency --gpus 4": (2, "no CUDA GPU"),
            "swimbench ep --gpus 2 -E 8,64": (2, "no CUDA GPU")}
TINY = ["--device", "cpu", "--d-model", "16", "--d-state", "4", "--seq", "8", "-v", "dense,swimba", "-E", "2",
        "-k", "1", "--budget", "0.01", "--min-reps", "3", "--dtype", "fp32"]


def test_the_readme_lists_its_commands():
    assert len(COMMANDS) >= 10 and all(c.startswith("swimbench ") for c in COMMANDS)
    assert "swimbench flops -E 1,8,64 -k 2 --format json --out flops.json" in COMMANDS


def swimbench(args, cwd, timeout=900):
    return subprocess.run([sys.executable, "-m", "swimbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with the repository's profiles and baselines and two finished CPU runs in reports/."""
    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "profiles", d / "profiles")
    runs = []
    for name in ("first", "second"):
        r = swimbench(["latency", *TINY, "--out", "reports", "--name", name], d)
        assert r.returncode == 0, r.stderr
        runs.append(next(p for p in (d / "reports").iterdir() if p.name.endswith(name)).relative_to(d))
    return d, runs


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_runs_as_written(command, scratch):
    d, (run, other) = scratch
    filled = (command.replace("[reports/<other run>]", str(other)).replace("reports/<run>", str(run))
              .replace("reports/<name>", "reports/rendered"))
    assert not re.search(r"[<>\[\]]", filled), filled
    args = shlex.split(filled)[1:]
    if args[0] == "latency" and args != ["latency"] and "--resume" not in args:
        args.append("--dry-run")            # the GPU profile's sizes: hours on a CPU
    r = swimbench(args, d)
    assert "Traceback" not in r.stderr, r.stderr
    want, words = ON_A_CPU.get(command, (0, ""))
    assert r.returncode == want, (filled, r.stderr[-2000:])
    if want:
        assert r.stderr.strip().count("\n") == 0 and words in r.stderr, r.stderr
    if args[:1] == ["flops"] and "--out" in args:
        assert (d / args[args.index("--out") + 1]).stat().st_size > 0
    if args[:1] == ["report"]:
        assert any((d / "reports" / "rendered").glob("*.png"))
