"""Slow, obviously-correct references for the fastgd kernels (plain NumPy / Python).

Every function here is written from the conventions in DESIGN.md, not from the
kernels' code: the loss is E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, gradients are computed
from the data (not from sufficient statistics), momentum is PyTorch's ``SGD`` form
(dampening 0), and the sample orders are re-derived from the counter-based hash
documented in ``fastgd.kernels.rng`` (re-implemented here with Python integers).
"""

from __future__ import annotations

import os

import numpy as np

#: True when the kernels run as plain Python (keep problem sizes small then).
JITLESS = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

# --------------------------------------------------------------------------- data


def augment(X, bias):
    """X as a float64 (P, d) array, with a constant column of ones when ``bias``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    return X


def loss(X, y, w):
    """E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (X already augmented)."""
    r = y - X @ w
    return 0.5 * float(r @ r) / X.shape[0]


def hessian(X):
    """H = X^T X / P."""
    return X.T @ X / X.shape[0]


def minimiser(X, y):
    """Least-squares minimiser w* (min-norm) and E(w*)."""
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    return w, loss(X, y, w)


# ------------------------------------------------------------------- counter-based RNG

_M32 = (1 << 32) - 1


def _mix(x):
    """The 32-bit mixer of fastgd.kernels.rng (two xor-shift-multiply rounds)."""
    x &= _M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x446CA68B) & _M32
    x ^= x >> 16
    return x


def seed_key(seed):
    """The two 32-bit key words of a seed: SeedSequence(seed).generate_state(2)."""
    k0, k1 = np.random.SeedSequence(int(seed)).generate_state(2, np.uint32)
    return int(k0), int(k1)


def counter_hash(key, epoch, pos):
    """32-bit hash of (key, epoch, position): mix(mix(mix(mix(k0 ^ C) ^ k1) ^ epoch) ^ pos)."""
    k0, k1 = key
    h = _mix(int(k0) ^ 0x2545F491)
    h = _mix(h ^ int(k1))
    h = _mix(h ^ (int(epoch) & _M32))
    return _mix(h ^ (int(pos) & _M32))


def below(h, n):
    """Integer in [0, n) from a 32-bit hash: floor(h * n / 2**32)."""
    return (int(h) * int(n)) >> 32


def epoch_permutation(key, epoch, P):
    """The epoch's permutation: Fisher-Yates from the top, j = below(hash(key, epoch, i), i + 1)."""
    perm = list(range(P))
    for i in range(P - 1, 0, -1):
        j = below(counter_hash(key, epoch, i), i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def sample_order(order, P, epoch, key):
    """Indices visited in one epoch (length P) for 'cyclic', 'shuffle' or 'replacement'."""
    if order == "cyclic":
        return np.arange(P)
    if order == "shuffle":
        return epoch_permutation(key, epoch, P)
    if order == "replacement":
        return np.array([below(counter_hash(key, epoch, q), P) for q in range(P)],
                        dtype=np.int64)
    raise ValueError(order)


# ----------------------------------------------------------------------------- GD


def _momentum_step(w, g, buf, lr, momentum, nesterov):
    """PyTorch SGD step (dampening 0): buf <- beta buf + g; w <- w - lr (g + beta buf | buf)."""
    if momentum == 0.0:
        return w - lr * g, buf
    buf = momentum * buf + g
    step = g + momentum * buf if nesterov else buf
    return w - lr * step, buf


def gd_linear(X, y, lr, steps, *, w0=None, momentum=0.0, nesterov=False, bias=False):
    """Batch GD from the data: g = X^T (X w - y) / P.

    Returns (trajectory (steps + 1, d), losses (steps + 1,)), row t after t steps.
    """
    X = augment(X, bias)
    y = np.asarray(y, dtype=np.float64)
    P, d = X.shape
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64)
    buf = np.zeros(d)
    traj = [w.copy()]
    for _ in range(steps):
        g = X.T @ (X @ w - y) / P
        w, buf = _momentum_step(w, g, buf, lr, momentum, nesterov)
        traj.append(w.copy())
    traj = np.array(traj)
    return traj, np.array([loss(X, y, v) for v in traj])


def gd_closed_form(X, y, lr, steps, *, w0=None, bias=False):
    """Plain GD on a quadratic in closed form: w_t - w* = V diag((1 - lr lam)^t) V^T (w0 - w*).

    Returns (trajectory (steps + 1, d), w*).
    """
    X = augment(X, bias)
    y = np.asarray(y, dtype=np.float64)
    d = X.shape[1]
    w0 = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64)
    wstar, _ = minimiser(X, y)
    lam, V = np.linalg.eigh(hessian(X))
    c = V.T @ (w0 - wstar)
    t = np.arange(steps + 1)[:, None]
    E = (c * (1.0 - lr * lam) ** t) @ V.T
    return wstar + E, wstar


# ---------------------------------------------------------------------------- SGD


def sgd_linear(X, y, lr, epochs, *, batch_size=1, order="cyclic", seed=0, w0=None,
               momentum=0.0, nesterov=False, bias=False):
    """Minibatch SGD, one sample at a time in the epoch's order.

    Each epoch visits the P indices of :func:`sample_order` in consecutive batches of
    ``batch_size`` (the last batch is smaller when it does not divide P) and takes one
    step on each batch's mean gradient (1/nb) sum_p (w.x_p - y_p) x_p.

    Returns (trajectory (epochs + 1, d), losses (epochs + 1,)): weights at epoch ends.
    """
    X = augment(X, bias)
    y = np.asarray(y, dtype=np.float64)
    P, d = X.shape
    key = seed_key(seed)
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64)
    buf = np.zeros(d)
    traj = [w.copy()]
    for ep in range(epochs):
        idx = sample_order(order, P, ep, key)
        for start in range(0, P, batch_size):
            b = idx[start:start + batch_size]
            Xb, yb = X[b], y[b]
            g = Xb.T @ (Xb @ w - yb) / len(b)
            w, buf = _momentum_step(w, g, buf, lr, momentum, nesterov)
        traj.append(w.copy())
    traj = np.array(traj)
    return traj, np.array([loss(X, y, v) for v in traj])


# ------------------------------------------------------------------------ helpers

def assert_rows_close(actual, expected, *, rtol=1e-12, floor=0.0, what="rows"):
    """Row-wise normwise relative agreement: ||a_t - e_t|| <= rtol * (||e_t|| + floor).

    Normwise (not elementwise) because a component that crosses zero has no useful
    elementwise relative error; ``floor`` is an absolute scale for rows that are
    expected to shrink to ~0 (documented at each call).
    """
    a = np.atleast_2d(np.asarray(actual, dtype=np.float64))
    e = np.atleast_2d(np.asarray(expected, dtype=np.float64))
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(e)), f"{what}: non-finite values"
    err = np.linalg.norm(a - e, axis=-1)
    lim = rtol * (np.linalg.norm(e, axis=-1) + floor)
    bad = np.flatnonzero(err > lim)
    assert bad.size == 0, (
        f"{what}: {bad.size} row(s) differ, first at {bad[0]}: |diff| {err[bad[0]]:.3g} > "
        f"{lim[bad[0]]:.3g} (max rel {np.max(err / np.maximum(lim / rtol, 1e-300)):.3g})")
