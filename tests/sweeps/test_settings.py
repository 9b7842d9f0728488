"""Settings are declared once (swimbench.sweeps.spec): their rules, profile sections and `latency` options
are read from those declarations, so a flag or key that sets nothing cannot exist."""
import inspect
from dataclasses import fields

import pytest

from swimbench.cli import latency as cli_latency
from swimbench.sweeps import profiles, spec


def test_every_latency_option_sets_a_setting_or_is_the_commands_own():
    params = set(inspect.signature(cli_latency.latency).parameters)
    assert params == set(spec.OPTIONS) | set(cli_latency.OWN)
    assert not set(spec.OPTIONS) & set(cli_latency.OWN)


def test_every_setting_has_one_section_and_a_rule_its_default_passes():
    names = [f.name for f in spec.SETTINGS]
    assert len(names) == len(set(names))
    assert sorted(n for sec in spec.SECTIONS.values() for n in sec) == sorted(names)
    defaults = {**spec.Sweep().as_dict(), **spec.MeasureSettings().as_dict()}
    for name in names:
        assert spec.problem(name, defaults[name]) is None, name


@pytest.mark.parametrize("field,bad", [("d_state", 0), ("d_state", 257), ("dtype", "fp8"), ("variants", []),
                                       ("variants", ["nope"]), ("experts", [0]), ("budget_s", 0),
                                       ("prefill", "lazy"), ("routing", "random"), ("match", "yes")])
def test_rules_refuse_what_the_field_cannot_take(field, bad):
    allowed = spec.problem(field, bad)
    assert isinstance(allowed, str) and allowed


def test_profiles_and_flags_read_the_same_declarations(tmp_path):
    assert profiles.SECTIONS is spec.SECTIONS and cli_latency.FIELDS is spec.OPTIONS
    for section, names in spec.SECTIONS.items():
        for name in names:
            f = next(f for f in spec.SETTINGS if f.name == name)
            assert f.metadata["section"] == section
    with pytest.raises(profiles.ProfileError, match=r"unknown key \[measure\] budget "):
        profiles.parse_profile("[measure]\nbudget = 1.0\n", "p", str(tmp_path / "p.toml"))


def test_settings_round_trip_through_run_metadata():
    sweep = spec.Sweep(variants=("dense", "rom"), experts=(3,), top_k=(1,), seq=(17,), ffn_mult=2)
    assert spec.Sweep.from_dict(sweep.as_dict()) == sweep
    measure = spec.MeasureSettings(budget_s=0.3, prefill="eager", seed=5)
    assert spec.MeasureSettings.from_dict(measure.as_dict()) == measure
    assert {f.name for f in fields(spec.MeasureSettings)} == set(spec.SECTIONS["measure"])
