"""Every op's Triton kernel on the GPU, bf16, at sizes that are not powers of two (the layers' FLOP-matched
widths 4088 and 3920, odd lengths and batches), against its pure-PyTorch reference and, where mamba-ssm's
kernels compute the same thing, against those (was scripts/gpu_kernels.py's and scripts/gpu_prefill.py's
checks). Output buffers the kernels allocate are poisoned first. gather_mm and route are checked at the
layers' shapes in test_decode.py.

Bounds: tests/helpers.REL_TOL (bf16 1e-2, as the scripts' bound). What remains against the references is
the rounding of bf16 outputs (about 2e-5 where the output is the scan's; 1.7e-3 where mixed inputs are
rounded once to bf16, which is also mamba-ssm's own distance from the same references)."""
import pytest
import torch
import torch.nn.functional as F

from ..helpers import REL_TOL, rel_err
from .helpers import poison_, poisoned

DEV, DT = "cuda", torch.bfloat16
TOL = REL_TOL[DT]

# (kernel, batch, length, d_inner, experts, top_k), kernel one of swimbench.measure.kernel_bench.KERNELS
CASES = [("dense", 1, 4099, 4088, 1, 1), ("dense", 3, 1037, 1000, 1, 1),
         ("swimba", 1, 4099, 3920, 8, 2), ("swimba", 2, 1037, 1000, 5, 3),
         ("separated", 1, 2053, 1000, 3, 2), ("separated", 2, 1037, 4088, 8, 2),
         ("dense-step", 129, 1, 4088, 1, 1), ("dense-step", 1, 1, 1000, 1, 1),
         ("swimba-step", 129, 1, 3920, 8, 2), ("swimba-step", 3, 1, 1000, 5, 3),
         ("separated-step", 129, 1, 1000, 8, 2), ("separated-step", 1, 1, 4088, 3, 1)]


def case_id(kernel, b, l, d, E, k):
    moe = "" if kernel.startswith("dense") else f"-E{E}-k{k}"
    return f"{kernel}{moe}-b{b}" + ("" if kernel.endswith("-step") else f"-l{l}") + f"-d{d}"


def make(kernel, b, l, d, E, k):
    from swimbench.measure import kernel_bench as kb
    case = kb.Case(kernel, b, l, d_inner=d, experts=E, top_k=k)
    return kb, case, kb.make_inputs(case, DEV, seed=int(torch.randint(0, 2**62, ())))


def ours(kb, case, x):
    """Our op through torch.ops.swimbench (the dispatch included), its outputs poisoned: (y, state)."""
    with poisoned():
        if case.step:
            state = x["state"].clone()
            return kb.ours(case, x, state=state), state
        return kb.ours(case, x, last=True)


@pytest.mark.parametrize("kernel, b, l, d, E, k", CASES, ids=[case_id(*c) for c in CASES])
@torch.no_grad()
def test_op_matches_its_reference(kernel, b, l, d, E, k):
    kb, case, x = make(kernel, b, l, d, E, k)
    y, state = ours(kb, case, x)
    if case.step:
        want_state = x["state"].clone()
        want = kb.naive(case, x, state=want_state)
    else:
        want, want_state = kb.naive(case, x)
    assert rel_err(y, want) < TOL
    assert rel_err(state, want_state) < TOL


@pytest.mark.parametrize("kernel, b, l, d, E, k", CASES, ids=[case_id(*c) for c in CASES])
@torch.no_grad()
def test_op_matches_mamba_ssm(mamba_cuda, kernel, b, l, d, E, k):
    """Dense: mamba-ssm's CUDA selective_scan_fn and Triton selective_state_update on the same inputs;
    Swimba and separated: the same kernels on the streams mixed in fp32 (Swimba) or one expert at a time
    (separated). mamba-ssm's own distance from the reference is bounded too: it is what ours is held to."""
    kb, case, x = make(kernel, b, l, d, E, k)
    y, _ = ours(kb, case, x)
    theirs = kb.mamba_reference(case, x)
    want = kb.naive(case, x, state=x["state"].clone()) if case.step else kb.naive(case, x)[0]
    assert rel_err(y, theirs) < TOL
    assert rel_err(theirs, want) < TOL


