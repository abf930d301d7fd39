"""Gradients through every filter (issue #6, "Gradients").

Guards: fxcli.dsp.iir.autograd and fxcli.dsp.fir.autograd (SosfiltFunction,
FirfiltFunction), the dispatch in
fxcli.dsp.sosfilt / fxcli.dsp.firfilt (forward unchanged bit for bit when
gradients are recorded), fxcli.dsp.iir.timevarying (time-varying sections) and
fxcli.dsp.design_torch (differentiable designs equal to fxcli.dsp.design).

References: torch.autograd.gradcheck / gradgradcheck (finite differences),
autograd through a naive per-sample Python loop of SciPy's transposed direct
form II (an independent implementation of the same maths), SciPy designs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from fxcli.dsp import firfilt, sosfilt
from fxcli.dsp.design import iir_pass, rbj
from fxcli.dsp.design_torch import butterworth_torch, linkwitz_riley_torch, rbj_torch
from fxcli.dsp.iir import adjoint, tvsosfilt
from fxcli.dsp.iir import autograd as ag
from fxcli.dsp.native import core

F64 = torch.float64


def _sos(order: int, seed: int = 0) -> np.ndarray:
    """A stable random-ish design of ``order`` (ceil(order/2) sections, a0 = 1)."""
    rng = np.random.default_rng(seed)
    kind = ["lowpass", "highpass"][seed % 2]
    sos = signal.cheby1(order, 1.0, rng.uniform(0.1, 0.4), kind, output="sos")
    sos[:, :3] *= rng.uniform(0.5, 2.0, size=(sos.shape[0], 1))  # arbitrary zeros gains
    return sos


def _loop_tdf2(x, sos, zi):
    """Naive differentiable reference: x (R, n), sos (S, 6) (any a0), zi (S, R, 2)."""
    sos = sos / sos[:, 3:4]
    n_sec = sos.shape[0]
    p = [zi[s, :, 0] for s in range(n_sec)]
    q = [zi[s, :, 1] for s in range(n_sec)]
    out = []
    for t in range(x.shape[1]):
        w = x[:, t]
        for s in range(n_sec):
            b0, b1, b2, _, a1, a2 = sos[s]
            o = b0 * w + p[s]
            p[s], q[s] = b1 * w - a1 * o + q[s], b2 * w - a2 * o
            w = o
        out.append(w)
    zf = torch.stack([torch.stack((p[s], q[s]), dim=-1) for s in range(n_sec)])
    return torch.stack(out, dim=1), zf


def _loss_weights(y, zf, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(y.shape, generator=g, dtype=F64), torch.randn(
        zf.shape, generator=g, dtype=F64
    )


# ---------------------------------------------------------------------------
# sosfilt (constant coefficients)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_sosfilt_forward_unchanged_when_recording(dtype, backend):
    """Same y and zf, bit for bit, with and without gradients (x, sos and zi requiring grad)."""
    sos = torch.tensor(_sos(7, 3))
    x = torch.randn(3, 2, 777, dtype=F64).to(dtype)
    zi = torch.randn(4, 3, 2, 2, dtype=F64)
    y0, zf0 = sosfilt(x, sos, zi, backend=backend)
    y1, zf1 = sosfilt(
        x.clone().requires_grad_(),
        sos.clone().requires_grad_(),
        zi.clone().requires_grad_(),
        backend=backend,
    )
    assert y1.requires_grad and zf1.requires_grad
    assert y1.dtype == dtype and zf1.dtype == F64
    assert torch.equal(y1.detach(), y0) and torch.equal(zf1.detach(), zf0)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6, 7, 8])
def test_sosfilt_gradcheck_orders(order):
    """gradcheck and gradgradcheck for x, sos, zi through y and zf; orders 1-8."""
    sos = torch.tensor(_sos(order, order), requires_grad=True)
    batch = [(), (3,), (2, 2)][order % 3]
    x = torch.randn(*batch, 64, dtype=F64, requires_grad=True)
    zi = torch.randn(sos.shape[0], *batch, 2, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b, c: sosfilt(a, b, c), (x, sos, zi), fast_mode=True)
    torch.autograd.gradgradcheck(lambda a, b, c: sosfilt(a, b, c), (x, sos, zi), fast_mode=True)


def test_sosfilt_gradcheck_full_without_zi():
    """Full (slow-mode) Jacobian check, zi=None, float64, 2 sections; only y is used."""
    sos = torch.tensor(_sos(4, 2), requires_grad=True)
    x = torch.randn(2, 40, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b: sosfilt(a, b)[0], (x, sos))


def test_sosfilt_a0_normalization_gradient():
    """Rows with a0 != 1 (and a0's own gradient) are differentiated through the normalization."""
    sos = torch.tensor(_sos(4, 5))
    sos = (sos * torch.tensor([[2.0], [0.5]], dtype=F64)).requires_grad_(True)
    x = torch.randn(2, 50, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b: sosfilt(a, b), (x, sos), fast_mode=True)


@pytest.mark.parametrize("n_sec", [1, 4, 6])
def test_sosfilt_gradients_match_naive_loop(n_sec):
    """Gradients (x, sos, zi, from y and zf) equal autograd through a per-sample Python loop;
    6 sections exercise the kernel's section groups (4 + 2 -> 3 + 3)."""
    sos0 = np.concatenate([_sos(2, s) for s in range(n_sec)])
    x = torch.randn(3, 90, dtype=F64, requires_grad=True)
    sos = torch.tensor(sos0, requires_grad=True)
    zi = torch.randn(n_sec, 3, 2, dtype=F64, requires_grad=True)
    y, zf = sosfilt(x, sos, zi)
    wy, wz = _loss_weights(y, zf)
    got = torch.autograd.grad((y * wy).sum() + (zf * wz).sum(), (x, sos, zi))
    yr, zr = _loop_tdf2(x, sos, zi)
    assert torch.allclose(y, yr, rtol=0, atol=1e-12) and torch.allclose(zf, zr, rtol=0, atol=1e-12)
    ref = torch.autograd.grad((yr * wy).sum() + (zr * wz).sum(), (x, sos, zi))
    for a, b in zip(got, ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10), (a - b).abs().max()


@pytest.mark.parametrize("n_sec", [3, 9])
def test_sosfilt_cpu_backward_equals_composed(n_sec):
    """The fused CPU backward (chunked recompute, n > its chunk) equals the
    differentiable composed backward used for CUDA and double backward."""
    sos = torch.tensor(np.concatenate([_sos(2, s + 7) for s in range(n_sec)]))
    x = torch.randn(5, 5000, dtype=F64)
    zi = torch.randn(n_sec, 5, 2, dtype=F64)
    gy = torch.randn(5, 5000, dtype=F64)
    gzf = torch.randn(n_sec, 5, 2, dtype=F64)
    a = adjoint.sos_backward_cpu(x, sos, zi, gy, gzf)
    b = ag._sos_backward_composed(x, sos, zi, gy, gzf, "auto")
    for u, v in zip(a, b, strict=True):
        scale = max(1.0, float(v.abs().max()))
        assert float((u - v).abs().max()) <= 1e-10 * scale


def test_sosfilt_float32_gradients():
    """float32 audio: gradient w.r.t. x is float32 and equals the float64 gradient (rounded)."""
    sos = torch.tensor(_sos(4, 1), requires_grad=True)
    x64 = torch.randn(2, 500, dtype=F64)
    x32 = x64.float().requires_grad_(True)
    x64 = x32.detach().double().requires_grad_(True)
    w = torch.randn(2, 500, dtype=F64)
    (sosfilt(x32, sos)[0].double() * w).sum().backward()
    g_sos32 = sos.grad.clone()
    sos.grad = None
    (sosfilt(x64, sos)[0] * w).sum().backward()
    assert x32.grad.dtype == torch.float32
    # the incoming gradient of a float32 output is float32 (w rounded): ~1e-7 relative
    assert torch.allclose(x32.grad.double(), x64.grad, rtol=1e-6, atol=1e-6)
    assert torch.allclose(g_sos32, sos.grad, rtol=1e-6, atol=1e-6 * float(sos.grad.abs().max()))


def test_sosfilt_gradients_flow_through_chunk_states():
    """The engine's chunking: a loss on the last chunk backpropagates through zf -> zi into
    the first chunk and the coefficients; gradients equal those of one whole call."""
    sos = torch.tensor(_sos(6, 4), requires_grad=True)
    x = torch.randn(2, 300, dtype=F64, requires_grad=True)
    w = torch.randn(2, 300, dtype=F64)
    (sosfilt(x, sos)[0] * w).sum().backward()
    gx_whole, gs_whole = x.grad.clone(), sos.grad.clone()
    x.grad = None
    sos.grad = None
    state = None
    outs = []
    for a, b in [(0, 7), (7, 100), (100, 299), (299, 300)]:
        y, state = sosfilt(x[:, a:b], sos, state)
        outs.append(y)
    (torch.cat(outs, dim=1) * w).sum().backward()
    assert torch.allclose(x.grad, gx_whole, rtol=1e-11, atol=1e-12)
    assert torch.allclose(sos.grad, gs_whole, rtol=1e-11, atol=1e-11)
    # a loss only on the last chunk still reaches the first samples (through the states)
    x.grad = None
    y1, z1 = sosfilt(x[:, :150], sos)
    y2, _ = sosfilt(x[:, 150:], sos, z1)
    (y2**2).sum().backward()
    assert float(x.grad[:, :150].abs().max()) > 0.0


def test_sosfilt_empty_and_requires_grad_only_on_sos():
    """Edge cases: time == 0 (zf = zi, gradient passes straight through), and only sos
    requiring grad (x a plain tensor)."""
    sos = torch.tensor(_sos(2, 0), requires_grad=True)
    zi = torch.randn(1, 3, 2, dtype=F64, requires_grad=True)
    y, zf = sosfilt(torch.zeros(3, 0, dtype=F64), sos, zi)
    zf.sum().backward()
    assert y.shape == (3, 0) and torch.equal(zi.grad, torch.ones_like(zi))
    x = torch.randn(3, 30, dtype=F64)
    torch.autograd.gradcheck(lambda b: sosfilt(x, b)[0], (sos,))


# ---------------------------------------------------------------------------
# firfilt
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "method"), [(1, "auto"), (7, "direct"), (7, "fft"), (90, "auto")])
def test_firfilt_gradcheck(k, method):
    """gradcheck/gradgradcheck for x, taps, zi (input history) through y and zf."""
    x = torch.randn(2, 3, 60, dtype=F64, requires_grad=True)
    h = torch.randn(k, dtype=F64, requires_grad=True)
    zi = torch.randn(2, 3, k - 1, dtype=F64, requires_grad=True)

    def f(a, b, c):
        return firfilt(a, b, c, method=method)

    torch.autograd.gradcheck(f, (x, h, zi), fast_mode=True)
    torch.autograd.gradgradcheck(f, (x, h, zi), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_firfilt_forward_unchanged_and_gradient_vs_conv(dtype):
    """Forward bit for bit as without gradients; gradients equal autograd through conv1d."""
    x = torch.randn(2, 1000, dtype=F64).to(dtype)
    h = torch.randn(100, dtype=F64)
    y0, zf0 = firfilt(x, h)
    xg, hg = x.clone().requires_grad_(), h.clone().requires_grad_()
    y1, zf1 = firfilt(xg, hg)
    assert torch.equal(y1.detach(), y0) and torch.equal(zf1.detach(), zf0)
    w = torch.randn(2, 1000, dtype=F64)
    (y1.double() * w).sum().backward()
    xr, hr = x.double().requires_grad_(), h.clone().requires_grad_()
    ref = torch.nn.functional.conv1d(
        torch.nn.functional.pad(xr[:, None], (99, 0)), hr.flip(0)[None, None]
    )[:, 0]
    (ref * w).sum().backward()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert xg.grad.dtype == dtype
    assert torch.allclose(xg.grad.double(), xr.grad, rtol=tol, atol=tol)
    assert torch.allclose(hg.grad, hr.grad, rtol=tol, atol=tol * float(hr.grad.abs().max()))


# ---------------------------------------------------------------------------
# time-varying sections
# ---------------------------------------------------------------------------


def _tv_sos(*shape, n_sec=2, seed=0):
    """Random stable per-sample sections: shape (*shape, n_sec, 6), poles radius 0.5-0.9."""
    g = torch.Generator().manual_seed(seed)
    r = 0.5 + 0.4 * torch.rand(*shape, n_sec, generator=g, dtype=F64)
    th = 3.0 * torch.rand(*shape, n_sec, generator=g, dtype=F64)
    b = torch.randn(*shape, n_sec, 3, generator=g, dtype=F64)
    a = torch.stack((torch.ones_like(r), -2 * r * torch.cos(th), r * r), dim=-1)
    return torch.cat((b, a), dim=-1)


def _tv_loop(x, sos, zi):
    """Naive per-sample loop: x (R, n), sos (R, n, S, 6), zi (S, R, 2)."""
    sos = sos / sos[..., 3:4]
    n_sec = sos.shape[2]
    p = zi[:, :, 0].clone()
    q = zi[:, :, 1].clone()
    y = torch.empty_like(x)
    for t in range(x.shape[1]):
        w = x[:, t].clone()
        for s in range(n_sec):
            b0, b1, b2, _, a1, a2 = sos[:, t, s].unbind(-1)
            o = b0 * w + p[s]
            p[s], q[s] = b1 * w - a1 * o + q[s], b2 * w - a2 * o
            w = o
        y[:, t] = w
    return y, torch.stack((p, q), dim=-1)


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_tvsosfilt_matches_loop_and_constant_sosfilt(backend):
    """Per-sample sections equal a naive loop; constant ones equal sosfilt bit for bit
    (cpu) and carrying zf over chunks equals one call."""
    x = torch.randn(3, 120, dtype=F64)
    sos = _tv_sos(3, 120, n_sec=3)
    zi = torch.randn(3, 3, 2, dtype=F64)
    y, zf = tvsosfilt(x, sos, zi, backend=backend)
    yr, zr = _tv_loop(x, sos, zi)
    assert torch.allclose(y, yr, rtol=0, atol=1e-12) and torch.allclose(zf, zr, rtol=0, atol=1e-12)
    y1, z1 = tvsosfilt(x[:, :50], sos[:, :50], zi, backend=backend)
    y2, z2 = tvsosfilt(x[:, 50:], sos[:, 50:], z1, backend=backend)
    assert torch.equal(torch.cat((y1, y2), dim=1), y) and torch.equal(z2, zf)
    const = torch.tensor(_sos(6, 2))
    xc = torch.randn(2, 3000, dtype=torch.float32)
    yc, zc = sosfilt(xc, const.expand(3000, 3, 6), backend=backend)  # dispatch by ndim
    y0, z0 = sosfilt(xc, const, backend=backend)
    if backend == "cpu":
        assert torch.equal(yc, y0) and torch.equal(zc, z0)
    else:
        assert torch.allclose(yc, y0, atol=1e-6) and torch.allclose(zc, z0, atol=1e-9)


def test_tvsosfilt_broadcast_and_errors():
    """Coefficient batch dims broadcast against x's; bad shapes raise ValueError."""
    x = torch.randn(2, 3, 40, dtype=F64)
    sos = _tv_sos(3, 40)  # (3, 40, 2, 6): one sequence per x row of the last batch dim
    y, zf = tvsosfilt(x, sos)
    assert y.shape == (2, 3, 40) and zf.shape == (2, 2, 3, 2)
    y_ref, _ = _tv_loop(
        x.reshape(6, 40),
        sos.expand(2, 3, 40, 2, 6).reshape(6, 40, 2, 6),
        torch.zeros(2, 6, 2, dtype=F64),
    )
    assert torch.allclose(y, y_ref.reshape(2, 3, 40), atol=1e-12)
    with pytest.raises(ValueError, match="time steps"):
        tvsosfilt(x, _tv_sos(3, 39))
    with pytest.raises(ValueError, match="broadcast"):
        tvsosfilt(x, _tv_sos(4, 40))


def test_tvsosfilt_gradcheck():
    """gradcheck (full Jacobian) and gradgradcheck for per-sample sos, x and zi, through y
    and zf: proves the adjoint's index shifts; plus a0 != 1 normalization."""
    x = torch.randn(2, 30, dtype=F64, requires_grad=True)
    sos = _tv_sos(2, 30, n_sec=2, seed=3)
    sos[..., :, 3] = 1.5
    sos = sos.requires_grad_(True)
    zi = torch.randn(2, 2, 2, dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda a, b, c: tvsosfilt(a, b, c), (x, sos, zi))
    torch.autograd.gradgradcheck(lambda a, b, c: tvsosfilt(a, b, c), (x, sos, zi), fast_mode=True)


def test_tvsosfilt_gradients_match_loop():
    """Gradients equal autograd through the naive loop (broadcast coefficients: their
    gradient is summed over the broadcast rows)."""
    x = torch.randn(3, 70, dtype=F64, requires_grad=True)
    sos = _tv_sos(70, n_sec=3, seed=5).requires_grad_(True)
    zi = torch.randn(3, 3, 2, dtype=F64, requires_grad=True)
    y, zf = tvsosfilt(x, sos, zi)
    wy, wz = _loss_weights(y, zf)
    got = torch.autograd.grad((y * wy).sum() + (zf * wz).sum(), (x, sos, zi))
    yr, zr = _tv_loop(x, sos.expand(3, 70, 3, 6), zi)
    ref = torch.autograd.grad((yr * wy).sum() + (zr * wz).sum(), (x, sos, zi))
    for a, b in zip(got, ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------
# differentiable designs
# ---------------------------------------------------------------------------


def test_design_torch_equals_numpy_designs():
    """RBJ biquads equal design.rbj and Butterworth / Linkwitz-Riley equal iir_pass
    (SciPy butter, same section order and gain placement) within 1e-12."""
    for kind in ("peaking", "lowshelf", "highshelf", "notch", "allpass"):
        for f, q, g in [(30.0, 0.3, -12.0), (1000.0, 0.7071, 3.0), (15000.0, 4.0, 9.0)]:
            ref = rbj(kind, f, 48000.0, q=q, gain_db=g)
            got = rbj_torch(
                kind, torch.tensor(f, dtype=F64), 48000.0, q=torch.tensor(q, dtype=F64), gain_db=g
            )
            assert np.abs(got.numpy() - ref).max() < 1e-12, (kind, f, q, g)
    for kind in ("lowshelf", "highshelf"):
        for slope in (0.5, 1.0):
            ref = rbj(kind, 800.0, 44100.0, gain_db=-6.0, slope=slope)
            got = rbj_torch(kind, 800.0, 44100.0, gain_db=-6.0, slope=slope)
            assert np.abs(got.numpy() - ref).max() < 1e-12
    for bt in ("lowpass", "highpass"):
        ref = iir_pass(bt, 2000.0, 48000.0, order=2)
        assert np.abs(rbj_torch(bt, 2000.0, 48000.0, q=2**-0.5).numpy() - ref).max() < 1e-12
        # RBJ q != 1/sqrt(2): the bilinear transform of 1/(s^2 + s/Q + 1), prewarped
        q, f0, fs = 3.0, 500.0, 44100.0
        wa = 2 * fs * np.tan(np.pi * f0 / fs)
        num = [0, 0, wa**2] if bt == "lowpass" else [1, 0, 0]
        b, a = signal.bilinear(num, [1, wa / q, wa**2], fs)
        ref = np.concatenate([b, a])[None] / a[0]
        assert np.abs(rbj_torch(bt, f0, fs, q=q).numpy() - ref).max() < 1e-12
        for fs in (44100.0, 96000.0):
            for f in (20.0, 1000.0, 15000.0):
                for order in range(1, 9):
                    ref = iir_pass(bt, f, fs, order=order)
                    got = butterworth_torch(bt, torch.tensor(f, dtype=F64), fs, order).numpy()
                    assert np.abs(got - ref).max() < 1e-12, (bt, fs, f, order)
        ref = iir_pass(bt, 700.0, 48000.0, order=4, design="linkwitz_riley")
        assert np.abs(linkwitz_riley_torch(bt, 700.0, 48000.0, 4).numpy() - ref).max() < 1e-12


@pytest.mark.parametrize(
    "kind", ["peaking", "lowshelf", "highshelf", "notch", "allpass", "lowpass", "highpass"]
)
def test_design_torch_gradcheck_through_sosfilt(kind):
    """freq_hz, gain_db, q -> sos -> sosfilt output: gradcheck and gradgradcheck."""
    fs = 8000.0
    x = torch.randn(2, 64, dtype=F64)
    f = torch.tensor(900.0, dtype=F64, requires_grad=True)
    g = torch.tensor(4.0, dtype=F64, requires_grad=True)
    q = torch.tensor(1.3, dtype=F64, requires_grad=True)

    def run(f, g, q):
        return sosfilt(x, rbj_torch(kind, f, fs, q=q, gain_db=g))[0]

    torch.autograd.gradcheck(run, (f, g, q), fast_mode=True)
    torch.autograd.gradgradcheck(run, (f, g, q), fast_mode=True)


def test_butterworth_torch_gradcheck_through_sosfilt():
    """cutoff_hz -> Butterworth sos (orders 3 and 4) -> sosfilt output."""
    x = torch.randn(2, 64, dtype=F64)
    for order in (3, 4):
        for bt in ("lowpass", "highpass"):
            f = torch.tensor(700.0, dtype=F64, requires_grad=True)
            torch.autograd.gradcheck(
                lambda c, bt=bt, order=order: sosfilt(x, butterworth_torch(bt, c, 8000.0, order))[
                    0
                ],
                (f,),
            )


# ---------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gradients_on_cuda_equal_cpu():
    """sosfilt / firfilt / tvsosfilt gradients on CUDA tensors equal the CPU ones."""
    sos = torch.tensor(_sos(6, 1))
    x = torch.randn(2, 500, dtype=F64)
    zi = torch.randn(3, 2, 2, dtype=F64)
    h = torch.randn(33, dtype=F64)
    tv = _tv_sos(40, n_sec=2)
    res = {}
    for dev in ("cpu", "cuda"):
        # detach() first: x.to("cpu") is x itself, so without it the CPU pass made x
        # require grad and x.to("cuda") became a non-leaf with no .grad (the first
        # H200 run, 2026-12-04: AttributeError 'NoneType' object has no attribute 'cpu')
        xs, ss, zs, hs, ts = (t.detach().to(dev).requires_grad_() for t in (x, sos, zi, h, tv))
        y, zf = sosfilt(xs, ss, zs)
        u, _ = firfilt(xs, hs)
        v, _ = tvsosfilt(xs[:, :40], ts)
        ((y**2).sum() + zf.sum() + (u**2).sum() + (v**2).sum()).backward()
        res[dev] = [t.grad.cpu() for t in (xs, ss, zs, hs, ts)]
    for a, b in zip(res["cpu"], res["cuda"], strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-8)


def test_sosfilt_backward_tiles_equal_rows():
    """The 4-row SIMD backward kernel and the scalar row kernel give identical gradients
    (same fused multiply-adds in the same order), so results do not depend on how rows
    are split over threads; checkpoints equal sosfilt's chunked states."""
    sos = np.concatenate([_sos(2, s) for s in range(5)])
    x = torch.randn(4, 4500, dtype=torch.float32)
    y, zf, ck = adjoint.sosfilt_ckpt(x, torch.tensor(sos), None)
    y_ref, zf_ref = sosfilt(x, torch.tensor(sos))
    assert torch.equal(y, y_ref) and torch.equal(zf, zf_ref)
    _, z_half = sosfilt(x[:, :2048], torch.tensor(sos))
    assert np.array_equal(ck[:, 1], z_half.numpy().transpose(1, 0, 2))
    gy = np.random.default_rng(0).standard_normal((4, 4500)).astype(np.float32)
    out = []
    for tiles in (True, False):
        gx = np.empty_like(gy)
        lam = np.random.default_rng(1).standard_normal((4, 5, 2))
        acc = np.zeros((4, 5, 5))
        core.sos_backward(x.numpy(), gy, gx, sos, ck, lam, acc, threads=1, tiles=tiles)
        out.append((gx, lam, acc))
    for a, b in zip(*out, strict=True):
        assert np.array_equal(a, b)


def test_cpu_cascade_kernels_do_not_depend_on_threads():
    """The compiled kernels spread rows over threads and 4-row SIMD tiles: the
    checkpointed forward (equal to core.sosfilt), the backward and the time-varying
    forward give the same bits on 1, 2 and 3 threads, with and without tiles (9 rows x
    5000 samples: above the size where threads start, 2 tiles + 1 row, 3 blocks); the
    time-varying kernel also equals the naive per-sample loop."""
    rng = np.random.default_rng(7)
    sos = np.concatenate([_sos(2, s) for s in range(6)])
    n_sec, rows, n_t = sos.shape[0], 9, 5000
    x = rng.standard_normal((rows, n_t)).astype(np.float32)
    gy = rng.standard_normal((rows, n_t)).astype(np.float32)
    zi = rng.standard_normal((n_sec, rows, 2))
    lam0 = rng.standard_normal((rows, n_sec, 2))
    jitter = 1 + 1e-3 * rng.standard_normal((rows, n_t, n_sec, 6))
    tv = np.ascontiguousarray(np.broadcast_to(sos, (rows, n_t, n_sec, 6)) * jitter)
    tv[..., 3] = 1.0
    results = []
    for threads in (1, 2, 3):
        for tiles in (True, False):
            y, z, ck = np.empty_like(x), zi.copy(), np.empty((rows, 3, n_sec, 2))
            core.sosfilt_ckpt(x, y, sos, z, ck, threads=threads, tiles=tiles)
            y_ref, z_ref = np.empty_like(x), zi.copy()
            core.sosfilt(x, y_ref, sos, z_ref, threads=threads, tiles=tiles)
            assert np.array_equal(y, y_ref) and np.array_equal(z, z_ref)
            gx, lam, acc = np.empty_like(x), lam0.copy(), np.zeros((rows, n_sec, 5))
            core.sos_backward(x, gy, gx, sos, ck, lam, acc, threads=threads, tiles=tiles)
            ytv, ztv = np.empty_like(x), zi.copy()
            core.tvsosfilt(x, tv, ztv, ytv, threads=threads)
            results.append((y, z, ck, gx, lam, acc, ytv, ztv))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)
    x64 = x[:, :200].astype(np.float64)
    y64, z64 = np.empty_like(x64), zi.copy()
    core.tvsosfilt(x64, np.ascontiguousarray(tv[:, :200]), z64, y64, threads=1)
    yr, zr = _tv_loop(torch.from_numpy(x64), torch.from_numpy(tv[:, :200]), torch.from_numpy(zi))
    assert np.allclose(y64, yr.numpy(), rtol=0, atol=1e-12)
    assert np.allclose(z64, zr.numpy(), rtol=0, atol=1e-12)
