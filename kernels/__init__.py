"""swimbench's scan and state-update ops (the `swimbench` torch.library namespace).

Each op has a pure-PyTorch reference in `<op>/naive.py`; a Triton kernel in `<op>/fused.py`
runs on CUDA tensors (and on the CPU under TRITON_INTERPRET=1). Shipped as `swimbench.kernels`.
"""
from .causal_conv1d import causal_conv1d, causal_conv1d_update
from .combine import combine
from .gather_mm import gather_mm
from .route import route
from .selective_scan import selective_scan
from .separated_scan import separated_scan
from .state_update import separated_state_update, selective_state_update, swimba_state_update
from .swimba_mix import swimba_mix
from .swimba_scan import swimba_scan

__all__ = ["causal_conv1d", "causal_conv1d_update", "combine", "gather_mm", "route", "swimba_mix",
           "selective_scan", "swimba_scan", "separated_scan",
           "selective_state_update", "swimba_state_update", "separated_state_update"]