@pytest.mark.parametrize("chunks", [1, 7, 64])
@torch.no_grad()
def test_the_chunked_scan_is_the_single_pass_one(chunks):
    """The chunk count pinned: one pass, a count that leaves the last chunk short, many short chunks."""
    from swimbench.kernels import _ssm
    kb, case, x = make("dense", 1, 4099, 4088, 1, 1)
    with _ssm.tuned(chunks=chunks):
        y, h = ours(kb, case, x)
    want, want_h = kb.naive(case, x)
    assert rel_err(y, want) < TOL and rel_err(h, want_h) < TOL


@pytest.mark.parametrize("mode", ["mix-then-scan", "in-register"])
@torch.no_grad()
def test_both_swimba_scans_match_the_reference(mode):
    """The op runs mix-then-scan; the in-register scan stays for the kernel benchmark's comparison."""
    from swimbench.kernels.swimba_scan.fused import swimba_scan_fused
    kb, case, x = make("swimba", 2, 1037, 3920, 8, 2)
    with poisoned():
        y, h = swimba_scan_fused(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"], x["D"], x["z"],
                                 x["bias"], True, True, mode=mode)
    want, want_h = kb.naive(case, x)
    assert rel_err(y, want) < TOL and rel_err(h, want_h) < TOL


def torch_conv(x, w, bias):
    """The conv as the layer ran it before, and as mamba-ssm's Mamba runs it without causal-conv1d."""
    K = w.shape[-1]
    return F.silu(F.conv1d(F.pad(x.transpose(1, 2), (K - 1, 0)), w.unsqueeze(1), bias,
                           groups=w.shape[0])).transpose(1, 2)


CONV = [(1, 4099, 4088), (3, 2047, 4093)]


@pytest.mark.parametrize("b, l, d", CONV, ids=[f"b{b}-l{l}-d{d}" for b, l, d in CONV])
@torch.no_grad()
def test_conv_on_in_projs_view_matches_the_reference_and_the_torch_path(b, l, d):
    """On the first half of in_proj's output, as the layer passes it; the F.conv1d path rounds its conv
    output to bf16 before SiLU (3e-3 from the reference)."""
    from swimbench.kernels.causal_conv1d.fused import causal_conv1d_fused
    from swimbench.kernels.causal_conv1d.naive import causal_conv1d_naive
    x = torch.randn(b, l, 2 * d, device=DEV).to(DT)[..., :d]
    w, bias = (torch.randn(d, 4, device=DEV) * 0.5).to(DT), torch.randn(d, device=DEV).to(DT)
    with poisoned():
        y = causal_conv1d_fused(x, w, bias, True)
    assert rel_err(y, causal_conv1d_naive(x, w, bias, True)) < TOL
    assert rel_err(y, torch_conv(x, w, bias)) < TOL


@pytest.mark.parametrize("b, d", [(1, 4088), (3, 4093), (129, 1000)])
@torch.no_grad()
def test_conv_step_matches_the_reference_and_shifts_the_state_alike(b, d):
    from swimbench.kernels.causal_conv1d.fused import causal_conv1d_update_fused
    from swimbench.kernels.causal_conv1d.naive import causal_conv1d_update_naive
    x = torch.randn(b, 2 * d, device=DEV).to(DT)[:, :d]
    w, bias = (torch.randn(d, 4, device=DEV) * 0.5).to(DT), torch.randn(d, device=DEV).to(DT)
    state = torch.randn(b, d, 4, device=DEV).to(DT)
    want_state = state.clone()
    with poisoned():
        y = causal_conv1d_update_fused(x, state, w, bias, True)
    assert rel_err(y, causal_conv1d_update_naive(x, want_state, w, bias, True)) < TOL
    assert torch.equal(state, want_state)


VIEWS = [(1, 4099, 4088), (2, 2047, 4093)]


