"""Plain NumPy references for two-layer networks (slow and obvious), for tests/test_net.py.

f(x) = s a . phi(W x + b), E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2, written sample by
sample from the flat layout of :func:`fastgd.net.net_unpack` (W row-major, then b with
``bias``, then a); s = 1/sqrt(m) (param="ntk") or 1.  No status logic.
"""

import numpy as np

from fastgd.kernels import rng as krng


def ref_forward(theta, X, d, bias, act, param):
    m = theta.size // (d + 1 + int(bias))
    W = theta[: m * d].reshape(m, d)
    b = theta[m * d: m * d + m] if bias else np.zeros(m)
    a = theta[-m:]
    s = 1 / np.sqrt(m) if param == "ntk" else 1.0
    return m, W, b, a, s


def ref_phi(z, act):
    if act == "tanh":
        return np.tanh(z), 1 - np.tanh(z) ** 2
    if act == "relu":
        return np.where(z > 0, z, 0.0), np.where(z > 0, 1.0, 0.0)
    return z, np.ones_like(z)


def ref_loss(theta, X, y, bias, act, param):
    """E = 1/(2P) sum_p (y_p - f(x_p))^2, sample by sample."""
    P, d = X.shape
    m, W, b, a, s = ref_forward(theta, X, d, bias, act, param)
    tot = 0.0
    for p in range(P):
        h, _ = ref_phi(W @ X[p] + b, act)
        tot += (y[p] - s * (a @ h)) ** 2
    return tot / (2 * P)


def ref_grad(theta, X, y, idx, bias, act, param):
    """Gradient of 1/(2|B|) sum_{p in B} (y_p - f(x_p))^2, written sample by sample."""
    P, d = X.shape
    m, W, b, a, s = ref_forward(theta, X, d, bias, act, param)
    gW, gb, ga = np.zeros((m, d)), np.zeros(m), np.zeros(m)
    for p in idx:
        h, h1 = ref_phi(W @ X[p] + b, act)
        r = s * (a @ h) - y[p]
        ga += r * s * h
        gb += r * s * a * h1
        gW += np.outer(r * s * a * h1, X[p])
    n = len(idx)
    parts = [gW.ravel() / n] + ([gb / n] if bias else []) + [ga / n]
    return np.concatenate(parts)


def ref_run(theta0, X, y, lr, steps, *, bias, act, param, beta=0.0, batch=None,
            order="cyclic", key=(0, 0)):
    """GD (batch None) or SGD, heavy ball in PyTorch's form, no status logic."""
    P = X.shape[0]
    t = theta0.copy()
    buf = np.zeros_like(t)
    for ep in range(steps):
        if batch is None:
            batches = [list(range(P))]
        else:
            if order == "shuffle":
                perm = np.empty(P, dtype=np.int64)
                krng.permutation(int(key[0]), int(key[1]), ep, perm)
                seq = list(perm)
            elif order == "replacement":
                seq = [krng.randbelow(krng.hash4(int(key[0]), int(key[1]), ep, q), P)
                       for q in range(P)]
            else:
                seq = list(range(P))
            batches = [seq[q: q + batch] for q in range(0, P, batch)]
        for bt in batches:
            g = ref_grad(t, X, y, bt, bias, act, param)
            buf = beta * buf + g
            t = t - lr * buf
    return t


