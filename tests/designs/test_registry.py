"""The design registry: every built-in design declared once and read from there, and a design added from a
test module alone reaching `flops`, `latency` and `report` (issue 12's acceptance)."""
import json

import pandas as pd
import pytest

from swimbench import designs
from swimbench.cli import main
from swimbench.config import LayerConfig
from swimbench.designs import dense as dense_design
from swimbench.flops.analytic import macs_per_token, params
from swimbench.layers import DenseMamba
from swimbench.report import plotting


class ToyMixer(DenseMamba):
    """A design no swimbench module knows: the dense block under another name."""


TOY = designs.Design("toy", "Toy mixer", "tab:pink", ToyMixer, dense_design.macs, dense_design.params,
                     summary="a test's own design", experts=False, default=False)


@pytest.fixture
def toy():
    designs.register(TOY)
    yield TOY
    designs.unregister(TOY.name)


def _main(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr()


def test_a_design_registered_from_a_test_gets_flops_latency_and_a_figure(toy, tmp_path, capsys):
    code, out = _main(["flops", "--d-model", "64", "-E", "1", "-v", "dense,toy", "--seq", "4", "--format", "json"],
                      capsys)
    assert code == 0, out.err
    rows = {r["variant"]: r for r in json.loads(out.out)["rows"]}
    assert rows["toy"]["counters_agree"] and rows["toy"]["d_inner"] == rows["dense"]["d_inner"]
    assert rows["toy"]["flops_analytic"] == rows["toy"]["flops_fvcore"] == rows["dense"]["flops_analytic"]

    runs = tmp_path / "runs"
    code, out = _main(["latency", "-v", "dense,toy", "--d-model", "16", "--d-state", "4", "--seq", "8",
                       "--batch", "1", "--budget", "0.005", "--min-reps", "3", "--warmup", "1", "--dtype", "fp32",
                       "--out", str(runs)], capsys)
    assert code == 0, out.err
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    results = pd.read_csv(run / "results.csv").set_index("variant")
    assert results.loc["toy", "status"] == "ok" and results.loc["toy", "prefill_ms"] > 0
    assert results.loc["toy", "d_inner"] == results.loc["dense", "d_inner"]

    code, out = _main(["report", str(run), "--out", str(tmp_path / "report")], capsys)
    assert code == 0, out.err
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "| toy " in summary                      # the prefill figure's data table has its row
    assert (tmp_path / "report" / run.name / "prefill_vs_experts.png").stat().st_size > 0
    assert plotting.color("toy") == "tab:pink" and plotting.label("toy", 1) == "Toy mixer k=1"


def test_an_unregistered_design_is_gone_everywhere(toy):
    designs.unregister(toy.name)
    assert "toy" not in designs.names()
    with pytest.raises(ValueError, match="variant must be one of dense, swimba"):
        LayerConfig("toy")
    designs.register(toy)                   # for the fixture's teardown


def test_built_in_designs_are_each_declared_once_with_their_own_colour():
    assert designs.names() == ("dense", "swimba", "separated", "moe_mamba", "rom")
    assert designs.names(default_only=True) == designs.names()
    colors = [designs.get(n).color for n in designs.names()]
    assert len(set(colors)) == len(colors)
    with pytest.raises(ValueError, match="registered already"):
        designs.register(designs.get("swimba"))
    with pytest.raises(ValueError, match="recurrence must be one of"):
        designs.register(designs.Design("x", "x", "red", ToyMixer, dense_design.macs, dense_design.params,
                                        recurrence="bogus"))


@pytest.mark.parametrize("variant", ["dense", "swimba", "separated", "moe_mamba", "rom"])
def test_each_design_builds_its_layer_and_counts_what_it_holds(variant):
    E, k = (1, 1) if variant == "dense" else (3, 2)
    cfg = LayerConfig(variant, 32, 40, 4, 4, experts=E, top_k=k)
    layer = designs.build_layer(cfg)
    assert type(layer) is designs.get(variant).layer_class()
    assert params(cfg)[0] == sum(p.numel() for p in layer.parameters())
    assert set(macs_per_token(cfg)) == set(designs.COMPONENTS)


def _widths_of_three(cfg):
    if cfg.d_inner % 3:
        raise ValueError("picky says no")


def test_design_rules_are_enforced_where_configurations_are_made():
    with pytest.raises(ValueError, match="dense has no experts"):
        LayerConfig("dense", experts=2, top_k=1)
    designs.register(designs.Design("picky", "picky", "red", ToyMixer, dense_design.macs, dense_design.params,
                                    experts=False, rules=_widths_of_three))
    try:
        with pytest.raises(ValueError, match="picky says no"):
            LayerConfig("picky", d_inner=40)
        assert LayerConfig("picky", d_inner=42).d_inner == 42
    finally:
        designs.unregister("picky")
