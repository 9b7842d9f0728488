"""`swimbench gate`: regressions against a baseline, judged by a threshold and by statistics
(swimbench.stats: intervals, the Mann-Whitney U test). Runs are read through swimbench.results.reader.

- `metrics`:    what is gated (times, ratios to dense, memory, counts) and its extraction from a run;
- `compare`:    the verdict of each metric of each configuration;
- `baseline`:   baseline files in profiles/baselines/ (read, written, checked against the GPU);
- `flops`:      the FLOP gate: `swimbench flops` counts recounted and compared exactly.
"""
