"""Chain sweeps: :func:`chain_sweep` runs every (initialisation, learning rate) pair of a
scalar chain on the CPU lane kernels or on a CUDA GPU, into a :class:`ChainSweepResult`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.chain.contract import ChainJob, ChainSpec, chain_inputs
from fastgd.chain.launch import (
    BACKENDS,
    FIELDS,
    LANES,
    Out,
    _backend,
    _common,
    _sgd_opts,
    runner,
)
from fastgd.chain.model import _loss, _ntk, _sharpness, _stats, _weights
from fastgd.engine import cost
from fastgd.engine import executors as X
from fastgd.engine import grid as G
from fastgd.engine.fields import loss_ratio
from fastgd.linear.result import SweepInterrupted
from fastgd.status import Status

__all__ = ["REGIONS", "ChainSweepResult", "chain_load", "chain_sweep"]

#: the format of a saved :class:`ChainSweepResult` (:meth:`ChainSweepResult.save`)
FORMAT = "fastgd-chain-sweep-1"


#: Names of the region codes of :meth:`ChainSweepResult.regions` (index = code).
REGIONS = ("no convergence", "monotone convergence", "convergence after a spike",
           "divergence")


@dataclass(frozen=True, eq=False)
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
    meta : dict              Where it came from: fastgd version, the call's options,
                             the engine, chunks total / resumed / computed.

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
    meta: dict = field(default_factory=dict)

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

    @property
    def complete(self) -> bool:
        """False when the sweep was interrupted (some cells NOT_RUN)."""
        return bool(np.all(self.status != Status.NOT_RUN))

    def observed_boundary(self):
        """(n_init,) smallest learning rate of the grid at which the run from that
        init diverged (NaN: none did).

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> ch.chain_sweep([[0.5, 0.5], [3.0, 3.0]], [0.1, 1.0, 3.0], 300).observed_boundary()
        array([3., 1.])
        """
        div = self.status == Status.DIVERGED
        lr = np.where(div, self.lr[None, :], np.inf).min(axis=1)
        return np.where(np.isfinite(lr), lr, np.nan)

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

    def __repr__(self):
        """At most 8 lines: the grid and where it came from, statuses and regions
        counted, the rates, the observed boundary, the minima, the run."""
        n_init, n_lr = self.status.shape
        unit = "epochs" if self.method == "sgd" else "steps"
        counts = ", ".join(f"{st.name.lower()} {n}" for st in Status
                           if (n := int(np.count_nonzero(self.status == st))))
        reg = self.regions()
        regs = ", ".join(f"{name} {n}" for k, name in enumerate(REGIONS)
                         if (n := int(np.count_nonzero((reg == k) & (self.status >= 0)))))
        bound = self.observed_boundary()
        hit = np.isfinite(bound)
        m = self.meta if isinstance(self.meta, dict) else {}
        lines = [
            f"<ChainSweepResult {self.method}: {n_init} inits x {n_lr} rates, depth "
            f"{self.depth}, {self.steps} {unit}, loss_scale {self.loss_scale:g}>",
            f"  status: {counts}",
            f"  regions: {regs or 'none'}",
            f"  lr: {_span(self.lr)} ({n_lr} rates); lr x lambda0: "
            f"{_span(self.lr_lambda0)}",
            "  boundary (smallest diverging lr): " + (
                f"{_span(bound[hit])} for {int(hit.sum())} of {n_init} inits" if hit.any()
                else "none on the grid"),
            f"  minima: pi* = {self.product_star:.6g}, E* = {self.loss_star:.6g}",
            f"  ran on {self.backend}, {m.get('engine', 'local')} engine, {self.threads} "
            f"threads, {self.seconds:.3g} s" + (
                f"; chunks {m['chunks_computed']} computed, {m['chunks_resumed']} resumed"
                if "chunks_computed" in m else "")]
        if not self.complete:
            lines.append(f"  interrupted: {int(np.count_nonzero(self.status < 0))} cells "
                         "not run")
        return "\n".join(lines)

    def equals(self, other) -> bool:
        """True when every array is identical (bit for bit, NaN == NaN) and so are the
        scalars that define the sweep (``seconds``, ``threads``, ``backend`` and ``meta``,
        which say how it ran, are not compared).  Anything else: False.

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> a = ch.chain_sweep([0.5, 0.5], [0.1, 1.0], 100)
        >>> a.equals(ch.chain_sweep([0.5, 0.5], [0.1, 1.0], 100, threads=1)), a.equals(None)
        (True, False)
        """
        if not isinstance(other, ChainSweepResult):
            return False
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                if not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype != b.dtype \
                        or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                    return False
            elif f.name not in _HOW and a != b:
                return False
        return True

    def save(self, path):
        """Write the result to ``path`` (``.npz`` appended when it lacks it) atomically,
        with its metadata and a checksum (:func:`fastgd.engine.files.write_npz`);
        :func:`chain_load` reads it back bit for bit.  Returns the path written.

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> res = ch.chain_sweep([[0.5, 0.5], [2.0, 1.5]], [0.1, 1.0], 300)
        >>> ch.chain_load(res.save("chain.npz")).equals(res)
        True
        """
        from fastgd.engine.files import write_npz

        arrays = {k: getattr(self, k) for k in _SCHEMA}
        head = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in _SCHEMA}
        return write_npz("ChainSweepResult.save", path, arrays, head, FORMAT, _check)


#: fields saved as arrays: name -> (dims, dtype kinds) (:func:`fastgd.engine.files.read_npz`)
_SCHEMA = {"inits": (("n_init", "L"), "f"), "lr": (("n_lr",), "f"),
           "status": (("n_init", "n_lr"), "i"), "w": (("n_init", "n_lr", "L"), "f"),
           **{k: (("n_init", "n_lr"), "f") for k in ("loss", "excess", "sharpness",
                                                     "max_loss_ratio")},
           "steps_to_tol": (("n_init", "n_lr"), "i"), "diverged_at": (("n_init", "n_lr"), "i"),
           **{k: (("n_init",), "f") for k in ("lambda0", "ntk0", "loss0")}}
#: fields that say how a sweep ran, not what it computed (not compared by ``equals``)
_HOW = ("seconds", "threads", "backend", "meta")


def _span(a):
    """'lo .. hi' of the finite values of ``a`` (one value: itself)."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return "none"
    lo, hi = float(a.min()), float(a.max())
    return f"{lo:.4g}" if lo == hi else f"{lo:.4g} .. {hi:.4g}"


