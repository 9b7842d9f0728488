"""`swimbench kernels` without a GPU and with bad input: one line on stderr, exit status 2."""
import pytest
import torch

from swimbench.cli import main


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("args, flag", [
    (["--kernel", "dense,nope"], "--kernel"),
    (["--batch", "0"], "--batch"),
    (["--length", "x"], "--length"),
    (["--step-batch", "-3"], "--step-batch"),
    (["--experts", "2", "--top-k", "3"], "--top-k"),
    (["--d-state", "0"], "--d-state"),
    (["--dtype", "fp8"], "--dtype"),
    (["--out", "table.txt"], "--out"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, flag):
    code, out, err = run(["kernels", *args], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_says_so_in_one_line(capsys):
    code, out, err = run(["kernels", "--kernel", "dense"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "GPU" in err
