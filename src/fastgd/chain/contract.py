"""The chain's kernel contract: its spec, its inputs and its job, as typed frozen values.

:class:`ChainSpec` holds the scalars every cell of a grid shares (method, budget,
thresholds, SGD options, backend), :class:`ChainInputs` the arrays and statistics the
kernels read (built by :func:`chain_inputs`, the one builder), and :class:`ChainJob`
both with the lanes per chunk: what the engines (:mod:`fastgd.engine.executors`) ship to
a worker and what keys a checkpoint directory.  The chain's launchers
(:mod:`fastgd.chain.launch`, registered in :mod:`fastgd.engine.table`) are the one
place that turns them into the kernels' argument lists.

Cells are those of a flattened (init x lr) grid: cell k runs ``inits[k // n_lr]`` at
``lrs[k % n_lr]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fastgd.chain.model import _Stats, _stats
from fastgd.engine.table import writable

__all__ = ["ChainInputs", "ChainJob", "ChainSpec", "chain_inputs"]


@dataclass(frozen=True)
class ChainSpec:
    """What a chain grid kernel runs: the scalars shared by every cell.

    Attributes
    ----------
    method : {"gd", "sgd"}
    steps : int
        Budget in steps (epochs for SGD).
    tol, blowup : float
        Convergence and divergence thresholds (:func:`fastgd.chain.chain_gd`).
    batch : int
        SGD batch size.
    order : int
        SGD order code (:data:`fastgd.status.ORDERS`).
    backend : {"cpu", "cuda"}
    model : str
        ``"chain"``: the key of :mod:`fastgd.engine.table`.

    Examples
    --------
    >>> from fastgd.chain.contract import ChainSpec
    >>> spec = ChainSpec("gd", 100, 1e-10, 1e12)
    >>> spec.model, spec.method, spec.backend
    ('chain', 'gd', 'cpu')
    """

    method: str
    steps: int
    tol: float
    blowup: float
    batch: int = 1
    order: int = 0
    backend: str = "cpu"
    model: str = "chain"


@dataclass(frozen=True, eq=False)
class ChainInputs(_Stats):
    """The inputs of the chain kernels: samples, their statistics, the grid's axes.

    Attributes
    ----------
    X, Y : (P,) arrays
        The samples (SGD reads them; GD needs only the statistics).
    c : float
        The loss scale.
    sxx, sxy, pstar, estar, c0 : float
        mean x^2, mean x y, pi* = Sxy / Sxx, E* and E(0) = c/2 mean y^2.
    inits : (n_init, L) array
        Initial weights, one row per init.
    lrs : (n_lr,) array
        Learning rates.
    key : (2,) int64 array or None
        SGD: the key of the seed's sample order; None for GD.

    Examples
    --------
    >>> from fastgd.chain.contract import chain_inputs
    >>> inp = chain_inputs(1.0, 1.0, 1.0, [[0.5, 0.5], [1.0, 2.0], [3.0, 0.1]], [0.1])
    >>> inp.take(1, 3).inits.tolist(), inp.depth
    ([[1.0, 2.0], [3.0, 0.1]], 2)
    """

    inits: np.ndarray  # after _Stats's fields X, Y, c, sxx, sxy, pstar, estar, c0
    lrs: np.ndarray
    key: np.ndarray | None = None

    @property
    def depth(self) -> int:
        """L, the number of weights."""
        return int(self.inits.shape[1])

    def take(self, start, stop) -> ChainInputs:
        """The inputs restricted to the inits ``start:stop`` (cell k of the result is
        cell ``k + start * n_lr`` of these)."""
        return dataclasses.replace(self, inits=np.ascontiguousarray(self.inits[start:stop]))

    def writable(self) -> ChainInputs:
        """The inputs with every read-only array copied (:func:`fastgd.engine.table.writable`)."""
        return writable(self)


def chain_inputs(x, y, loss_scale, inits, lr, *, seed=None, func="chain_inputs"):
    """The kernel inputs of a chain grid (the one builder of :class:`ChainInputs`).

    Parameters
    ----------
    x, y : float or array (P,)
        The samples; ``x`` may instead be their checked statistics (what the API
        passes, having checked the samples first), and then ``y`` and ``loss_scale``
        are not read.
    loss_scale : float
        c.
    inits : array (n_init, L) or (L,)
        Initial weights (already checked by the API: converted here).
    lr : float or array (n_lr,)
        Learning rates (already checked).
    seed : int, optional
        SGD: the seed of the sample order (its key is included); None for GD.
    func : str
        The API function named in errors about ``x``, ``y``, ``loss_scale``.

    Returns
    -------
    ChainInputs

    Examples
    --------
    >>> from fastgd.chain.contract import chain_inputs
    >>> inp = chain_inputs([1.0, 2.0], [2.0, 4.0], 1.0, [0.5, 0.5], [0.1, 0.2], seed=3)
    >>> inp.inits.shape, inp.lrs.shape, inp.pstar, inp.key.shape
    ((1, 2), (2,), 2.0, (2,))
    """
    s = x if type(x) is _Stats else _stats(func, x, y, loss_scale)  # not ChainInputs
    inits = np.asarray(inits, dtype=np.float64)
    key = None
    if seed is not None:
        from fastgd.engine.grid import seed_key

        key = np.ascontiguousarray(seed_key(seed))
    return ChainInputs(
        X=s.X, Y=s.Y, c=float(s.c), sxx=float(s.sxx), sxy=float(s.sxy),
        pstar=float(s.pstar), estar=float(s.estar), c0=float(s.c0),
        inits=np.ascontiguousarray(inits[None] if inits.ndim == 1 else inits),
        lrs=np.ascontiguousarray(np.atleast_1d(np.asarray(lr, dtype=np.float64))), key=key)


@dataclass(frozen=True, eq=False)
class ChainJob:
    """A chain grid as the engines ship it to a worker: spec, inputs and lanes per
    chunk.  Picklable (arrays and scalars); its fields key a checkpoint directory
    (:func:`fastgd.engine.checkpoint.spec_hash`).

    Examples
    --------
    >>> from fastgd.chain.contract import ChainJob, ChainSpec, chain_inputs
    >>> job = ChainJob(ChainSpec("gd", 100, 1e-10, 1e12),
    ...                chain_inputs(1.0, 1.0, 1.0, [[0.5, 0.5]], [0.1, 0.2, 0.3]), lanes=64)
    >>> job.n_cells, job.depth
    (3, 2)
    """

    spec: ChainSpec
    inputs: ChainInputs
    lanes: int

    @property
    def n_lr(self) -> int:
        """The number of learning rates."""
        return int(self.inputs.lrs.shape[0])

    @property
    def depth(self) -> int:
        """L."""
        return self.inputs.depth

    @property
    def n_cells(self) -> int:
        """Cells of the grid (n_init x n_lr)."""
        return int(self.inputs.inits.shape[0]) * self.n_lr
