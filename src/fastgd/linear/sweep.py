"""Sweeps: grids of learning rate x dataset (conditioning) x seed, run in parallel on
Numba threads.

Each dataset's learning rates are split into chunks of ``lanes`` consecutive rates that
run as SIMD lanes sharing the dataset (and, for SGD, the sample order of the seed:
common random numbers across the learning-rate axis).  Chunks are interleaved over
threads and executed in batches, so a progress bar advances and Ctrl-C stops cleanly
between batches (:class:`SweepInterrupted` carries what finished).  Results are
bit-identical for any thread count, lane count or batch size, and for any engine
(``engine=``: a ``concurrent.futures.Executor``, e.g. Dask's ``client.get_executor()``;
see :mod:`fastgd.engine.executors`).  ``checkpoint=DIR`` makes a sweep resumable
(:mod:`fastgd.engine.checkpoint`); ``dtype="float32"`` and ``backend="cuda"``
(:mod:`fastgd.linear.gpu`) trade precision or hardware for speed.  The divergence
boundary of one dataset is :func:`fastgd.linear.boundary.critical_lr`.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P, batch GD diverges
above 2/lambda_max.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.linear import checks as CK
from fastgd.linear import datasets as DS
from fastgd.linear import problem as PB
from fastgd.linear.result import SweepInterrupted, SweepResult, load  # noqa: F401
from fastgd.linear.run import _plain_gd_only

__all__ = ["auto_lanes", "momentum_limit", "sweep"]

LR_UNITS = ("absolute", "eta_max")


def momentum_limit(lam_max, beta, nesterov=False):
    """Largest stable batch-GD rate with momentum beta (PyTorch form) for each lam_max:
    heavy ball 2(1 + beta)/lam, Nesterov (2 + 2 beta)/((1 + 2 beta) lam)
    (:func:`fastgd.theory.momentum_lr_max`).

    Examples
    --------
    >>> from fastgd.linear.sweep import momentum_limit
    >>> momentum_limit([1.0, 2.0], 0.5)
    array([3. , 1.5])
    """
    from fastgd.theory import momentum_lr_max

    return np.array([momentum_lr_max(float(l), beta, nesterov) for l in np.atleast_1d(lam_max)])


def _relative_rates(f, rel, probs):
    """``sweep(lr_unit="eta_max")``: the (n_data, n_lr) absolute rates ``rel * 2/lambda_max``
    of each dataset, with lambda_max as the result computes it (:func:`_assemble`), so that
    ``absolute_lr = lr * gd_limit`` reproduces the rates run bit for bit."""
    lam_max, _ = PB.spectra(probs)
    if np.any(lam_max <= 0):
        raise V.fail(f, "lr_unit", "'absolute' for data with H = 0 (no eta_max)",
                     f"'eta_max' with lambda_max = 0 for dataset {int(np.argmin(lam_max))}")
    if not np.all(lam_max > 2.0 / np.finfo(float).max):  # subnormal: 2/lambda_max = inf
        raise V.fail(f, "data", "rescaled: lambda_max too small for a finite eta_max",
                     f"lambda_max = {lam_max.min():.3g}")
    return rel[None, :] * (2.0 / lam_max)[:, None]


#: fewest lanes :func:`auto_lanes` picks: narrower chunks run the kernels slower per
#: update (bench/test_bench_sweep.py)
MIN_LANES = 32


def auto_lanes(method, n_data, n_seed, n_lr, *, min_chunks=16):
    """The default ``lanes`` of :func:`sweep` (see there): a function of the grid only,
    so that a checkpointed sweep resumes with the same chunk table on any machine.

    Examples
    --------
    >>> from fastgd.linear.sweep import auto_lanes
    >>> auto_lanes("sgd", 64, 1, 256), auto_lanes("gd", 1, 1, 128)
    (256, 32)
    """
    lanes = 256 if method == "sgd" else 64
    while lanes > MIN_LANES and n_data * n_seed * -(-n_lr // lanes) < min_chunks:
        lanes //= 2
    return lanes


@single_blas
def sweep(method="gd", *, lr, lr_unit="absolute", data=None, condition=None, steps=None, epochs=None, batch_size=1,
          order=ST.DEFAULT_ORDER, seeds=1, momentum=0.0, nesterov=False, bias=False, w0=None,
          tol=ST.DEFAULT_TOL, blowup=1e12, n=100, d=2, fix="lambda_max", data_seed=0,
          curve_points=0, lanes=None, threads=None, progress=None, max_bytes=None,
          almost_sure=False, dtype="float64", backend="cpu", engine=None, checkpoint=None,
          weights=False, exact=False, optimizer="gd", betas=(0.9, 0.999), eps=1e-8,
          warmup=0, lr_init=0.0, schedule="constant", decay_steps=None, decay_factor=None,
          freeze_preconditioner=None, pre_freeze_lr=None) -> SweepResult:
    """Run a grid of learning rates x datasets (x seeds for SGD) and classify each run.

    Parameters
    ----------
    method : {"gd", "sgd"}
        Batch gradient descent (``steps`` steps) or stochastic (``epochs`` epochs).

    **Problem** -- the datasets and the starting point:

    data : list of (X, y), or dict name -> (X, y)
        Datasets with the same number of inputs d (P may differ); a dict names them
        (``result.names``; default ``"data 0"``, ...).  Or:
    condition : float or 1-D array
        Condition numbers kappa >= 1: one dataset each from :func:`fastgd.gaussian_data`
        (``n`` samples, ``d`` inputs, eigenvalues geometrically spaced between 1/kappa
        and 1, so that lambda_max = 1 and lr reads as lr * lambda_max; ``fix="lambda_min"``
        fixes lambda_min = 1 instead), drawn with ``data_seed``.
    n, d, fix, data_seed
        The generated datasets of ``condition`` (default 100 samples, d = 2,
        lambda_max = 1, seed 0).
    bias, w0
        As in :func:`fastgd.gd`.

    **Grid** -- the axes of the result:

    lr : float or 1-D array
        Learning rates (finite, > 0), in ``lr_unit``.
    lr_unit : {"absolute", "eta_max"}
        ``"eta_max"``: ``lr`` holds multiples of each dataset's batch-GD limit
        eta_max = 2/lambda_max (with ``bias``, of the augmented H), so that one grid
        serves datasets of any scale (raw and standardised copies alike); dataset k
        runs the rates ``lr * 2/lambda_max[k]`` (``result.absolute_lr[k]``), and a cell
        equals a sweep of that dataset alone at those absolute rates, bit for bit.
        The result keeps the relative grid in ``lr`` and ``lr_unit="eta_max"``.
    seeds : int or sequence of int
        SGD only: a count n (seeds 0..n-1) or a list of seeds for the sample order.

    **Method** -- the update:

    batch_size, order, momentum, nesterov
        As in :func:`fastgd.sgd` / :func:`fastgd.gd`.
    optimizer : {"gd", "adam", "rmsprop", "adagrad"}
        "gd" (default): the kernels above.  An adaptive optimizer (batch only,
        ``method="gd"``, absolute rates, local threads, float64) runs
        :func:`fastgd.linear.adaptive.adaptive_sweep` with ``betas``, ``eps``,
        ``warmup``, ``lr_init``, ``schedule``, ``decay_steps``, ``decay_factor``,
        ``freeze_preconditioner`` and ``pre_freeze_lr`` (documented there; PyTorch's /
        optax's convention).
    exact : bool
        Per-sample SGD at d > 8: ``False`` (default) takes blocks of four samples per pass
        over the weights (the same steps in exact arithmetic; rounding differs by about
        1e-15 relative, and faster); ``True`` runs every sample on its own, the
        arithmetic of :func:`fastgd.sgd` with ``exact=True`` (and of scikit-learn's
        ``SGDRegressor`` without FMA contraction).  d <= 8 is always exact.
    dtype : {"float64", "float32"}
        Arithmetic of the runs.  ``"float32"`` converts the data once and runs float32
        twins of the same kernels (about twice the SIMD lanes per register); results
        are still returned as float64 arrays.  Divergence flags stay exact (no
        fastmath); boundaries agree with float64 to within one grid step on fine grids
        (relative 1e-5 for a rate found by bisection), losses to float32 precision.

    **Budget and status** -- when a run stops and what it is called:

    steps, epochs : int
        Budget (GD: steps; SGD: epochs; default 1000 steps / 100 epochs).
    tol, blowup
        As in :func:`fastgd.gd`.
    almost_sure : bool
        SGD: also estimate the almost-sure (typical-run) limit of every dataset by
        simulation (:func:`fastgd.theory.sgd_as_critical_lr`).  The mean-square limit
        is reported for the random orders (closed form); for ``order="cyclic"`` the
        exact (deterministic) limit only with ``almost_sure``.

    **Execution** -- where and how the chunks run (results do not depend on it):

    lanes : int, optional
        Learning rates per chunk (SIMD lanes sharing one dataset).  Default (None):
        256 for SGD, 64 for GD, halved, down to 32 (narrower chunks are slower per
        update), while the grid would make fewer than 16 chunks, so that threads have
        work (:func:`auto_lanes`).
    threads : int, optional
        Worker threads for this call (chunk k runs on worker k mod threads; at most
        ``NUMBA_NUM_THREADS``; default: ``numba.get_num_threads()``).
    progress : bool, optional
        Progress bar (tqdm) between chunks; default: on for a terminal when the sweep
        looks longer than a second.
    max_bytes : int, optional
        Memory limit for the outputs (default: half of physical memory).
    backend : {"cpu", "cuda"}
        ``"cuda"`` runs one run per CUDA thread on an NVIDIA GPU (optional extra
        ``fastgd[cuda]``, numba-cuda; :mod:`fastgd.linear.gpu`); the simulator
        (``NUMBA_ENABLE_CUDASIM=1``) works without a GPU.  Not with ``engine``.
    engine : concurrent.futures.Executor, optional
        Run the chunks on an executor instead of this process's Numba threads: a
        ``ProcessPoolExecutor`` (use the "spawn" or "forkserver" context), a
        ``ThreadPoolExecutor``, or a Dask cluster through
        ``distributed.Client("tcp://scheduler:8786").get_executor()`` (extra
        ``fastgd[dask]``).  ``threads`` is then the Numba thread count of each task
        (default 1).  Call :func:`fastgd.warmup` first so that workers load compiled
        kernels from the cache instead of compiling them.  Results are bit-identical
        to the local engine.  Give the sweep 4-10 times more chunks than workers
        (lower ``lanes`` for more chunks): diverging chunks finish early.
    checkpoint : str or os.PathLike, optional
        A directory that makes the sweep resumable (:mod:`fastgd.engine.checkpoint`):
        finished chunks are written there as they complete (atomic renames), and the
        same call run again computes only the missing chunks and returns a result
        bit-identical to an uninterrupted run (``meta["chunks_resumed"]``,
        ``meta["chunks_computed"]`` count them).  A directory holding a different
        sweep is refused.  While the sweep runs (main thread), SIGTERM is turned into
        the same clean stop as Ctrl-C.

    **Output** -- what the result keeps besides statuses and final losses:

    curve_points : int
        Keep the loss curve at about this many evenly spaced steps / epochs (0: none).
    weights : bool
        Keep the final weights of every cell (``result.weights``).

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepInterrupted
        On Ctrl-C, between chunks; ``.result`` holds the finished cells.  A Ctrl-C
        during the SGD theory stage (``almost_sure=True`` simulates each dataset),
        after every cell ran, carries the complete sweep: ``sgd_ms_limit`` and
        ``sgd_as_limit`` are NaN for the datasets not reached and
        ``meta["theory_interrupted"]`` is True.

    Examples
    --------
    >>> import fastgd as fg
    >>> res = fg.sweep("gd", lr=[1.0, 1.9, 2.1], condition=[1, 10, 100], steps=2000)
    >>> res.status.shape
    (3, 3, 1)
    >>> bool(res.diverged[:, 2].all()), bool(res.diverged[:, :2].any())
    (True, False)
    """
    args = dict(locals())
    f = "sweep"
    V.choice(f, "method", method, ("gd", "sgd"))
    if V.choice(f, "optimizer", optimizer, _OPTIMIZERS) != "gd":
        return _adaptive(f, args)
    _plain_gd_only(f, warmup, schedule, freeze_preconditioner)
    lrs = V.rates(f, "lr", lr)
    V.choice(f, "lr_unit", lr_unit, LR_UNITS)
    g = _grid(f, lrs, args)  # everything checked, before any work
    job = _job(g)
    out = G.Outputs(g.n_data, g.n_seed, g.n_lr, g.d, n_rec=g.n_rec, keep_w=g.weights)
    chunks = G.make_chunks(g.n_data, g.n_seed, g.n_lr, g.lanes)
    if g.backend == "cuda":
        from fastgd.linear import gpu

        gpu.require(f)
    i = job.inputs  # float64 SGD inputs hold the stacked datasets the checks read
    checks = CK.Checks(g.probs, g.w0, stack=(i.X, i.y, i.P, i.wstar)
                       if i.X is not None and i.X.dtype == np.float64 else None)
    # a cold chunk kernel: said now, and the check's kernel compiles in a helper process
    # meanwhile; its initial losses then wait for the first block.  Otherwise they come
    # now: computed after the first block, this heap's next sweeps allocated their
    # set-up in fresh pages (glibc's mmap threshold; d = 100, 32 datasets, 0 epochs,
    # 12.5-14 -> 16-19 ms).  A checkpointed sweep says it when a block runs (it may
    # resume every block from disk and compile nothing).
    from fastgd.linear import executors as E

    if engine is not None or g.backend != "cpu" or checkpoint is not None or not E.announce(
            job.spec, G.max_threads() if threads is None else threads):
        checks.initial()
    interrupted, counts, nthreads = _run(f, g, job, out, chunks, engine, threads,
                                         checkpoint, checks)
    CK.fill_records(out)
    res = _assemble(method, lrs, g.seed_list, g.probs, out, g.rec_every, g.n_rec,
                    g.momentum, g.nesterov, _spec_meta(g, args), nthreads, g.w0, checks)
    res = dataclasses.replace(res, names=g.names, lr_unit=lr_unit)
    if lr_unit == "eta_max":
        res.meta["spec"]["lr_unit"] = lr_unit
    res.meta.update(counts)
    res.meta["engine"] = "local" if engine is None else type(engine).__name__
    if method == "sgd":
        try:
            DS._sgd_limits(res, g.datasets, g.bias, g.batch_size, g.order, g.momentum,
                           g.nesterov, g.almost_sure, threads, g.probs)
        except KeyboardInterrupt:  # Ctrl-C in the theory stage: keep the finished sweep
            res.meta["theory_interrupted"] = True
            raise SweepInterrupted(res) from None
    if interrupted is not None:
        raise SweepInterrupted(res)
    return res


#: ``sweep(optimizer=)``: the plain kernels, or the adaptive lanes of linear.adaptive
_OPTIMIZERS = ("gd", "adam", "rmsprop", "adagrad")
#: the adaptive sweep's own arguments, passed through from :func:`sweep`
_ADAPTIVE_ARGS = ("lr", "data", "condition", "optimizer", "betas", "eps", "warmup", "lr_init",
                  "schedule", "decay_steps", "decay_factor", "freeze_preconditioner",
                  "pre_freeze_lr", "w0", "bias", "tol", "blowup", "n", "d", "fix", "data_seed",
                  "curve_points", "lanes", "threads", "weights")


def _adaptive(f, args):
    """``sweep(optimizer=...)`` for an adaptive optimizer: what it does not support is
    refused by name, the rest handed to :func:`fastgd.linear.adaptive.sweep_adaptive`."""
    from fastgd.linear.adaptive import sweep_adaptive

    unsupported = [("method", args["method"] != "gd", "'gd' (batch)"),
                   ("lr_unit", args["lr_unit"] != "absolute", "'absolute'"),
                   ("momentum", V.real(f, "momentum", args["momentum"]) != 0
                    or bool(args["nesterov"]), "0 (Adam's momentum is betas[0])"),
                   ("engine", args["engine"] is not None, "None"),
                   ("checkpoint", args["checkpoint"] is not None, "None"),
                   ("backend", args["backend"] != "cpu", "'cpu'"),
                   ("dtype", args["dtype"] != "float64", "'float64'"),
                   ("almost_sure", bool(args["almost_sure"]), "False")]
    for name, bad, want in unsupported:
        if bad:
            raise V.fail(f, name, f"{want} with an adaptive optimizer", args[name])
    kw = {k: args[k] for k in _ADAPTIVE_ARGS}
    kw["steps"] = 1000 if args["steps"] is None else args["steps"]
    return sweep_adaptive(f, kw)


@dataclass(frozen=True, eq=False)
class _Grid:
    """A sweep's arguments, checked and completed (:func:`_grid`)."""

    method: str
    lrs: np.ndarray
    rates: np.ndarray  # what the kernels run: lrs, or (n_data, n_lr) for lr_unit="eta_max"
    datasets: list
    kappa: np.ndarray | None
    names: tuple
    bias: bool
    probs: list
    w0: np.ndarray
    momentum: float
    nesterov: bool
    tol: float
    blowup: float
    T: int
    seed_list: np.ndarray
    batch_size: int | None
    order: str | None
    order_code: int
    lanes: int
    curve_points: int
    rec_every: int
    n_rec: int
    weights: bool
    dtype: str
    exact: bool
    backend: str
    progress: bool | None
    almost_sure: bool

    @property
    def n_data(self):
        return len(self.probs)

    @property
    def n_seed(self):
        return self.seed_list.size

    @property
    def n_lr(self):
        return self.lrs.size

    @property
    def d(self):
        return self.probs[0].d


def _grid(f, lrs, a):
    """Every check of :func:`sweep`'s arguments ``a`` that needs no kernel, in the order
    that decides which error a call with several bad arguments gets."""
    method = a["method"]
    data, _ = DS._named(f, a["data"]) if a["data"] is not None else (None, None)
    progress = V.boolean(f, "progress", a["progress"], allow_none=True)
    almost_sure = V.boolean(f, "almost_sure", a["almost_sure"])
    max_bytes = a["max_bytes"]
    if max_bytes is not None:
        max_bytes = V.real(f, "max_bytes", max_bytes, positive=True, finite=False)
    if a["engine"] is None:
        V.threads(f, a["threads"])
    elif a["threads"] is not None:
        V.integer(f, "threads", a["threads"], minimum=1, maximum=4096)
    _cost.sweep_grid(f, method, lrs.size, data, a["condition"], a["steps"], a["epochs"],
                     a["seeds"], a["n"], a["d"], a["curve_points"], max_bytes, a["weights"])
    datasets, kappa, names = DS._datasets(f, a["data"], a["condition"], a["n"], a["d"],
                                          a["fix"], a["data_seed"])
    bias = V.boolean(f, "bias", a["bias"])
    probs = PB.prepare_many(f, datasets, bias, _lapack_threads(a["threads"]))
    rates = lrs if a["lr_unit"] == "absolute" else _relative_rates(f, lrs, probs)
    w0 = PB.initial_weights(f, a["w0"], probs[0], datasets[0][0].shape[1])
    momentum = V.momentum(f, a["momentum"])
    nesterov = V.boolean(f, "nesterov", a["nesterov"])
    tol = V.real(f, "tol", a["tol"], nonneg=True)
    blowup = V.blowup(f, a["blowup"])
    lanes = a["lanes"]
    if lanes is not None:
        lanes = V.integer(f, "lanes", lanes, minimum=1, maximum=4096)
    curve_points = V.integer(f, "curve_points", a["curve_points"], minimum=0)
    T, seed_list, batch_size, order_code = _budget(f, a, probs)
    if lanes is None:
        lanes = auto_lanes(method, len(probs), seed_list.size, lrs.size)
    rec_every, n_rec = 1, 0
    if curve_points > 0:
        rec_every = max(1, T // max(curve_points - 1, 1))
        n_rec = T // rec_every + 1
    weights = V.boolean(f, "weights", a["weights"])
    G.check_memory(f, len(probs) * lrs.size * seed_list.size,
                   G.Outputs.bytes_per_cell(probs[0].d, n_rec, keep_w=weights), max_bytes)
    dtype, exact, backend = _execution(f, a)
    return _Grid(method=method, lrs=lrs, rates=rates, datasets=datasets, kappa=kappa,
                 names=names, bias=bias, probs=probs, w0=w0, momentum=momentum, nesterov=nesterov,
                 tol=tol, blowup=blowup, T=T, seed_list=seed_list, batch_size=batch_size,
                 order=a["order"] if method == "sgd" else None, order_code=order_code,
                 lanes=lanes, curve_points=curve_points, rec_every=rec_every, n_rec=n_rec,
                 weights=weights, dtype=dtype, exact=exact, backend=backend,
                 progress=progress, almost_sure=almost_sure)


def _lapack_threads(threads):
    """Threads for the datasets' SVDs and least squares (:func:`fastgd.linear.problem.
    prepare_many`): the sweep's ``threads`` (validated before) or Numba's count."""
    if isinstance(threads, (int, np.integer)) and not isinstance(threads, bool) \
            and threads >= 1:
        return int(threads)
    import numba

    return numba.get_num_threads()


def _budget(f, a, probs):
    """(T, seeds, batch size, order code): GD -> (steps, [0], None, 0)."""
    if a["method"] == "gd":
        if a["epochs"] is not None:
            raise V.fail(f, "epochs", "None for method='gd' (use steps)", a["epochs"])
        T = V.integer(f, "steps", 1000 if a["steps"] is None else a["steps"], minimum=0)
        return T, np.zeros(1, dtype=np.int64), None, 0
    if a["steps"] is not None:
        raise V.fail(f, "steps", "None for method='sgd' (use epochs)", a["steps"])
    T = V.integer(f, "epochs", 100 if a["epochs"] is None else a["epochs"], minimum=0)
    Pmin = min(p.P for p in probs)
    batch_size = V.integer(f, "batch_size", a["batch_size"], minimum=1, maximum=Pmin)
    order_code = ST.ORDERS[V.choice(f, "order", a["order"], tuple(ST.ORDERS))]
    return T, _seed_list(f, a["seeds"]), batch_size, order_code


def _seed_list(f, seeds):
    """``seeds`` (a count or a list) as an int64 array."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.arange(V.integer(f, "seeds", seeds, minimum=1), dtype=np.int64)
    sl = np.asarray(seeds)
    if sl.ndim != 1 or sl.size == 0 or sl.dtype.kind not in "iu":
        raise V.fail(f, "seeds", "a count >= 1 or a non-empty 1-D list of integers",
                     repr(seeds))
    if np.any(sl < 0):
        raise V.fail(f, "seeds", "non-negative", f"min {sl.min()}")
    if np.any(sl > V.INT_MAX):
        raise V.fail(f, "seeds", f"<= {V.INT_MAX}", f"max {sl.max()}")
    return sl.astype(np.int64)


def _execution(f, a):
    """(dtype, exact, backend), and ``engine`` checked against the backend."""
    dtype = a["dtype"]
    if not isinstance(dtype, str) and dtype is not None:
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            pass
    dtype = V.choice(f, "dtype", dtype, ("float64", "float32"))
    exact = V.boolean(f, "exact", a["exact"])
    backend = V.choice(f, "backend", a["backend"], ("cpu", "cuda"))
    engine = a["engine"]
    if engine is not None:
        import concurrent.futures as cf

        if not isinstance(engine, cf.Executor):
            raise V.fail_type(f, "engine", "a concurrent.futures.Executor (e.g. "
                              "ProcessPoolExecutor, or a Dask client.get_executor())", engine)
        if backend != "cpu":
            raise V.fail(f, "engine", "None with backend='cuda'", type(engine).__name__)
    return dtype, exact, backend


def _job(g):
    """The kernel spec and inputs of a checked grid (picklable: the engines ship it to
    workers; its hash keys a checkpoint directory)."""
    from fastgd.linear.contract import LinearJob, linear_inputs
    from fastgd.linear.table import KernelSpec

    sgd = g.method == "sgd"
    inputs = linear_inputs(g.probs, g.rates, g.momentum, g.w0,
                           seeds=g.seed_list if sgd else None, dtype=g.dtype)
    spec = KernelSpec(g.method, g.d, g.T, g.tol, g.blowup,
                      momentum=bool(np.any(inputs.beta)), nesterov=g.nesterov,
                      batch=g.batch_size if sgd else 1, order=g.order_code,
                      rec_every=g.rec_every, dtype=g.dtype, exact=g.exact)
    return LinearJob(spec, inputs, lanes=g.lanes, n_rec=g.n_rec, backend=g.backend)


def _run(f, g, job, out, chunks, engine, threads, checkpoint, checks):
    """Run the chunk table on the chosen engine / backend, through the checkpoint
    directory when one is given; every block is checked against the truth of its
    weights before it is kept.  Returns (Interrupted or None, counts, threads used)."""
    from fastgd.engine.executors import run_resumable
    from fastgd.linear import executors as E

    interrupted = None
    counts = {"chunks_total": int(chunks.shape[0]), "chunks_resumed": 0,
              "chunks_computed": 0, "seconds_run": 0.0}
    summary = dict(method=g.method, lanes=g.lanes, dtype=g.dtype, backend=g.backend,
                   n_data=g.n_data, n_lr=g.n_lr, n_seed=g.n_seed)
    with G.using_threads(f, None if engine is not None else threads) as nthreads, \
            np.errstate(all="ignore"):
        if engine is not None:
            nthreads = 1 if threads is None else V.integer(f, "threads", threads, minimum=1)

        def finish(block):  # each block checked against the truth of its weights
            CK.finalize_block(g.probs, block, g.w0, g.tol, g.T, nthreads, checks)

        run = E.runner(job, out, nthreads, engine, progress=g.progress,
                       desc=f"sweep {g.method}", finish=finish)
        try:
            run_resumable(run, chunks, scatter=lambda blk: E.scatter(out, blk),
                          finish=finish, counts=counts, checkpoint=checkpoint, job=job,
                          summary=summary, func=f)
        except G.Interrupted as exc:
            interrupted = exc
    return interrupted, counts, nthreads


def _spec_meta(g, a):
    """The sweep's arguments as the result records them (``meta["spec"]``)."""
    sgd = g.method == "sgd"
    return {"method": g.method, "lr": g.lrs, "steps" if not sgd else "epochs": g.T,
            "batch_size": g.batch_size if sgd else None, "order": g.order,
            "seeds": g.seed_list, "momentum": g.momentum, "nesterov": g.nesterov,
            "bias": g.bias, "w0": g.w0, "tol": g.tol, "blowup": g.blowup,
            "condition": g.kappa, "n": a["n"], "d": a["d"], "fix": a["fix"],
            "data_seed": a["data_seed"], "curve_points": g.curve_points, "lanes": g.lanes,
            "dtype": g.dtype, "backend": g.backend, "exact": g.exact}


def _assemble(method, lrs, seed_list, probs, out, rec_every, n_rec, momentum, nesterov, spec,
              nthreads, w0=None, checks=None):
    if w0 is None:
        w0 = np.zeros(probs[0].d)
    lam_max, lam_min = PB.spectra(probs)  # from the SVD already done: nothing recomputed
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(lam_min > 0, lam_max / np.where(lam_min > 0, lam_min, 1), np.inf)
        gd_lim = 2.0 / lam_max
    mom_lim = (momentum_limit(lam_max, momentum, nesterov) if momentum > 0 or nesterov
               else np.full(len(probs), np.nan))
    tr = (0, 2, 1)
    curves = curve_t = None
    if n_rec:
        curves = np.ascontiguousarray(out.rec_loss.transpose(0, 2, 1, 3))
        curve_t = np.arange(n_rec) * rec_every
    meta = {"versions": DS._versions(), "threads": int(nthreads), "spec": spec}
    return SweepResult(
        method=method, unit="step" if method == "gd" else "epoch", lr=lrs, seeds=seed_list,
        lambda_max=lam_max, lambda_min=lam_min, condition=cond,
        status=np.ascontiguousarray(out.status.transpose(tr)),
        final_loss=np.ascontiguousarray(out.excess.transpose(tr)),
        steps_to_tol=np.ascontiguousarray(out.tol_at.transpose(tr)),
        diverged_at=np.ascontiguousarray(out.div_at.transpose(tr)),
        gd_limit=gd_lim, momentum_limit=mom_lim,
        sgd_ms_limit=np.full(len(probs), np.nan), sgd_as_limit=np.full(len(probs), np.nan),
        curves=curves, curve_t=curve_t, meta=meta,
        growing=np.ascontiguousarray(CK.growing(probs, out, w0, checks).transpose(tr)),
        weights=(None if out.w is None
                 else np.ascontiguousarray(out.w.transpose(0, 2, 1, 3))))
