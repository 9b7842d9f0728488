"""Reference of the gate-weighted combination of expert outputs."""
from torch import Tensor


def combine_naive(gates: Tensor, values: Tensor) -> Tensor:
    """sum_j g_j v_j in fp32, gates (T, k), values (T, k, N) -> (T, N) in values' dtype."""
    return (gates.float().unsqueeze(-1) * values.float()).sum(1).to(values.dtype)
