"""`swimbench ep` on the CPU: one rank in this process, then two gloo ranks under torchrun appended to the same
run; rows, communication split, figures; bad input."""
import subprocess

import pytest

from swimbench import distributed
from swimbench.cli import main
from swimbench.results import ep as ep_table

SIZE = ["--device", "cpu", "-E", "3,5", "--seq", "7", "--batch", "2", "--d-model", "20", "--dtype", "fp32",
        "--reps", "2", "--warmup", "1"]
TINY = SIZE + ["-v", "moe_mamba,rom,swimba,rom", "-k", "1,2"]           # a repeated value is one row


def test_ep_rows_at_one_then_two_ranks_in_one_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["ep", *TINY, "--out", str(tmp_path)])
    assert e.value.code == 0, capsys.readouterr().err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    one = ep_table.read(run)
    assert len(one) == 3 * (2 * 2) * 2 * 2          # designs x (E, k) x modes x phases
    assert set(one["world_size"]) == {1} and set(one["clock"]) == {"perf_counter"}
    rep, exp = one[one["mode"] == "replicated"], one[one["mode"] == "expert"]
    assert (rep["comm_ms"] == 0).all() and (exp["comm_ms"] > 0).all()
    assert ((exp["comm_share"] > 0) & (exp["comm_share"] < 1)).all()
    assert (one["us_per_token"] * one["tokens"] / 1e3).round(9).tolist() == one["step_ms"].round(9).tolist()
    assert set(one.loc[one["phase"] == "prefill", "tokens"]) == {2 * 7}
    for name in ("ep_time_per_token.png", "ep_comm_share.png", "ep.md"):
        assert (run / name).stat().st_size > 0

    done = subprocess.run(distributed.torchrun(2, ["ep", *SIZE, "-v", "rom", "-k", "1", "--append", str(run)]),
                          env=distributed.launch_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    both = ep_table.read(run)
    two = both[both["world_size"] == 2]
    assert len(both) == len(one) + len(two) and len(two) == 2 * 2 * 2
    assert set(two["backend"]) == {"gloo"} and set(two["tokens"]) == {2 * 2 * 7, 2 * 2}
    sharded = two[two["mode"] == "expert"]
    assert (sharded["params_per_rank"] < sharded["params_layer"]).all()
    whole = two[two["mode"] == "replicated"]
    assert (whole["params_per_rank"] == whole["params_layer"]).all()
    assert "| rom" in (run / "ep.md").read_text()

    with pytest.raises(SystemExit) as e:                   # swimbench report draws the same from the run
        main(["report", str(run), "--out", str(tmp_path / "rep")])
    assert e.value.code == 0 and {p.name for p in (tmp_path / "rep").iterdir()} >= {"ep_comm_share.png", "ep.md"}


@pytest.mark.parametrize("args,says", [
    (["-v", "dense"], "--variants 'dense' is not allowed"),
    (["-E", "1"], "--experts 1 is not allowed"),
    (["--modes", "sideways"], "--modes 'sideways' is not allowed"),
    (["--gpus", "0"], "--gpus 0 is not allowed"),
    (["-k", "9"], "--top-k 9 is not allowed"),
    (["--reps", "0"], "--reps 0 is not allowed"),
])
def test_ep_bad_input_is_one_line_and_exit_2(args, says, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["ep", *TINY, "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
