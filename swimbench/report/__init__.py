"""`swimbench report`: figures and a markdown summary of latency runs, and comparisons between runs.
Runs are read through swimbench.results.reader (typed rows, samples, power trace).

- `figures`:  each figure with the table of its data, or why it was skipped;
- `plotting`: colours, axes, legends and saving shared by the figures;
- `ceilings`: the device ceilings (flags, else the run's measured ones) and each row's floor at them;
- `compare`:  two runs side by side, with ratios and significance;
- `summary`, `markdown`: the markdown summary and its tables;
- `render`:   all of it end to end.
"""