def chain_load(path, *, max_bytes=None) -> ChainSweepResult:
    """Read a result written by :meth:`ChainSweepResult.save`, bit for bit.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``chain_load("r")`` reads ``r.npz`` when ``r`` does not exist).
    max_bytes : float, optional
        Refuse a file whose arrays declare more than this many bytes (default: half of
        physical memory), before decompressing anything.

    Raises
    ------
    FastGDValueError
        Naming ``path`` and what is wrong, for any file that is not a complete, valid
        chain sweep (:func:`fastgd.engine.files.read_npz`: not a regular file or a zip,
        members missing or unexpected, shapes that disagree, a wrong checksum, bad
        metadata, status codes outside :class:`fastgd.Status`).  Nothing is unpickled.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> res = ch.chain_sweep([0.5, 0.5], [0.1, 1.0, 3.0], 300)
    >>> back = ch.chain_load(res.save("sweep"))
    >>> back.status.tolist(), back.meta["engine"]
    ([[1, 0, 2]], 'local')
    """
    from fastgd.engine.files import read_npz

    arrays, head = read_npz(path, _SCHEMA, fmt=FORMAT, func="chain_load",
                            writer="ChainSweepResult.save", max_bytes=max_bytes,
                            bind=_bind, check=_check)
    arrays["status"] = arrays["status"].astype(np.int8)
    return ChainSweepResult(**arrays, **head)


