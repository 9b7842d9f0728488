"""`swimbench gate`: regressions against a baseline, judged by a threshold and by statistics.

- `statistics`: estimates with intervals, the Mann-Whitney U rank test, evidence of a difference;
- `metrics`:    what is gated (times, ratios to dense, memory, counts) and its extraction from a run;
- `compare`:    the verdict of each metric of each configuration;
- `baseline`:   baseline files in profiles/baselines/ (read, written, checked against the GPU);
- `flops`:      the FLOP gate: `swimbench flops` counts recounted and compared exactly.
"""
