"""Chain sweeps: :func:`chain_sweep` runs every (initialisation, learning rate) pair of a
scalar chain on the CPU lane kernels or on a CUDA GPU, into a :class:`ChainSweepResult`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.chain.launch import (
    LANES,
    _backend,
    _common,
    _execute,
    _launch,
    _Out,
    _ratio,
    _sgd_opts,
)
from fastgd.chain.model import _loss, _ntk, _sharpness, _stats, _weights
from fastgd.engine import cost
from fastgd.engine import grid as G
from fastgd.status import Status

__all__ = ["REGIONS", "ChainSweepResult", "chain_sweep"]


#: Names of the region codes of :meth:`ChainSweepResult.regions` (index = code).
REGIONS = ("no convergence", "monotone convergence", "convergence after a spike",
           "divergence")


@dataclass(frozen=True)
class ChainSweepResult:
    """Outcome of a (initialisation x learning rate) grid of chain runs.

    Per-cell arrays are shaped (n_init, n_lr).

    Attributes
    ----------
    inits : (n_init, L)      lr : (n_lr,)
    status : int8            Status codes (BOUNDED 0, CONVERGED 1, DIVERGED 2).
    w : (n_init, n_lr, L)    Final weights (last checked iterate when diverged).
    loss, excess : float     Final E and E - E* (``inf`` when diverged).
    sharpness : float        Final top Hessian eigenvalue (at ``w``).
    max_loss_ratio : float   max_t E(w_t) / E(w0) (> 1: a spike; ``inf`` when diverged).
    steps_to_tol, diverged_at : int64 (-1 if not).
    lambda0, ntk0, loss0 : (n_init,)  Initial sharpness, NTK and loss.
    product_star : float     pi*, the product at every minimum.
    loss_star : float        E*.
    depth, steps : int;  loss_scale, tol, blowup : float;  method : str
    seconds : float          Wall time of the kernels; threads : int.
    backend : str            "cpu" or "cuda" (where the kernels ran).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> res = ch.chain_sweep([[0.5, 0.5], [2.0, 1.5]], [0.1, 1.0], 300)
    >>> res.status.tolist(), res.product.shape
    ([[1, 0], [1, 2]], (2, 2))
    >>> [ch.REGIONS[k] for k in res.regions()[0]]
    ['monotone convergence', 'no convergence']
    """

    inits: np.ndarray
    lr: np.ndarray
    status: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    excess: np.ndarray
    sharpness: np.ndarray
    max_loss_ratio: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    lambda0: np.ndarray
    ntk0: np.ndarray
    loss0: np.ndarray
    product_star: float
    loss_star: float
    depth: int
    steps: int
    loss_scale: float
    tol: float
    blowup: float
    method: str
    seconds: float
    threads: int
    backend: str = "cpu"

    @property
    def product(self):
        """Final product w_1 ... w_L per cell (pi* at a minimum)."""
        return np.prod(self.w, axis=-1)

    @property
    def branch(self):
        """Sign pattern of the final weights: bit i set when w_i < 0 (which minimum)."""
        bits = (self.w < 0).astype(np.int64) << np.arange(self.depth)
        return bits.sum(axis=-1)

    @property
    def imbalance(self):
        """w_1^2 - w_L^2 at the end (for L = 2 the lecture's w1^2 - w2^2)."""
        return self.w[..., 0] ** 2 - self.w[..., -1] ** 2

    @property
    def lr_lambda0(self):
        """eta * lambda0 per cell (the naive boundary is 2)."""
        return self.lr[None, :] * self.lambda0[:, None]

    @property
    def lr_ntk0(self):
        """eta * NTK0 per cell (balanced L = 2: diverges above 4 + 2 c eta Sxy)."""
        return self.lr[None, :] * self.ntk0[:, None]

    def regions(self, spike=1.0):
        """Per-cell region code, index into :data:`REGIONS`: 0 no convergence
        (BOUNDED), 1 monotone convergence (max loss ratio <= ``spike``), 2 convergence
        after a loss spike, 3 divergence.

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> res = ch.chain_sweep([2.002, 0.5], [0.1, 0.5], 300)   # the second: a catapult
        >>> res.regions().tolist(), bool(res.max_loss_ratio[0, 1] > 1e4)
        ([[1, 2]], True)
        """
        code = np.zeros(self.status.shape, dtype=np.int8)
        conv = self.status == Status.CONVERGED
        code[conv & (self.max_loss_ratio <= spike)] = 1
        code[conv & (self.max_loss_ratio > spike)] = 2
        code[self.status == Status.DIVERGED] = 3
        return code


def chain_sweep(inits, lr, steps=1000, x=1.0, y=1.0, *, loss_scale=1.0, method="gd",
                batch_size=1, order="cyclic", seed=0, tol=1e-10, blowup=1e12, threads=None,
                progress=None, backend="cpu") -> ChainSweepResult:
    """Run every (initialisation, learning rate) pair of a scalar chain (lanes kernels).

    Parameters
    ----------
    inits : array (n_init, L) or (L,)
        Initial weights, depth L >= 2.
    lr : float or array (n_lr,)
        Learning rates (> 0).  Thresholds scale as 1/c.
    steps : int
        Step budget (epochs for ``method="sgd"``).
    x, y, loss_scale, tol, blowup
        As in :func:`chain_gd`.
    method : {"gd", "sgd"}
        Batch GD, or SGD with ``batch_size``/``order``/``seed`` as in :func:`chain_sgd`
        (one seed: every cell sees the same sample order).
    threads : int, optional
        Numba threads for this call (default: numba's current setting).
    progress : bool, optional
        Progress bar (tqdm) for long sweeps; None = automatic.
    backend : {"cpu", "cuda"}
        Where the runs execute.  ``"cuda"``: one run per GPU thread (needs an NVIDIA GPU
        and ``fastgd[cuda]``, as :func:`fastgd.sweep`); statuses and steps equal the
        CPU's, losses and weights to rounding (the GPU fuses multiply-adds).

    Returns
    -------
    ChainSweepResult
        Cell (i, j) equals ``chain_gd(inits[i], lr[j], steps, ...)`` bit for bit
        (``chain_sgd`` for ``method="sgd"``) on the CPU.

    Examples
    --------
    >>> import numpy as np, fastgd.chain as ch
    >>> u = np.linspace(0.2, 2.0, 10)
    >>> res = ch.chain_sweep(np.stack([u, u], 1), [0.05, 0.5], 2000, loss_scale=2.0)
    >>> res.status.shape, bool(np.all(res.sharpness[res.status == 1] <= 2 / 0.05))
    ((10, 2), True)
    """
    f = "chain_sweep"
    s = _stats(f, x, y, loss_scale)
    inits = _inits(f, inits)
    lrs = V.rates(f, "lr", lr)
    method = V.choice(f, "method", method, ("gd", "sgd"))
    steps, tol, blowup = _common(f, steps, "steps", tol, blowup)
    batch, code, seed = _sgd_opts(f, s, batch_size, order, seed)  # checked for GD too
    sgd = (batch, code, G.seed_key(seed)) if method == "sgd" else None
    progress = V.boolean(f, "progress", progress, allow_none=True)
    V.threads(f, threads)
    backend = _backend(f, backend)
    _check_size(f, s, inits.shape, lrs.shape[0], steps, method)
    out = _Out(inits.shape[0] * lrs.shape[0], inits.shape[1])
    chunks = G.make_chunks(1, 1, out.status.shape[0], LANES)

    def launch(rows, nw):
        _launch(method, s, inits, lrs, steps, tol, blowup, out, rows, nw, sgd, backend)

    t0 = time.perf_counter()
    with G.using_threads(f, threads) as nw:
        _execute(f, launch, chunks, nw, backend, progress)
    seconds = time.perf_counter() - t0
    return _result(s, inits, lrs, out, dict(
        steps=steps, loss_scale=s.c, tol=tol, blowup=blowup, method=method, seconds=seconds,
        threads=nw, backend=backend))


def _inits(f, inits):
    """The initial weights as a C-contiguous float64 (n_init, L)."""
    inits = _weights(f, "inits", inits)
    if inits.ndim == 1:
        inits = inits[None]
    if inits.ndim != 2:
        raise V.fail(f, "inits", "of shape (n_init, L) or (L,)", f"shape {inits.shape}")
    return np.ascontiguousarray(inits)


def _check_size(f, s, shape, n_lr, steps, method):
    """Refuse grids that do not fit in memory or would run unreasonably long."""
    n_init, L = shape
    n = n_init * n_lr
    G.check_memory(f, n, 2 * (1 + 8 * (L + 8)))
    per = L * (s.X.shape[0] if method == "sgd" else 1)
    cost.check(f, "steps", work=float(n) * steps * per,
               work_what=f"{n:,} cells x {steps:,} steps x {per:,}",
               hint="use fewer cells or steps")


def _result(s, inits, lrs, out, meta):
    """Reshape the flat kernel outputs to (n_init, n_lr) and add the curvatures."""
    shape = (inits.shape[0], lrs.shape[0])
    L = inits.shape[1]
    w = out.w.reshape(shape + (L,))
    loss0 = _loss(inits, s)
    excess = out.excess.reshape(shape)
    return ChainSweepResult(
        inits=inits, lr=lrs, status=out.status.reshape(shape), w=w, loss=s.estar + excess,
        excess=excess, sharpness=_sharpness(w, s),
        max_loss_ratio=_ratio(out.maxloss.reshape(shape), loss0[:, None]),
        steps_to_tol=out.tol_at.reshape(shape), diverged_at=out.div_at.reshape(shape),
        lambda0=_sharpness(inits, s), ntk0=_ntk(inits, s), loss0=loss0,
        product_star=float(s.pstar), loss_star=float(s.estar), depth=L, **meta)