#: the metadata of a chain sweep file: field -> type
_KINDS = {"product_star": float, "loss_star": float, "depth": int, "steps": int,
          "loss_scale": float, "tol": float, "blowup": float, "method": str,
          "seconds": float, "threads": int, "backend": str, "meta": dict}


def _bind(head):
    """The depth the metadata fixes (L), or what is wrong with its types."""
    from fastgd.engine.files import check_kinds

    return check_kinds(head, _KINDS) or {"L": head["depth"]}


def _check(a, head):
    """What makes a chain sweep file impossible (None: nothing)."""
    from fastgd.engine.files import status_rules

    what = _bind(head)
    if isinstance(what, str):
        return what
    if head["method"] not in ("gd", "sgd") or head["depth"] < 1 or head["steps"] < 0:
        return "metadata method, depth or steps out of range"
    if not np.all(np.isfinite(a["lr"]) & (a["lr"] > 0)):
        return "'lr' holds values that are not finite and > 0"
    what = status_rules(a["status"], a["diverged_at"], a["steps_to_tol"], a["loss"],
                        head["steps"])
    if what:
        return what
    if not (np.isfinite(a["inits"]).all() and (a["loss0"] >= 0).all()) or \
            (a["lambda0"] < 0).any() or (a["ntk0"] < 0).any():
        return "'inits' not finite, or 'loss0', 'lambda0' or 'ntk0' negative (or NaN loss0)"
    if np.isnan(a["max_loss_ratio"]).any() or (a["max_loss_ratio"] < 0).any():
        return "'max_loss_ratio' holds NaN or negative values"
    return None


