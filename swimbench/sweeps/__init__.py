"""What a `swimbench latency` run measures: the sweep's points and how they are measured, from
flags or from a named TOML profile in profiles/."""
from .profiles import ProfileError, available, find_profile, load_profile
from .spec import TIMING_MODES, DTYPES, MeasureSettings, Point, Sweep

__all__ = ["Point", "Sweep", "MeasureSettings", "DTYPES", "TIMING_MODES", "ProfileError", "available",
           "find_profile", "load_profile"]
