"""Plain NumPy references for scalar chain networks (slow and obvious).

f(x) = w_L ... w_1 x, E(w) = c/(2P) sum_p (y_p - f(x_p))^2, written literally from the
samples (no sufficient statistics, no prefix products): np.prod(np.delete(w, i)).
The status rule is the one :func:`fastgd.chain.chain_gd` documents: CONVERGED when
E - E* <= tol (E(w0) - E*) (and, for batch GD, lr NTK(w) <= 2: the nearby minimum is
linearly stable), DIVERGED when E is not finite or E > blowup max(E(w0), E(0)); a diverged
run reports the previous iterate.
"""

import os

import numpy as np

from fastgd.kernels import rng

#: True when the kernels run as plain Python (keep problem sizes small then).
JITLESS = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

BOUNDED, CONVERGED, DIVERGED = 0, 1, 2


def loss(w, x, y, c):
    w = np.asarray(w, dtype=float)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    return c / 2 * np.mean((y - np.prod(w) * x) ** 2)


def grad(w, x, y, c, idx=None):
    """Gradient of the loss on the samples ``idx`` (all when None)."""
    w = np.asarray(w, dtype=float)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if idx is not None:
        x, y = x[idx], y[idx]
    res = np.prod(w) * x - y
    return np.array([c * np.mean(res * x) * np.prod(np.delete(w, i)) for i in range(w.size)])


def loss_star(x, y, c):
    """E* of the 1-D least-squares fit of the product."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    pstar = np.mean(x * y) / np.mean(x * x)
    return c / 2 * np.mean((y - pstar * x) ** 2)


def ntk(w, x, c):
    w = np.asarray(w, dtype=float)
    return c * np.mean(np.asarray(x) ** 2) * sum(np.prod(np.delete(w, i)) ** 2
                                                for i in range(w.size))


def _status(E, E0, Es, floor, tol, blowup, stable=True):
    if not np.isfinite(E) or E > blowup * max(E0, floor):
        return DIVERGED
    if E - Es <= tol * (E0 - Es) and stable:
        return CONVERGED
    return BOUNDED


def chain_gd(w0, lr, steps, x, y, c=1.0, tol=1e-10, blowup=1e12):
    """Batch GD; returns dict(status, at, w, losses (n,), traj (n, L), maxloss)."""
    return _run(w0, lr, steps, x, y, c, tol, blowup, None)


def chain_sgd(w0, lr, epochs, x, y, c=1.0, batch=1, order="cyclic", key=(0, 0), tol=1e-10,
              blowup=1e12):
    """SGD with fastgd's counter-based orders; the same dict, per epoch."""
    return _run(w0, lr, epochs, x, y, c, tol, blowup, (batch, order, key))


def _run(w0, lr, steps, x, y, c, tol, blowup, sgd):
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    P = x.size
    w = np.array(w0, dtype=float)
    E0 = loss(w, x, y, c)
    Es = loss_star(x, y, c)
    floor = c / 2 * np.mean(y * y)
    losses, traj = [], []
    prev = w.copy()
    maxloss = E0
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            E = loss(w, x, y, c)
            if np.isfinite(E):
                maxloss = max(maxloss, E)
            # batch GD: converged also needs a linearly stable nearby minimum, lr NTK <= 2
            stable = sgd is not None or lr * ntk(w, x, c) <= 2
            st = _status(E, E0, Es, floor, tol, blowup, stable)
            if st == DIVERGED:
                losses.append(np.inf)
                traj.append(prev.copy())
                return dict(status=st, at=t, w=prev, losses=np.array(losses),
                            traj=np.array(traj), maxloss=np.inf)
            losses.append(E)
            traj.append(w.copy())
            if st == CONVERGED:
                return dict(status=st, at=t, w=w, losses=np.array(losses), traj=np.array(traj),
                            maxloss=maxloss)
            if t == steps:
                break
            prev = w.copy()
            if sgd is None:
                w = w - lr * grad(w, x, y, c)
                continue
            batch, order, (k0, k1) = sgd
            if order == "shuffle":
                perm = np.empty(P, dtype=np.int64)
                rng.permutation(k0, k1, t, perm)
            for pos in range(0, P, batch):
                nb = min(batch, P - pos)
                if order == "cyclic":
                    idx = np.arange(pos, pos + nb)
                elif order == "shuffle":
                    idx = perm[pos:pos + nb]
                else:
                    idx = np.array([rng.randbelow(rng.hash4(k0, k1, t, pos + q), P)
                                    for q in range(nb)])
                w = w - lr * grad(w, x, y, c, idx)
    return dict(status=BOUNDED, at=-1, w=w, losses=np.array(losses), traj=np.array(traj),
                maxloss=maxloss)


def hessian_fd(w, x, y, c, h=1e-4):
    """Central finite-difference Hessian of :func:`loss` (error O(h^2))."""
    w = np.asarray(w, dtype=float)
    L = w.size
    H = np.empty((L, L))
    E = np.eye(L) * h
    for i in range(L):
        for k in range(L):
            H[i, k] = (loss(w + E[i] + E[k], x, y, c) - loss(w + E[i] - E[k], x, y, c)
                       - loss(w - E[i] + E[k], x, y, c) + loss(w - E[i] - E[k], x, y, c)) / (4 * h * h)
    return H