def chain_sweep(inits, lr, steps=1000, x=1.0, y=1.0, *, loss_scale=1.0, method="gd",
                batch_size=1, order="cyclic", seed=0, tol=1e-10, blowup=1e12, threads=None,
                progress=None, backend="cpu", engine=None,
                checkpoint=None) -> ChainSweepResult:
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
        Numba threads for this call (default: numba's current setting); with
        ``engine``, the threads of each task (default 1).
    progress : bool, optional
        Progress bar (tqdm) for long sweeps; None = automatic.
    backend : {"cpu", "cuda"}
        Where the runs execute.  ``"cuda"``: one run per GPU thread (needs an NVIDIA GPU
        and ``fastgd[cuda]``, as :func:`fastgd.sweep`); statuses and steps equal the
        CPU's, losses and weights to rounding (the GPU fuses multiply-adds).
    engine : concurrent.futures.Executor, optional
        Run the chunks (64 cells each) on an executor instead of this process's
        threads, as :func:`fastgd.sweep` does (a process pool, a thread pool, Dask's
        ``client.get_executor()``); results are bit-identical.  Not with ``"cuda"``.
    checkpoint : str or os.PathLike, optional
        A directory that makes the sweep resumable (:mod:`fastgd.engine.checkpoint`):
        finished chunks are written there atomically as they complete, and the same
        call run again computes only the missing ones and returns a result identical
        to an uninterrupted run (``meta["chunks_resumed"]``,
        ``meta["chunks_computed"]``).  A directory of another sweep is refused.

    Returns
    -------
    ChainSweepResult
        Cell (i, j) equals ``chain_gd(inits[i], lr[j], steps, ...)`` bit for bit
        (``chain_sgd`` for ``method="sgd"``) on the CPU, on any engine.

    Raises
    ------
    fastgd.SweepInterrupted
        On Ctrl-C (SIGTERM too with a checkpoint), between chunks; ``.result`` holds
        the finished cells (the others NOT_RUN).

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
    progress = V.boolean(f, "progress", progress, allow_none=True)
    V.threads(f, threads)
    backend = V.choice(f, "backend", backend, BACKENDS)
    engine = X.check_engine(f, engine, backend)
    checkpoint = X.check_checkpoint(f, checkpoint)
    backend = _backend(f, backend)
    _check_size(f, s, inits.shape, lrs.shape[0], steps, method)
    sgd = method == "sgd"
    job = ChainJob(ChainSpec(method, steps, tol, blowup, batch=batch if sgd else 1,
                             order=code if sgd else 0, backend=backend),
                   chain_inputs(s, None, None, inits, lrs, seed=seed if sgd else None),
                   lanes=LANES)
    out = Out(job.n_cells, job.depth)
    chunks = G.make_chunks(1, 1, job.n_cells, LANES)
    counts = {"chunks_total": int(chunks.shape[0])}
    interrupted = None
    with G.using_threads(f, None if engine is not None else threads) as nw:
        if engine is not None:
            nw = X.task_threads(f, threads)
        run = runner(job, out, nw, engine, progress=progress, desc=f"{f} {method}",
                     blocks=checkpoint is not None)
        try:
            X.run_resumable(run, chunks, scatter=out.scatter, finish=None, counts=counts,
                            checkpoint=checkpoint, job=job, func=f, fields=FIELDS,
                            summary=dict(method=method, n_init=inits.shape[0],
                                         n_lr=lrs.shape[0], depth=inits.shape[1]))
        except G.Interrupted as exc:
            interrupted = exc
    meta = _meta(job, seed, engine, counts)
    res = _result(s, inits, lrs, out, meta, dict(
        steps=steps, loss_scale=s.c, tol=tol, blowup=blowup, method=method,
        seconds=counts.get("seconds_run", 0.0), threads=nw, backend=backend))
    if interrupted is not None:
        raise SweepInterrupted(res) from None
    return res


def _meta(job, seed, engine, counts):
    """What the result records of its origin: versions, the call's options, the engine
    and the chunk counts."""
    from fastgd.version import __version__

    spec = job.spec
    return {"fastgd": __version__, "engine": "local" if engine is None
            else type(engine).__name__, **counts,
            "spec": {"method": spec.method, "steps": spec.steps, "tol": spec.tol,
                     "blowup": spec.blowup, "batch_size": spec.batch,
                     "order": {v: k for k, v in ST.ORDERS.items()}.get(spec.order),
                     "seed": seed, "P": int(job.inputs.X.shape[0]), "lanes": job.lanes,
                     "backend": spec.backend}}


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
    cost.check(f, "inits" if n_init >= n_lr else "lr", nbytes=n * 2.0 * (1 + 8 * (L + 8)),
               what=f"{n_init:,} inits x {n_lr:,} rates", hint="use fewer cells")
    G.check_memory(f, n, 2 * (1 + 8 * (L + 8)))
    cost.chain_curvature(f, "inits", n_init + n, L)  # the sharpness at inits and ends
    per = L * (s.X.shape[0] if method == "sgd" else 1)
    cost.check(f, "steps", work=float(n) * steps * per,
               work_what=f"{n:,} cells x {steps:,} steps x {per:,}",
               hint="use fewer cells or steps")


def _result(s, inits, lrs, out, meta, scalars):
    """Reshape the flat kernel outputs to (n_init, n_lr) and add the curvatures."""
    shape = (inits.shape[0], lrs.shape[0])
    L = inits.shape[1]
    w = out.w.reshape(shape + (L,))
    loss0 = _loss(inits, s)
    excess = out.excess.reshape(shape)
    return ChainSweepResult(
        inits=inits, lr=lrs, status=out.status.reshape(shape), w=w, loss=s.estar + excess,
        excess=excess, sharpness=_sharpness(w, s),
        max_loss_ratio=loss_ratio(out.maxloss.reshape(shape), loss0[:, None]),
        steps_to_tol=out.tol_at.reshape(shape), diverged_at=out.div_at.reshape(shape),
        lambda0=_sharpness(inits, s), ntk0=_ntk(inits, s), loss0=loss0,
        product_star=float(s.pstar), loss_star=float(s.estar), depth=L, meta=meta,
        **scalars)
