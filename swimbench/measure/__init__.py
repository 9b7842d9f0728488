"""The measurement engine of `swimbench latency`, kept apart from the layers and from reporting
(a row's statistics: swimbench.stats).

- `timing`:   CUDA-event (or, on the CPU, perf_counter) timing with warm-up, a time budget and a
              minimum count, and the optional L2 flush;
- `graphs`:   CUDA-graph capture of a decode step;
- `energy`:   NVML: the total-energy counter over a window of back-to-back repetitions, and a
              background power-sampling thread;
- `env`:      the environment of a run (GPU, clocks, versions, commit, command);
- `ceilings`: the device's copy bandwidth and bf16 GEMM rate, measured at a run's start, and the
              floor they put under a call that moves B bytes and does F FLOPs;
- `kernel_count`: the CUDA kernels one call runs, from torch.profiler's device events;
- `workload`: what is timed for one sweep point (a layer or a stack, its inputs, its byte count);
- `point`:    one sweep point measured end to end into one results row.
"""
