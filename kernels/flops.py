"""Multiply-add counts of the scan and state-update ops, from their shapes.

Convention (the one fvcore uses): one multiply-add counts once, a lone multiply counts as one
multiply-add, additions outside a multiply and transcendental functions (exp, softplus, silu)
are not counted. FLOPs are twice these counts. The FLOP counters register these for our custom
ops, and the analytic model uses the same constants, so all three speak one convention.
"""
from __future__ import annotations

# Per (token, channel, state): delta*A, (delta*u)*B, the state update h = dA*h + dBu, and <C, h>.
MACS_PER_STATE = 4
# Per (token, channel): delta*u, plus the D skip when present.
MACS_PER_CHANNEL = 1


def recurrence_macs(tokens: int, groups: int, d: int, n: int, skip: bool) -> int:
    """The recurrence of `groups` trajectories of d channels and n states, with its D skip."""
    return tokens * groups * d * (MACS_PER_STATE * n + MACS_PER_CHANNEL + int(skip))


def mixing_macs(tokens: int, k: int, d: int, n: int) -> int:
    """Swimba's parameter-space mixing: g-weighted sums of k streams of delta (d), B and C (n each)."""
    return tokens * k * (d + 2 * n)


def combine_macs(tokens: int, groups: int, d: int) -> int:
    """Separated MoE-SSM's output combination: sum over every trajectory of g_e * y^e."""
    return tokens * groups * d


def gate_macs(tokens: int, d: int, gated: bool) -> int:
    """The output gate y * silu(z)."""
    return tokens * d if gated else 0


def combine_op_macs(gates_shape, values_shape) -> int:
    """swimbench::combine: one multiply-add per token, expert and output element."""
    T, k, N = (int(s) for s in values_shape)
    return T * k * N


def gather_mm_macs(w_shape, idx_shape) -> int:
    """swimbench::gather_mm: each of the T k slots through one (K, N) matrix."""
    K, N = int(w_shape[-2]), int(w_shape[-1])
    return _tokens(idx_shape, 0) * K * N


def route_macs(x_shape, w_shape) -> int:
    """swimbench::route: the router's logits, x (T, K) against its (E, K) weight."""
    return int(x_shape[0]) * int(x_shape[1]) * int(w_shape[0])


def conv_macs(x_shape, w_shape) -> int:
    """swimbench::causal_conv1d(_update): K taps per (token, channel); x (..., d), weight (d, [1,] K)."""
    return _tokens(x_shape, 1) * int(x_shape[-1]) * int(w_shape[-1])


def swimba_mix_macs(dt_shape, B_shape, pos_shape) -> int:
    """swimbench::swimba_mix: dt (M, d), B (M, n), pos (T, k)."""
    T, k = (int(s) for s in pos_shape)
    return mixing_macs(T, k, int(dt_shape[-1]), int(B_shape[-1]))


def _tokens(shape, trailing: int) -> int:
    t = 1
    for s in shape[: len(shape) - trailing]:
        t *= int(s)
    return t


def selective_scan_macs(u_shape, A_shape, has_D: bool, has_z: bool) -> int:
    """u (..., d), A (d, n): every leading dimension of u is a token."""
    d, n = int(A_shape[-2]), int(A_shape[-1])
    t = _tokens(u_shape, 1)
    return recurrence_macs(t, 1, d, n, has_D) + gate_macs(t, d, has_z)


def swimba_scan_macs(u_shape, A_shape, dt_shape, has_D: bool, has_z: bool) -> int:
    """u (..., d), A (d, n), dt (..., k, d)."""
    d, n, k = int(A_shape[-2]), int(A_shape[-1]), int(dt_shape[-2])
    t = _tokens(u_shape, 1)
    return mixing_macs(t, k, d, n) + recurrence_macs(t, 1, d, n, has_D) + gate_macs(t, d, has_z)


def separated_scan_macs(u_shape, A_shape, has_D: bool, has_z: bool) -> int:
    """u (..., d), A (E, d, n)."""
    E, d, n = (int(s) for s in A_shape[-3:])
    t = _tokens(u_shape, 1)
    return recurrence_macs(t, E, d, n, has_D) + combine_macs(t, E, d) + gate_macs(t, d, has_z)