def ref_rate(k, lr, warmup=0, lr_init=0.0, schedule="constant", decay_steps=1,
             decay_factor=1.0):
    """The rate of update k (0-based), written from the definitions: linear warm-up
    from lr_init to lr over ``warmup`` updates, then constant, cosine decay to
    decay_factor x lr over decay_steps, or times decay_factor every decay_steps."""
    if k < warmup:
        return lr_init + (lr - lr_init) * k / warmup
    u = k - warmup
    if schedule == "cosine":
        c = 0.5 * (1 + np.cos(np.pi * min(u, decay_steps) / decay_steps))
        return lr * (decay_factor + (1 - decay_factor) * c)
    if schedule == "step":
        return lr * decay_factor ** (u // decay_steps)
    return lr


def ref_adaptive(theta0, X, y, lr, steps, *, bias, act, param, optimizer="adam",
                 betas=(0.9, 0.999), eps=1e-8, batch=None, freeze=None, **sched):
    """Adam / RMSProp / AdaGrad (PyTorch's formulas: m_hat / (sqrt(v_hat) + eps)) or GD
    (``optimizer="gd"``), full batch (``batch`` None) or cyclic minibatches, with the
    schedule of :func:`ref_rate`; returns (theta, v)."""
    P = X.shape[0]
    b1, b2 = betas
    t = theta0.copy()
    m = np.zeros_like(t)
    v = np.zeros_like(t)
    k = 0
    for _ in range(steps):
        batches = ([list(range(P))] if batch is None else
                   [list(range(q, min(q + batch, P))) for q in range(0, P, batch)])
        for bt in batches:
            g = ref_grad(t, X, y, bt, bias, act, param)
            lr_k = ref_rate(k, lr, **sched)
            upd = freeze is None or k < freeze
            k += 1
            kk = k if upd else freeze
            if optimizer == "gd":
                t = t - lr_k * g
            elif optimizer == "adam":
                m = b1 * m + (1 - b1) * g
                if upd:
                    v = b2 * v + (1 - b2) * g * g
                m_hat = m / (1 - b1 ** k) if upd else m / (1 - b1 ** kk)
                t = t - lr_k * m_hat / (np.sqrt(v / (1 - b2 ** kk)) + eps)
            else:
                if upd:
                    v = v + g * g if optimizer == "adagrad" else b2 * v + (1 - b2) * g * g
                t = t - lr_k * g / (np.sqrt(v) + eps)
    return t, v


def ref_hessian(theta, X, y, bias, act, param, eps=1e-5):
    """Dense Hessian by central differences of the analytic reference gradient."""
    N = theta.size
    H = np.empty((N, N))
    idx = list(range(X.shape[0]))
    for k in range(N):
        e = np.zeros(N)
        e[k] = eps
        H[:, k] = (ref_grad(theta + e, X, y, idx, bias, act, param)
                   - ref_grad(theta - e, X, y, idx, bias, act, param)) / (2 * eps)
    return 0.5 * (H + H.T)


def amplification(reference, t0, end, rel=1e-9):
    """Relative change of ``reference(t0)``'s end point ``end`` per relative change of t0,
    along a fixed random direction of relative size ``rel``."""
    dt = np.random.default_rng(12345).standard_normal(t0.size)
    dt *= rel * np.abs(t0).max() / np.abs(dt).max()
    with np.errstate(all="ignore"):
        moved = reference(t0 + dt)
    change = np.abs(moved - end).max() / np.abs(end).max()
    return change / rel if np.isfinite(change) else np.inf


def ref_gd_status(theta0, X, y, lr, steps, *, bias, act, param, tol, gtol):
    """Plain GD with fastgd's convergence rules, written from their definitions: at each
    step t (before the update) CONVERGED when E <= tol E(theta0) or
    |grad E| <= gtol |grad E(theta0)|.  Returns (converged?, t, theta_t, |g_t|/|g_0|)."""
    idx = list(range(X.shape[0]))
    t = theta0.copy()
    E0 = ref_loss(t, X, y, bias, act, param)
    g0 = np.linalg.norm(ref_grad(t, X, y, idx, bias, act, param))
    for k in range(steps + 1):
        E = ref_loss(t, X, y, bias, act, param)
        g = ref_grad(t, X, y, idx, bias, act, param)
        ratio = np.linalg.norm(g) / g0
        if E <= tol * E0 or ratio <= gtol:
            return True, k, t, ratio
        if k == steps:
            break
        t = t - lr * g
    return False, steps, t, ratio
