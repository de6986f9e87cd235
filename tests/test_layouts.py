"""The kernels' blocked forms against a NumPy reference and, bit for bit, against the
loops they replace: the register layout's plain-Numba lane blocks
(:mod:`fastgd.linear.kernels_plain`), the streaming layout's vector blocks and final check
(:mod:`fastgd.kernels.simd_stream`), and the gradients of four rows at a time
(:func:`fastgd.linear.kernels_lanes.rows_grad`: minibatch SGD, the adaptive kernels)."""

import os

import numpy as np
import pytest

import fastgd as fg

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"
pytestmark = pytest.mark.skipif(JITLESS, reason="stack arrays need compiled code")


def _numpy_epoch(w, lre, X, y, perm):
    """Per-sample SGD on the samples perm of (X, y), every lane (column of w) at its
    rate: r = lr (w.x - y), w <- w - r x."""
    w = w.copy()
    for p in perm:
        r = lre * (X[p] @ w - y[p])
        w -= np.outer(X[p], r)
    return w


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8])
def test_register_block_equals_numpy(d):
    """One block of lanes at an offset: the NumPy per-sample steps to 1e-12 relative;
    the lanes outside the block untouched (same bits)."""
    from fastgd.linear.kernels_plain import register_block, register_lanes

    rng = np.random.default_rng(d)
    P, L, b = 23, register_lanes(d), 3
    X = rng.normal(size=(2, P, d)) * np.geomspace(1, 3, d)
    y = rng.normal(size=(2, P))
    nl = b + L + 5
    lre = np.geomspace(1e-3, 0.2, nl) / d
    w = rng.normal(size=(d, nl))
    perm = rng.permutation(P).astype(np.int64)
    out = w.copy()
    register_block(out, lre, X, y, perm, 1, b, P, 0.0, d, L, d * L)
    ref = _numpy_epoch(w, lre, X[1], y[1], perm)
    blk = slice(b, b + L)
    np.testing.assert_allclose(out[:, blk], ref[:, blk], rtol=1e-12, atol=1e-14)
    assert np.array_equal(out[:, :b], w[:, :b]) and np.array_equal(out[:, b + L:], w[:, b + L:])


@pytest.mark.parametrize("d", [2, 7])
def test_register_blocks_equal_the_loops(d):
    """A sweep whose chunks fill several register blocks (and leave lanes over) equals
    one whose chunks are narrower than a block (loops only) bit for bit, with curves and
    weights, float64 and float32, lanes converging, bounded and diverging."""
    from fastgd.linear.kernels_plain import register_lanes

    rng = np.random.default_rng(40 + d)
    X = rng.normal(size=(29, d)) * np.geomspace(1, 5, d)
    data = [(X, X @ rng.normal(size=d) + 0.05 * rng.normal(size=29)),
            (X[:17], X[:17] @ rng.normal(size=d))]
    lam = np.linalg.eigvalsh(X.T @ X / 29)[-1]
    n = 2 * register_lanes(d) + 7
    lrs = np.geomspace(1e-3, 40.0, n) / (d * lam)
    for dtype in ("float64", "float32"):
        kw = dict(lr=lrs, data=data, epochs=15, order="shuffle", seeds=[2], tol=1e-5,
                  dtype=dtype, curve_points=16, weights=True, progress=False)
        a = fg.sweep("sgd", lanes=n, **kw)
        assert a.equals(fg.sweep("sgd", lanes=3, **kw)), dtype
        assert len(np.unique(a.status)) == 3, dtype


