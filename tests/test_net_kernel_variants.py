"""The network kernels' compile-time variants (one per activation): the key that picks
them, closures Numba's disk cache can key on, and the vector code a literal activation
code specialises equal, bit for bit, to the code that chooses it at run time."""

from __future__ import annotations

import os

import numba
import numpy as np
import pytest

from fastgd.kernels.jit import options
from fastgd.net import kernels as K
from fastgd.net import kernels_rows as R
from fastgd.net import lanczos as L
from fastgd.net.contract import NetSpec
from fastgd.net.launch import kernel_key, select

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"
ACTS = (K.ACT_IDENTITY, K.ACT_TANH, K.ACT_RELU)
needs_jit = pytest.mark.skipif(JITLESS, reason="vector code only under the JIT")


def _closure(f):
    """The closure values of a kernel built by a factory (its Python function)."""
    py = getattr(f, "py_func", f)
    return [c.cell_contents for c in py.__closure__ or ()]


def _lanczos_blocks():
    return [L._FWD_IDENTITY, L._HVP_IDENTITY, L._FWD_TANH, L._HVP_TANH, L._FWD_RELU,
            L._HVP_RELU]


def test_key_and_select_follow_the_activation():
    spec = NetSpec("gd", 10, 1e-8, 1e12)
    assert [kernel_key(spec, a)[2] for a in ACTS] == list(ACTS)
    assert kernel_key(NetSpec("sgd", 10, 1e-8, 1e12), K.ACT_TANH) == (True, R.PLAIN, 1)
    kernels = [select(spec, a) for a in ACTS]
    assert len({id(k) for k in kernels}) == 3
    assert select(spec, np.int64(K.ACT_RELU)) is kernels[2]


def test_closures_hold_plain_constants():
    """Numba's disk cache keys a closure on its pickled cells: a dispatcher there would
    pickle with a per-process id (a new cache entry every run)."""
    built = [R.rows_kernel(sgd, mode, a) for sgd in (False, True)
             for mode in (R.PLAIN, R.SCHEDULED, R.ADAPTIVE) for a in ACTS]
    built += [K.loss_grad_identity, K.loss_grad_tanh, K.loss_grad_relu]
    built += [L.lanczos_kernel(a) for a in ACTS] + _lanczos_blocks()
    for f in built:
        cells = _closure(f)
        assert cells and all(type(c) in (bool, int) for c in cells), (f, cells)


def test_every_variant_has_its_own_cache_index():
    """Variants of one factory never share a Numba cache index (named after the qualified
    name): two processes saving different overloads of one index at once can pair an
    entry with the other's code (numba#10128)."""
    from fastgd.kernels import steps as S
    from fastgd.linear import kernels_adaptive as LA
    from fastgd.linear import kernels_gd as LG
    from fastgd.linear import kernels_sgd as LS

    built = [R.rows_kernel(sgd, mode, a) for sgd in (False, True)
             for mode in (R.PLAIN, R.SCHEDULED, R.ADAPTIVE) for a in ACTS]
    built += [K.loss_grad_identity, K.loss_grad_tanh, K.loss_grad_relu]
    built += [LG.gd_kernel(D, F) for D in (0, 2, 5) for F in (False, True)]
    built += [LS.sgd_kernel(D, F, B) for D in (0, 2) for F in (False, True) for B in (1, 4)]
    built += [LA.adaptive_kernel(o) for o in (S.ADAM, S.RMSPROP, S.ADAGRAD)]
    built += [L.lanczos_kernel(a) for a in ACTS] + _lanczos_blocks()
    names = [getattr(f, "py_func", f).__qualname__ for f in built]
    assert len(set(names)) == len(names), names


