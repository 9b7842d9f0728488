"""The synthetic runs the report and gate tests use read back as a latency run writes them."""
import os

import numpy as np

from swimbench.results.reader import load_run

from ..synthetic import H100, SWEEP, lognormal, make_run, rng_for


def test_synthetic_run_reads_back(tmp_path):
    rng = rng_for("reads_back")
    drawn = {}
    made = make_run(tmp_path, lognormal(rng), rng=rng, drawn=drawn)
    run = load_run(made.path)
    assert len(run.rows) == len(SWEEP.points()) and (run.rows["status"] == "ok").all()
    assert run.gpu == H100 and run.device == "cuda"
    # Numbers come back as numbers, the medians are those of the recorded samples.
    for key, phase in drawn:
        row = run.rows.set_index("key").loc[key]
        assert row[phase] == np.median(drawn[key, phase])
        assert np.allclose(run.samples[key][phase], drawn[key, phase])
    assert run.power() is not None and set(run.power()["label"]) > {"idle"}
    assert os.path.isdir(made.path)