@pytest.mark.parametrize("b, l, d", VIEWS, ids=[f"b{b}-l{l}-d{d}" for b, l, d in VIEWS])
@torch.no_grad()
def test_dense_scan_on_the_layers_views(mamba_cuda, b, l, d):
    """z a view of in_proj's output, B and C views of x_proj's (after the dt_rank columns), as the dense
    layer passes them: against the reference, and against mamba-ssm's CUDA scan on the same values."""
    from swimbench.kernels.selective_scan.fused import selective_scan_fused
    kb, case, x = make("dense", b, l, d, 1, 1)
    n, R = case.d_state, 128
    xz = torch.randn(b, l, 2 * d, device=DEV).to(DT)
    dbl = torch.randn(b, l, R + 2 * n, device=DEV).to(DT)
    x.update(z=xz[..., d:], B=dbl[..., R:R + n], C=dbl[..., R + n:])
    with poisoned():
        y, h = selective_scan_fused(x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"], x["bias"], True, True)
    want, want_h = kb.naive(case, x)
    assert rel_err(y, want) < TOL and rel_err(h, want_h) < TOL
    assert rel_err(y, kb.mamba_reference(case, x)) < TOL


MIXES = [(8, 2, 1, 4099, 3920), (64, 4, 2, 2047, 1000), (8, 1, 1, 3001, 4088)]


@pytest.mark.parametrize("E, k, b, l, d", MIXES, ids=[f"E{E}-k{k}-b{b}-l{l}-d{d}" for E, k, b, l, d in MIXES])
@torch.no_grad()
def test_swimba_mix_reads_rows_where_the_grouped_gemms_left_them(E, k, b, l, d):
    """Each token's k expert rows in a permuted order (as after the dispatch's sort): the mixed delta, B
    and C against the fp32 hand-mixed streams."""
    from swimbench.kernels.swimba_mix.fused import swimba_mix_fused
    from swimbench.kernels.swimba_scan.naive import mix_streams
    _, case, x = make("swimba", b, l, d, E, k)
    T, n = b * l, case.d_state
    perm = torch.randperm(T * k, device=DEV)              # slot i sits in row perm[i]
    rows = {name: torch.empty(T * k, x[name].shape[-1], device=DEV, dtype=DT).index_copy_(
        0, perm, x[name].reshape(T * k, -1)) for name in ("dt", "B", "C")}
    with poisoned():
        delta, bc = swimba_mix_fused(rows["dt"], rows["B"], rows["C"], perm.view(T, k), x["gates"].reshape(T, k),
                                     x["idx"].reshape(T, k), x["bias"], True)
    d_ref, B_ref, C_ref = mix_streams(x["dt"], x["B"], x["C"], x["gates"], x["idx"], x["bias"], True)
    assert rel_err(delta, d_ref.reshape(T, d)) < TOL
    assert rel_err(bc[:, 0], B_ref.reshape(T, n)) < TOL and rel_err(bc[:, 1], C_ref.reshape(T, n)) < TOL


COMBINES = [(4099, 2, 2047), (1, 1, 4088), (129, 3, 1000)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("T, k, N", COMBINES, ids=[f"T{T}-k{k}-N{N}" for T, k, N in COMBINES])
@torch.no_grad()
def test_combine_matches_its_reference(T, k, N, dtype):
    """Into a poisoned output buffer, and into the one it allocates; values a strided view."""
    from swimbench.kernels.combine.fused import combine_fused
    from swimbench.kernels.combine.naive import combine_naive
    gates = torch.softmax(torch.randn(T, k, device=DEV), -1)
    values = torch.randn(T, k, N + 5, device=DEV).to(dtype)[..., :N]
    out = poison_(torch.empty(T, N, device=DEV, dtype=dtype))
    want = combine_naive(gates, values)
    assert rel_err(combine_fused(gates, values, out), want) < REL_TOL[dtype]
    assert rel_err(out, want) < REL_TOL[dtype]
    assert rel_err(combine_fused(gates, values), want) < REL_TOL[dtype]