def _data(nb, nl, m, d, bias, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((nb, d))
    Y = r.standard_normal(nb)
    N = m * (d + 1 + int(bias))
    T = np.ascontiguousarray(r.standard_normal((N, nl)) * 0.7)
    return X, Y, T


if not JITLESS:
    from fastgd.kernels.simd import NET_SAMPLES, net_block1
    from fastgd.net.kernels import NET_LANES, pack_blocks

    # the kernels' options (contraction applies to the vector code's operations too), not
    # cached: these test-only kernels compile in the test's process
    _njit = numba.njit(**{**options(), "cache": False})

    _SIZED = {}

    def _sized_blocks(S):
        """The vector blocks of loss_grad_lanes with ``act`` a run-time value, in blocks
        of S samples (then of one); uncached, made once per S."""
        if S not in _SIZED:
            from fastgd.kernels.simd import _net_block

            blk = _net_block(S)

            @_njit
            def run(X, Y, idx, nb, act, bias, m, s, T, G, Hb, loss):
                d = X.shape[1]
                ib = m * d
                ia = ib + (m if bias else 0)
                sinv = s / nb
                q0 = nb - nb % S
                loss[:] = 0.0
                G[:] = 0.0
                Xp = np.empty(q0 * d)
                pack_blocks(X, idx, q0, S, Xp)
                for lb in range(0, T.shape[1], NET_LANES):
                    for q in range(0, q0, S):
                        blk(T, X, Xp, Y, idx, q, m, ib, ia, Hb, G, loss, lb, act, bias, s,
                            sinv, True)
                    for q in range(q0, nb):
                        net_block1(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, act, bias,
                                   s, sinv, True)
                loss *= 0.5 / nb

            _SIZED[S] = run
        return _SIZED[S]


@needs_jit
@pytest.mark.parametrize("act", ACTS)
def test_block_size_never_changes_a_bit(act):
    """Blocks of 4 samples (targets with 16 vector registers) and of 8 (AVX-512) give
    the kernel's bits: every sum runs sample after sample.  19 samples: blocks and a
    remainder of one-sample blocks for both sizes."""
    nb, nl, m, d, bias, s = 19, 2 * NET_LANES, 5, 3, True, 0.4
    X, Y, T = _data(nb, nl, m, d, bias)
    idx = np.arange(nb, dtype=np.int64)
    N = T.shape[0]
    out = []
    for S in (4, 8):
        G, lo = np.empty((N, nl)), np.empty(nl)
        _sized_blocks(S)(X, Y, idx, nb, act, bias, m, s, T, G, np.empty((m, S, nl)), lo)
        out.append((G, lo))
    lg = {K.ACT_IDENTITY: K.loss_grad_identity, K.ACT_TANH: K.loss_grad_tanh,
          K.ACT_RELU: K.loss_grad_relu}[act]
    G1, lo1 = np.empty((N, nl)), np.empty(nl)
    Z, F, Rr = (np.empty((nb, nl)) for _ in range(3))
    lg(X, Y, idx, nb, bias, m, s, T, G1, Z, F, np.empty((m, nb, 0)), Rr,
       np.empty((m, NET_SAMPLES, nl)), lo1, True)  # the kernel users run
    for G, lo in out:
        assert np.array_equal(lo, lo1) and np.array_equal(G, G1)
    assert np.isfinite(lo1).all() and len(np.unique(lo1)) == nl  # lanes all differ


def test_block_size_follows_the_vector_registers(monkeypatch):
    """8 samples per block where the target has 32 vector registers (AVX-512VL), else 4."""
    from numba.core import config

    from fastgd.kernels import simd

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512vl,+fma")
    assert simd._wide_registers()
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,-avx512f,-avx512vl,+fma")
    assert not simd._wide_registers()
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert not simd._wide_registers()
    assert simd.NET_SAMPLES in (4, 8)


@needs_jit
@pytest.mark.parametrize("act", ACTS)
def test_literal_net_block_equals_runtime(act):
    """loss_grad_<act> (the activation a literal: its code only) equals the blocks that
    choose the activation at run time, bit for bit."""
    nb, nl, m, d, bias, s = 2 * NET_SAMPLES + 3, 2 * NET_LANES, 5, 3, True, 0.4
    X, Y, T = _data(nb, nl, m, d, bias)
    idx = np.arange(nb, dtype=np.int64)
    lg = {K.ACT_IDENTITY: K.loss_grad_identity, K.ACT_TANH: K.loss_grad_tanh,
          K.ACT_RELU: K.loss_grad_relu}[act]
    N = T.shape[0]
    G1, lo1 = np.empty((N, nl)), np.empty(nl)
    Z, F, Rr = (np.empty((nb, nl)) for _ in range(3))
    lg(X, Y, idx, nb, bias, m, s, T, G1, Z, F, np.empty((m, nb, 0)), Rr,
       np.empty((m, NET_SAMPLES, nl)), lo1, True)
    G2, lo2 = np.empty((N, nl)), np.empty(nl)
    _sized_blocks(NET_SAMPLES)(X, Y, idx, nb, act, bias, m, s, T, G2,
                               np.empty((m, NET_SAMPLES, nl)), lo2)
    assert np.array_equal(lo1, lo2) and np.array_equal(G1, G2)