def test_stack_empty_needs_a_literal_size():
    """``stack_empty`` types only with a compile-time size."""
    import numba
    from numba.core.errors import TypingError

    from fastgd.linear.kernels_plain import stack_empty

    @numba.njit
    def f(n):
        return numba.carray(stack_empty(n, np.float64), (1,))[0]

    with pytest.raises(TypingError):
        f(3)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stream_block_equals_numpy(dtype):
    """The streaming layout's vector blocks (:func:`fastgd.kernels.simd_stream.stream4_lanes`
    through ``kernels_stream._stream_blocks``): a whole block of lanes at an offset and
    a partial one (5 lanes), one epoch of four-sample blocks, against the NumPy
    per-sample steps (float64 to 1e-12 relative, float32 to 1e-4: only the dot products
    round differently); the lanes outside [lo, hi) untouched (same bits), hi returned."""
    from fastgd.kernels.simd_stream import STREAM_VECTORS, VECTOR_BYTES
    from fastgd.linear.kernels_stream import _stream_blocks

    def epoch(w, lre, X, y, perm, di, lo, q0):
        hi = np.uint64(lo + L + 5)  # one whole block and 5 lanes of another
        z = X.dtype.type(0)
        scratch = (np.full(q0 * d, np.nan, ty), np.full((q0 // 4, 6), np.nan, ty),
                   np.full((d, L), np.nan, ty), np.full(L, np.nan, ty))
        assert _stream_blocks(X, y, di, perm, q0, w, lre, np.uint64(lo), hi, z, True,
                              *scratch) == hi

    ty = np.dtype(dtype)
    rng = np.random.default_rng(3)
    d, P, b = 11, 22, 3
    L = STREAM_VECTORS * VECTOR_BYTES // ty.itemsize
    X = (rng.normal(size=(2, P, d)) * np.geomspace(1, 3, d)).astype(ty)
    y = rng.normal(size=(2, P)).astype(ty)
    nl = b + L + 5 + 2
    lre = (np.geomspace(1e-3, 0.3, nl) / d).astype(ty)
    w = rng.normal(size=(d, nl)).astype(ty)
    perm = rng.permutation(P).astype(np.int64)
    out = w.copy()
    epoch(out, lre, X, y, perm, 1, b, 20)  # 5 blocks: samples perm[:20]
    ref = _numpy_epoch(w.astype(float), lre.astype(float), X[1].astype(float),
                       y[1].astype(float), perm[:20])
    run = slice(b, b + L + 5)
    tol = 1e-12 if ty == np.float64 else 1e-4
    np.testing.assert_allclose(out[:, run], ref[:, run], rtol=tol, atol=tol)
    assert np.array_equal(out[:, :b], w[:, :b]) and np.array_equal(out[:, run.stop:],
                                                                     w[:, run.stop:])


@pytest.mark.parametrize("d", [9, 30])
def test_stream_blocks_equal_block4(d, monkeypatch):
    """Streaming layout (d > 8): a sweep whose chunks fill vector blocks of lanes
    (:func:`fastgd.kernels.simd_stream.stream4_lanes`) and leave lanes over equals one whose
    chunks are narrower than a block (every lane in a partial block) and one run by the
    plain-Numba kernel (``IR=False``: every lane in ``_block4``) bit for bit, with
    curves and weights, float64 and float32, P not a multiple of 4, lanes converging,
    bounded and diverging, in cyclic and shuffled order."""
    from fastgd.linear import table
    from fastgd.linear.kernels_sgd import sgd_kernel

    rng = np.random.default_rng(60 + d)
    X = rng.normal(size=(29, d)) * np.geomspace(1, 5, d)
    data = [(X, X @ rng.normal(size=d) + 0.05 * rng.normal(size=29)),
            (X[:18], X[:18] @ rng.normal(size=d))]
    lam = np.linalg.eigvalsh(X.T @ X / 29)[-1]
    n = 37  # float64: 4 blocks of 8 and 5 lanes over; float32: 2 of 16 and 5 over
    lrs = np.geomspace(1e-3, 40.0, n) / (d * lam)
    for dtype in ("float64", "float32"):
        for order in ("cyclic", "shuffle"):
            kw = dict(lr=lrs, data=data, epochs=30, order=order, seeds=[2], tol=1e-2,
                      dtype=dtype, curve_points=16, weights=True, progress=False)
            a = fg.sweep("sgd", lanes=n, **kw)
            assert a.equals(fg.sweep("sgd", lanes=3, **kw)), (dtype, order)
            assert len(np.unique(a.status)) == 3, (dtype, order)
            with monkeypatch.context() as m:
                key = table.KernelSpec("sgd", d, 1, 0.0, 1.0).key
                assert key[2:] == (0, False, 4)  # the streaming layout's default
                m.setitem(table._BUILT, key, sgd_kernel(0, False, 4, IR=False))
                assert a.equals(fg.sweep("sgd", lanes=n, **kw)), (dtype, order)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_blocks_equal_the_loops(dtype):
    """The final check's vector blocks of cells (:func:`fastgd.kernels.simd_stream.
    check_lanes`) give the loops' bits: segments of 28 cells (blocks of 8 or 16 and cells
    over) against segments of 4 (loops only), P odd, even and 1, weights with inf, NaN
    and huge entries; and both agree with NumPy to 1e-12 (float64) where finite."""
    from fastgd.linear.kernels_gd import cell_losses

    ty = np.dtype(dtype)
    rng = np.random.default_rng(11)
    for d, P in ((2, 1), (9, 37), (30, 40), (100, 19)):
        X = rng.normal(size=(2, P + 3, d)).astype(ty)
        y = rng.normal(size=(2, P + 3)).astype(ty)
        ws = rng.normal(size=(2, d)).astype(ty)
        n = 56
        W = rng.normal(size=(n, d)).astype(ty)
        W[5] = np.inf
        W[17, 0] = np.nan
        W[30] *= ty.type(1e30)
        order = rng.permutation(n).astype(np.int64)
        Pn = np.array([P, P])
        runs = []
        for seg in (28, 4):  # (dataset, first, stop); cells 28.. on dataset 1
            segs = np.array([[int(k >= 28), k, min(k + seg, n)] for k in range(0, n, seg)])
            loss, ex = np.empty(n, ty), np.empty(n, ty)
            with np.errstate(all="ignore"):
                cell_losses(X, y, Pn, ws, W, order, loss, ex, segs, 0, 1)
            runs.append((loss, ex))
        for a, b in zip(*runs, strict=True):
            assert np.array_equal(a, b, equal_nan=True), (d, P)
        if ty == np.float64:
            di = (np.argsort(order) >= 28).astype(int)  # each cell's dataset
            ok = np.isfinite(W).all(axis=1) & (np.abs(W).max(axis=1) < 1e10)
            for c in np.flatnonzero(ok):
                k = di[c]
                r = y[k, :P] - X[k, :P] @ W[c]
                u = X[k, :P] @ (W[c] - ws[k])
                np.testing.assert_allclose(runs[0][0][c], r @ r / (2 * P), rtol=1e-12)
                np.testing.assert_allclose(runs[0][1][c], u @ u / (2 * P), rtol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_check_blocks_any_samples_per_pass_equal_the_loops(k, monkeypatch):
    """check_lanes gives the loops' bits whatever its samples per pass (CHECK_SAMPLES:
    4 on targets with 32 vector registers, 2 with 16; the other is compiled here), for
    P of every remainder by k, float64 and float32; the loops are cell_losses' on
    segments of 4 cells (no vector block)."""
    from fastgd.kernels import simd_stream
    from fastgd.kernels.jit import jit
    from fastgd.linear.kernels_gd import cell_losses

    monkeypatch.setattr(simd_stream, "CHECK_SAMPLES", k)

    # compiled after the patch: the intrinsic reads CHECK_SAMPLES as it lowers
    @jit(variant=f"K{k}")
    def block(X, y, Wc, Dc, di, P, lc, ec):
        simd_stream.check_lanes(X, y, Wc, Dc, di, P, np.uint64(0), lc, ec)

    rng = np.random.default_rng(k)
    for ty in (np.float64, np.float32):
        n = simd_stream.CHECK_VECTORS * (simd_stream.VECTOR_BYTES // np.dtype(ty).itemsize)
        for d, P in ((1, 5), (3, k), (12, 4 * k + 1), (33, 4 * k + 3)):
            X = rng.normal(size=(2, P + 2, d)).astype(ty)
            y = rng.normal(size=(2, P + 2)).astype(ty)
            ws = rng.normal(size=(2, d)).astype(ty)
            W = (ws[1] + rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-9, 1, (n, 1))
                 ).astype(ty)
            lc, ec = np.zeros(n, ty), np.zeros(n, ty)
            block(X, y, np.ascontiguousarray(W.T), np.ascontiguousarray((W - ws[1]).T), 1, P,
                  lc, ec)
            loss, ex = np.empty(n, ty), np.empty(n, ty)
            segs = np.array([[1, a, min(a + 4, n)] for a in range(0, n, 4)])
            cell_losses(X, y, np.array([P, P]), ws, W, np.arange(n), loss, ex, segs, 0, 1)
            for got, want in ((lc, loss), (ec, ex)):
                assert np.array_equal((0.5 * got.astype(np.float64) / P).astype(ty), want), \
                    (ty, d, P)


@pytest.mark.parametrize("nb", [1, 3, 4, 6, 9])
@pytest.mark.parametrize("dt", ["float64", "float32"])
def test_minibatch_gradient_blocks_equal_sample_by_sample(nb, dt):
    """A minibatch's gradient in the SGD kernels (kernels_lanes.rows_grad with residuals:
    four samples at a time) gives the bits of the sample-by-sample loops it replaced
    (compiled alike), for batches of every remainder by 4, samples in the batch's order
    (a permutation), at d = 7 and 12; and NumPy's X_b^T (X_b w - y_b) to rounding."""
    from fastgd.kernels.jit import jit
    from fastgd.linear.kernels_lanes import rows_grad

    @jit
    def samples(X, y, perm, nb, w, r, g):
        d, nl = w.shape
        for i in range(d):
            for l in range(nl):
                g[i, l] = 0.0
        for q in range(nb):
            p = perm[q]
            yp = y[p]
            for l in range(nl):
                r[l] = 0.0 + w[0, l] * X[p, 0]
            for i in range(1, d):
                xi = X[p, i]
                for l in range(nl):
                    r[l] += w[i, l] * xi
            for l in range(nl):
                r[l] = r[l] - yp
            for i in range(d):
                xi = X[p, i]
                for l in range(nl):
                    g[i, l] += r[l] * xi

    rng = np.random.default_rng(nb)
    for d in (7, 12):
        X = rng.standard_normal((11, d)).astype(dt)
        y = rng.standard_normal(11).astype(dt)
        w = (rng.standard_normal((d, 10)) * 10.0 ** rng.integers(-3, 3, 10)).astype(dt)
        perm = rng.permutation(11)[:nb]
        g = np.zeros((d, 10), dt)
        rows_grad(X, perm, nb, w, np.empty((4, 10), dt), g, np.empty(10, dt), y, True)
        ref = np.empty((d, 10), dt)
        samples(X, y, perm, nb, w, np.empty(10, dt), ref)
        assert np.array_equal(g, ref) and g.tobytes() == ref.tobytes()
        Xb, w64 = X[perm].astype(float), w.astype(float)
        res = Xb @ w64 - y[perm].astype(float)[:, None]
        tol = 1e-12 if dt == "float64" else 1e-4
        assert (np.abs(g - Xb.T @ res) <= tol * (np.abs(Xb.T) @ (np.abs(Xb) @ np.abs(w64)
                                                                 + 1))).all()

@pytest.mark.parametrize("d", [1, 3, 4, 5, 8, 9, 14])
@pytest.mark.parametrize("dt", ["float64", "float32"])
def test_excess_gradient_blocks_equal_one_row_at_a_time(d, dt):
    """The adaptive kernels' excess and gradient (kernels_lanes.rows_grad: four rows of R
    at a time) give the bits of the one-row-at-a-time loops they replaced (compiled
    alike), for every remainder of d by 4, and NumPy's |R e|^2 and R^T R e to rounding."""
    from fastgd.kernels.jit import jit
    from fastgd.linear.kernels_lanes import rows_grad

    @jit
    def rows(R, e, u, g, ex):
        d, nl = e.shape
        for l in range(nl):
            ex[l] = 0.0
        for i in range(d):
            for l in range(nl):
                g[i, l] = 0.0
        for k in range(d):
            for l in range(nl):
                u[l] = 0.0
            for i in range(d):
                rki = R[k, i]
                for l in range(nl):
                    u[l] += rki * e[i, l]
            for l in range(nl):
                ex[l] += u[l] * u[l]
            for i in range(d):
                rki = R[k, i]
                for l in range(nl):
                    g[i, l] += rki * u[l]

    rng = np.random.default_rng(d)
    R = (rng.standard_normal((d, d)) * np.geomspace(1, 1e-3, d)[:, None]).astype(dt)
    e = (rng.standard_normal((d, 13)) * 10.0 ** rng.integers(-3, 3, 13)).astype(dt)
    got = [np.empty((4, 13), dt), np.zeros((d, 13), dt), np.zeros(13, dt)]
    ref = [np.empty(13, dt), np.empty((d, 13), dt), np.empty(13, dt)]
    rows_grad(R, np.arange(d), d, e, got[0], got[1], got[2], got[2], False)
    rows(R, e, *ref)
    assert np.array_equal(got[1], ref[1]) and np.array_equal(got[2], ref[2])
    R64, e64 = R.astype(float), e.astype(float)
    u = R64 @ e64
    tol = 1e-12 if dt == "float64" else 1e-4
    np.testing.assert_allclose(got[2], (u * u).sum(0), rtol=tol)
    g = R64.T @ u
    assert (np.abs(got[1] - g) <= tol * (np.abs(R64.T) @ np.abs(u))).all()


def test_vector_width_of_the_hand_written_code(monkeypatch):
    """The hand-written code's vector width (kernels.jit.VECTOR_BYTES): 512 bits only
    where the target has AVX-512F and it was asked for (FASTGD_AVX512's
    NUMBA_CPU_FEATURES, or an AMD Zen host) or forced by FASTGD_VECTOR_BITS; a named
    portable target, or no AVX-512F, keeps 256."""
    import llvmlite.binding as ll
    from numba.core import config

    from fastgd.kernels import jit as S

    monkeypatch.delenv("FASTGD_VECTOR_BITS", raising=False)
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,-prefer-256-bit")
    assert S._vector_bytes() == 64
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f")
    assert S._vector_bytes() == 32
    monkeypatch.setenv("FASTGD_VECTOR_BITS", "512")
    assert S._vector_bytes() == 64
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,-avx512f")
    assert S._vector_bytes() == 32  # 512 asked, but no AVX-512F
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert S._vector_bytes() == 32
    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.delenv("FASTGD_VECTOR_BITS")
    for name, feats, want in (("znver4", {"avx512f": True}, 64),
                              ("znver3", {"avx512f": False}, 32),
                              ("sapphirerapids", {"avx512f": True}, 32)):
        monkeypatch.setattr(ll, "get_host_cpu_name", lambda name=name: name)
        monkeypatch.setattr(ll, "get_host_cpu_features", lambda feats=feats: feats)
        assert S._vector_bytes() == want, name
    monkeypatch.setenv("FASTGD_VECTOR_BITS", "256")
    assert S._vector_bytes() == 32


@pytest.mark.parametrize("nesterov", [False, True])
def test_per_sample_momentum_step_bits(nesterov):
    """Per-sample momentum SGD (float64: the fused step of kernels_sgd, no gradient array)
    gives the bits of its written arithmetic, emulated exactly (fma as one rounding):
    u = w.x summed from 0 by multiply-adds, r = u - y, g = x r, then heavy ball buf' =
    (beta buf) + g rounded twice, w' = w - lr buf' fused; Nesterov buf' = fma(beta, buf,
    g), w' = w - lr fma(beta, buf', g) fused -- the bits of the g-array loops before it.
    Fails if contraction picks another product (as it did for heavy ball without
    fused_madd)."""
    from fractions import Fraction as Fr

    from fastgd.kernels.jit import contract

    if not contract():
        pytest.skip("the emulation assumes FMA contraction (FASTGD_CONTRACT=1)")

    def fma(a, b, c):
        return float(Fr(a) * Fr(b) + Fr(c))

    rng = np.random.default_rng(4)
    d, P, beta, epochs = 3, 7, 0.8, 3
    X = rng.normal(size=(P, d)) * np.array([1.0, 2.0, 0.5])
    y = rng.normal(size=P)
    lrs = np.geomspace(0.002, 0.08, 5)
    res = fg.sweep("sgd", data=[(X, y)], lr=lrs, epochs=epochs, order="cyclic",
                   momentum=beta, nesterov=nesterov, tol=0.0, progress=False,
                   weights=True, threads=1)
    for k, lr in enumerate(lrs):
        w, buf = np.zeros(d), np.zeros(d)
        for _ in range(epochs):
            for p in range(P):
                u = 0.0
                for i in range(d):
                    u = fma(X[p, i], w[i], u)
                u -= y[p]
                for i in range(d):
                    g = fma(X[p, i], u, 0.0)
                    if nesterov:
                        buf[i] = fma(beta, buf[i], g)
                        w[i] = fma(-lr, fma(beta, buf[i], g), w[i])
                    else:
                        buf[i] = float(Fr(beta * buf[i]) + Fr(g))
                        w[i] = fma(-lr, buf[i], w[i])
        assert np.array_equal(res.weights[0, k, 0], w), (k, res.weights[0, k, 0] - w)
