"""`swimbench report`: figures and a markdown summary of latency runs, and comparisons between runs.

- `runs`:     a run directory read through swimbench.results (numbers, samples, power trace);
- `figures`:  each figure with the table of its data, or why it was skipped;
- `plotting`: colours, axes, legends and saving shared by the figures;
- `ceilings`: the device ceilings of the achieved-vs-peak figure and where they came from;
- `compare`:  two runs side by side, with ratios and significance;
- `summary`, `markdown`: the markdown summary and its tables;
- `render`:   all of it end to end.
"""
