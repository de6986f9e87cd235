"""Sweeps: grids of learning rate x dataset (conditioning) x seed, run in parallel on
Numba threads, and the divergence boundary.

Each dataset's learning rates are split into chunks of ``lanes`` consecutive rates that
run as SIMD lanes sharing the dataset (and, for SGD, the sample order of the seed:
common random numbers across the learning-rate axis).  Chunks are interleaved over
threads and executed in batches, so a progress bar advances and Ctrl-C stops cleanly
between batches (:class:`SweepInterrupted` carries what finished).  Results are
bit-identical for any thread count, lane count or batch size, and for any engine
(``engine=``: a ``concurrent.futures.Executor``, e.g. Dask's ``client.get_executor()``;
see :mod:`fastgd.linear.executors`).  ``checkpoint=DIR`` makes a sweep resumable
(:mod:`fastgd.checkpoint`); ``dtype="float32"`` and ``backend="cuda"`` (:mod:`fastgd.gpu`)
trade precision or hardware for speed.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P, batch GD diverges
above 2/lambda_max.
"""

from __future__ import annotations

import dataclasses
import math
import platform
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.linear import problem as PB
from fastgd.linear.result import SweepInterrupted, SweepResult, default_names, load  # noqa: F401

LR_UNITS = ("absolute", "eta_max")


def momentum_limit(lam_max, beta, nesterov=False):
    """Largest stable batch-GD rate with momentum beta (PyTorch form) for each lam_max:
    heavy ball 2(1 + beta)/lam, Nesterov (2 + 2 beta)/((1 + 2 beta) lam)
    (:func:`fastgd.theory.momentum_lr_max`)."""
    from fastgd.theory import momentum_lr_max

    return np.array([momentum_lr_max(float(l), beta, nesterov) for l in np.atleast_1d(lam_max)])


def _named(f, data):
    """``data`` as given -> (list of (X, y) or the original object, names or None):
    a dict maps names to (X, y) pairs."""
    if isinstance(data, dict):
        if not data:
            raise V.fail(f, "data", "a non-empty dict of name -> (X, y)", "an empty dict")
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            raise V.fail_type(f, "data", "a dict with str keys (dataset names)", bad[0])
        return list(data.values()), tuple(data)
    return data, None


def _datasets(f, data, condition, n, d, fix, data_seed):
    """-> (list of (X, y), condition grid or None, names)."""
    if (data is None) == (condition is None):
        raise V.fail(f, "data", "given, or 'condition' given (exactly one of them)",
                     "both" if data is not None else "neither")
    if data is not None:
        data, names = _named(f, data)
        if V.single_pair(data):
            data = [data]
        try:
            items = list(data)
        except TypeError as exc:
            raise V.fail_type(f, "data", "a list of (X, y) pairs", data) from exc
        if not items:
            raise V.fail(f, "data", "a non-empty list of (X, y) pairs", "an empty list")
        out = []
        for k, item in enumerate(items):
            try:
                X, y = item
            except (TypeError, ValueError) as exc:
                raise V.fail_type(f, f"data[{k}]", "an (X, y) pair", item) from exc
            out.append(V.data(f, X, y, xname=f"data[{k}][0]", yname=f"data[{k}][1]"))
        ds = {x.shape[1] for x, _ in out}
        if len(ds) > 1:
            raise V.fail(f, "data", "datasets with the same number of inputs d",
                         f"d in {sorted(ds)}")
        return out, None, names or default_names(len(out))
    from fastgd.data import _gaussian_family

    kappa = V.as_float_array(f, "condition", np.atleast_1d(condition), 1)
    if np.any(kappa < 1):
        raise V.fail(f, "condition", "condition numbers >= 1", f"min {kappa.min():g}")
    d = V.integer(f, "d", d, minimum=1)
    if d == 1 and np.any(kappa != 1):
        raise V.fail(f, "d", ">= 2 when a condition number > 1 is asked for", d)
    n = V.integer(f, "n", n, minimum=d + 1)
    V.choice(f, "fix", fix, ("lambda_max", "lambda_min"))
    # eigenvalues geometrically spaced from 1/kappa to 1 (one row per kappa), all at once
    frac = np.linspace(-1.0, 0.0, d) if d > 1 else np.zeros(1)
    rows = np.exp(np.log(kappa)[:, None] * frac[None, :])
    if d > 1:
        rows[:, 0], rows[:, -1] = 1.0 / kappa, 1.0
    if fix == "lambda_min":
        rows = rows * kappa[:, None]
    data_seed = V.integer(f, "data_seed", data_seed, minimum=0)
    # the same as gaussian_data(n, row, seed=data_seed) for each row, drawn once
    family = _gaussian_family(n, rows, seed=data_seed, describe=False)
    return [(ds.X, ds.y) for ds in family], kappa, default_names(kappa.size, kappa)


def _sweep_relative(f, rel, args):
    """``sweep(lr_unit="eta_max")``: each dataset runs its own absolute grid
    ``rel * 2/lambda_max`` as a sweep of that dataset alone (the kernels share one grid
    per call); the parts are stacked into one result whose ``lr`` is ``rel``."""
    import os

    method = args["method"]
    if args["max_bytes"] is not None:
        V.real(f, "max_bytes", args["max_bytes"], positive=True, finite=False)
    data, _ = _named(f, args["data"]) if args["data"] is not None else (None, None)
    _cost.sweep_grid(f, method, rel.size, data, args["condition"], args["steps"],
                     args["epochs"], args["seeds"], args["n"], args["d"],
                     args["curve_points"], args["max_bytes"])
    datasets, kappa, names = _datasets(f, args["data"], args["condition"], args["n"],
                                       args["d"], args["fix"], args["data_seed"])
    bias = V.boolean(f, "bias", args["bias"])
    probs = PB.prepare_many(f, datasets, bias)
    # lambda_max exactly as the part's own result computes it (_assemble), so that
    # absolute_lr = lr * gd_limit reproduces the rates run bit for bit
    lam = [np.linalg.eigvalsh(np.stack([p.H]))[0] for p in probs]
    lam_max = np.array([max(v[-1], 0.0) for v in lam])
    lam_min = np.array([max(v[0], 0.0) for v in lam])
    if np.any(lam_max <= 0):
        raise V.fail(f, "lr_unit", "'absolute' for data with H = 0 (no eta_max)",
                     f"'eta_max' with lambda_max = 0 for dataset {int(np.argmin(lam_max))}")
    eta_max = 2.0 / lam_max
    momentum = V.momentum(f, args["momentum"])
    nesterov = V.boolean(f, "nesterov", args["nesterov"])
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(lam_min > 0, lam_max / np.where(lam_min > 0, lam_min, 1), np.inf)
    spectra = {"lambda_max": lam_max, "lambda_min": lam_min, "condition": cond,
               "gd_limit": eta_max,
               "momentum_limit": (momentum_limit(lam_max, momentum, nesterov)
                                  if momentum > 0 or nesterov else np.full(len(probs), np.nan))}
    parts, interrupted = [], False
    for k, (X, y) in enumerate(datasets):
        sub = dict(args, lr=rel * eta_max[k], lr_unit="absolute", data=[(X, y)],
                   condition=None)
        if args["checkpoint"] is not None:
            sub["checkpoint"] = os.path.join(os.fspath(args["checkpoint"]), f"data{k}")
        try:
            parts.append(sweep(**sub))
        except SweepInterrupted as exc:
            parts.append(exc.result)
            interrupted = True
            break
    res = _stack(parts, len(datasets), rel, names, kappa, spectra)
    if interrupted or any("theory_interrupted" in p.meta for p in parts):
        raise SweepInterrupted(res)
    return res


def _stack(parts, n_data, rel, names, kappa, spectra):
    """One result of n_data datasets from single-dataset parts (a relative grid); the
    datasets no part reached (an interrupted sweep) are NOT_RUN, with their spectra
    (``spectra``: per-dataset arrays, the same values the parts computed)."""
    first = parts[0]
    kw = {}
    for fld in dataclasses.fields(SweepResult):
        v = getattr(first, fld.name)
        if not isinstance(v, np.ndarray) or fld.name in ("lr", "seeds", "curve_t"):
            kw[fld.name] = v
            continue
        if v.dtype.kind == "b":
            fill = False
        elif v.dtype.kind in "iu":
            fill = -1  # Status.NOT_RUN, and "never" for the step counts
        elif fld.name in ("final_loss", "curves"):
            fill = np.inf
        else:
            fill = np.nan
        out = np.full((n_data,) + v.shape[1:], fill, dtype=v.dtype)
        for k, p in enumerate(parts):
            out[k] = getattr(p, fld.name)[0]
        kw[fld.name] = out
    kw.update(spectra)
    meta = dict(first.meta)
    spec = dict(meta.get("spec", {}))
    spec.update(lr=rel, lr_unit="eta_max", condition=kappa)
    meta["spec"] = spec
    for key in ("chunks_total", "chunks_resumed", "chunks_computed", "seconds_run"):
        if all(key in p.meta for p in parts):
            meta[key] = sum(p.meta[key] for p in parts)
    kw.update(lr=rel, meta=meta, names=names, lr_unit="eta_max")
    return SweepResult(**kw)


#: fewest lanes :func:`auto_lanes` picks: narrower chunks run the kernels 1.3-2x slower
#: per update (8 lanes against 32-128 on one dataset x 128 rates, d = 2 and 32, GD and SGD)
MIN_LANES = 32


def auto_lanes(method, n_data, n_seed, n_lr, *, min_chunks=16):
    """The default ``lanes`` of :func:`sweep` (see there): a function of the grid only,
    so that a checkpointed sweep resumes with the same chunk table on any machine."""
    lanes = 256 if method == "sgd" else 64
    while lanes > MIN_LANES and n_data * n_seed * -(-n_lr // lanes) < min_chunks:
        lanes //= 2
    return lanes


def sweep(method="gd", *, lr, lr_unit="absolute", data=None, condition=None, steps=None, epochs=None, batch_size=1,
          order=ST.DEFAULT_ORDER, seeds=1, momentum=0.0, nesterov=False, bias=False, w0=None,
          tol=ST.DEFAULT_TOL, blowup=1e12, n=100, d=2, fix="lambda_max", data_seed=0,
          curve_points=0, lanes=None, threads=None, progress=None, max_bytes=None,
          almost_sure=False, dtype="float64", backend="cpu", engine=None, checkpoint=None,
          weights=False, exact=False) -> SweepResult:
    """Run a grid of learning rates x datasets (x seeds for SGD) and classify each run.

    Parameters
    ----------
    method : {"gd", "sgd"}
        Batch gradient descent (``steps`` steps) or stochastic (``epochs`` epochs).
    lr : float or 1-D array
        Learning rates (finite, > 0), in ``lr_unit``.
    lr_unit : {"absolute", "eta_max"}
        ``"eta_max"``: ``lr`` holds multiples of each dataset's batch-GD limit
        eta_max = 2/lambda_max (with ``bias``, of the augmented H), so that one grid
        serves datasets of any scale (raw and standardised copies alike); dataset k
        runs the rates ``lr * 2/lambda_max[k]`` (``result.absolute_lr[k]``), and a cell
        equals a sweep of that dataset alone at those absolute rates, bit for bit.
        The result keeps the relative grid in ``lr`` and ``lr_unit="eta_max"``.
    data : list of (X, y), or dict name -> (X, y)
        Datasets with the same number of inputs d (P may differ); a dict names them
        (``result.names``; default ``"data 0"``, ...).  Or:
    condition : float or 1-D array
        Condition numbers kappa >= 1: one dataset each from :func:`fastgd.gaussian_data`
        (``n`` samples, ``d`` inputs, eigenvalues geometrically spaced between 1/kappa
        and 1, so that lambda_max = 1 and lr reads as lr * lambda_max; ``fix="lambda_min"``
        fixes lambda_min = 1 instead), drawn with ``data_seed``.
    steps, epochs : int
        Budget (GD: steps; SGD: epochs; default 1000 steps / 100 epochs).
    batch_size, order, momentum, nesterov, bias, w0, tol, blowup
        As in :func:`fastgd.gd` / :func:`fastgd.sgd`.
    seeds : int or sequence of int
        SGD only: a count n (seeds 0..n-1) or a list of seeds for the sample order.
    curve_points : int
        Keep the loss curve at about this many evenly spaced steps / epochs (0: none).
    exact : bool
        Per-sample SGD at d > 8: ``False`` (default) takes blocks of four samples per pass
        over the weights (the same steps in exact arithmetic; rounding differs by about
        1e-15 relative, about 2x faster at d = 10-30); ``True`` runs every sample on its
        own, the arithmetic of :func:`fastgd.sgd` with ``exact=True`` (and of
        scikit-learn's ``SGDRegressor`` without FMA contraction).  d <= 8 is always exact.
    lanes : int, optional
        Learning rates per chunk (SIMD lanes sharing one dataset).  Results do not
        depend on it.  Default (None): 256 for SGD, 64 for GD, halved, down to 32
        (narrower chunks are slower per update), while the grid would make fewer than
        16 chunks, so that threads have work.  Measured
        on the bench grid (64 kappa x 256 lr, d = 2, 1 thread): SGD 2.6 (64 lanes) ->
        3.0 G updates/s (256); GD about flat from 32 to 256 lanes (0.95-1.03 G useful
        steps/s; 64 leaves more chunks for threads).
    threads : int, optional
        Worker threads for this call (chunk k runs on worker k mod threads; at most
        ``NUMBA_NUM_THREADS``; default: ``numba.get_num_threads()``).
    progress : bool, optional
        Progress bar (tqdm) between chunks; default: on for a terminal when > 1 s.
    max_bytes : int, optional
        Memory limit for the outputs (default: half of physical memory).
    almost_sure : bool
        SGD: also estimate the almost-sure (typical-run) limit of every dataset by
        simulation (:func:`fastgd.theory.sgd_as_critical_lr`; seconds per dataset).
        The mean-square limit is reported for the random orders (closed form); for
        ``order="cyclic"`` the exact (deterministic) limit only with ``almost_sure``.
    dtype : {"float64", "float32"}
        Arithmetic of the runs.  ``"float32"`` converts the data once and runs float32
        twins of the same kernels (about twice the SIMD lanes per register); results
        are still returned as float64 arrays.  Divergence flags stay exact (no
        fastmath); boundaries agree with float64 to within one grid step on fine grids
        (relative 1e-5 for a rate found by bisection), losses to float32 precision.
    backend : {"cpu", "cuda"}
        ``"cuda"`` runs one run per CUDA thread on an NVIDIA GPU (optional extra
        ``fastgd[cuda]``, numba-cuda; :mod:`fastgd.gpu`); the simulator
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
        A directory that makes the sweep resumable (:mod:`fastgd.checkpoint`): finished
        chunks are written there as they complete (atomic renames), and the same call
        run again computes only the missing chunks and returns a result bit-identical
        to an uninterrupted run (``meta["chunks_resumed"]``, ``meta["chunks_computed"]``
        count them).  A directory holding a different sweep is refused.  While the
        sweep runs (main thread), SIGTERM is turned into the same clean stop as Ctrl-C.

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepInterrupted
        On Ctrl-C, between chunks; ``.result`` holds the finished cells.  A Ctrl-C
        during the SGD theory stage (``almost_sure=True`` can take seconds per dataset),
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
    lrs = V.rates(f, "lr", lr)
    if V.choice(f, "lr_unit", lr_unit, LR_UNITS) == "eta_max":
        return _sweep_relative(f, lrs, args)
    data, _ = _named(f, data) if data is not None else (None, None)
    # everything that can be checked from the arguments alone, before any work
    progress = V.boolean(f, "progress", progress, allow_none=True)
    almost_sure = V.boolean(f, "almost_sure", almost_sure)
    if max_bytes is not None:
        max_bytes = V.real(f, "max_bytes", max_bytes, positive=True, finite=False)
    if engine is None:
        V.threads(f, threads)
    elif threads is not None:
        V.integer(f, "threads", threads, minimum=1, maximum=4096)
    _cost.sweep_grid(f, method, lrs.size, data, condition, steps, epochs, seeds, n, d,
                     curve_points, max_bytes, weights)
    datasets, kappa_given, names = _datasets(f, args["data"], condition, n, d, fix, data_seed)
    bias = V.boolean(f, "bias", bias)
    probs = PB.prepare_many(f, datasets, bias)
    d_in = datasets[0][0].shape[1]
    w0v = PB.initial_weights(f, w0, probs[0], d_in)
    momentum = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    if lanes is not None:
        lanes = V.integer(f, "lanes", lanes, minimum=1, maximum=4096)
    curve_points = V.integer(f, "curve_points", curve_points, minimum=0)
    if method == "gd":
        if epochs is not None:
            raise V.fail(f, "epochs", "None for method='gd' (use steps)", epochs)
        T = V.integer(f, "steps", 1000 if steps is None else steps, minimum=0)
        seed_list = np.zeros(1, dtype=np.int64)
    else:
        if steps is not None:
            raise V.fail(f, "steps", "None for method='sgd' (use epochs)", steps)
        T = V.integer(f, "epochs", 100 if epochs is None else epochs, minimum=0)
        Pmin = min(p.P for p in probs)
        batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=Pmin)
        order_code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            seed_list = np.arange(V.integer(f, "seeds", seeds, minimum=1), dtype=np.int64)
        else:
            sl = np.asarray(seeds)
            if sl.ndim != 1 or sl.size == 0 or sl.dtype.kind not in "iu":
                raise V.fail(f, "seeds", "a count >= 1 or a non-empty 1-D list of integers",
                             repr(seeds))
            if np.any(sl < 0):
                raise V.fail(f, "seeds", "non-negative", f"min {sl.min()}")
            if np.any(sl > V.INT_MAX):
                raise V.fail(f, "seeds", f"<= {V.INT_MAX}", f"max {sl.max()}")
            seed_list = sl.astype(np.int64)
    n_data, n_lr, n_seed = len(probs), lrs.size, seed_list.size
    if lanes is None:
        lanes = auto_lanes(method, n_data, n_seed, n_lr)
    rec_every, n_rec = 1, 0
    if curve_points > 0:
        rec_every = max(1, T // max(curve_points - 1, 1))
        n_rec = T // rec_every + 1
    weights = V.boolean(f, "weights", weights)
    G.check_memory(f, n_data * n_lr * n_seed,
                   G.Outputs.bytes_per_cell(probs[0].d, n_rec, keep_w=weights), max_bytes)

    if not isinstance(dtype, str) and dtype is not None:
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            pass
    dtype = V.choice(f, "dtype", dtype, ("float64", "float32"))
    exact = V.boolean(f, "exact", exact)
    backend = V.choice(f, "backend", backend, ("cpu", "cuda"))
    if engine is not None:
        import concurrent.futures as cf

        if not isinstance(engine, cf.Executor):
            raise V.fail_type(f, "engine", "a concurrent.futures.Executor (e.g. "
                              "ProcessPoolExecutor, or a Dask client.get_executor())", engine)
        if backend != "cpu":
            raise V.fail(f, "engine", "None with backend='cuda'", type(engine).__name__)
    kspec = _kernel_spec(method, probs, lrs, momentum, nesterov, w0v, T, tol, blowup,
                         rec_every, n_rec, dtype, backend, lanes,
                         batch_size if method == "sgd" else 0,
                         order_code if method == "sgd" else 0, seed_list, exact)
    out = G.Outputs(n_data, n_seed, n_lr, probs[0].d, n_rec=n_rec, keep_w=weights)
    chunks = G.make_chunks(n_data, n_seed, n_lr, lanes)

    def finish(block):  # each block checked against the truth of its weights, then dropped
        PB.finalize_block(probs, block, w0v, tol, T, nthreads)
    if backend == "cuda":
        from fastgd.linear import gpu

        gpu.require(f)

    interrupted = None
    counts = {"chunks_total": int(chunks.shape[0]), "chunks_resumed": 0,
              "chunks_computed": 0, "seconds_run": 0.0}
    with G.using_threads(f, None if engine is not None else threads) as nthreads, \
            np.errstate(all="ignore"):
        if engine is not None:
            nthreads = 1 if threads is None else V.integer(f, "threads", threads, minimum=1)
        try:
            _execute(f, kspec, chunks, out, nthreads, engine, checkpoint, progress,
                     f"sweep {method}", counts, dict(method=method, lanes=lanes, dtype=dtype,
                                                     backend=backend, n_data=n_data,
                                                     n_lr=n_lr, n_seed=n_seed), finish)
        except G.Interrupted as exc:
            interrupted = exc
    PB.fill_records(out)

    spec = {"method": method, "lr": lrs, "steps" if method == "gd" else "epochs": T,
            "batch_size": batch_size if method == "sgd" else None,
            "order": order if method == "sgd" else None, "seeds": seed_list,
            "momentum": momentum, "nesterov": nesterov, "bias": bias, "w0": w0v, "tol": tol,
            "blowup": blowup, "condition": kappa_given, "n": n, "d": d, "fix": fix,
            "data_seed": data_seed, "curve_points": curve_points, "lanes": lanes,
            "dtype": dtype, "backend": backend, "exact": exact}
    almost_sure = V.boolean(f, "almost_sure", almost_sure)
    res = _assemble(method, lrs, seed_list, probs, out, rec_every, n_rec, momentum, nesterov,
                    spec, nthreads, w0v)
    res = dataclasses.replace(res, names=names)
    res.meta.update(counts)
    res.meta["engine"] = "local" if engine is None else type(engine).__name__
    if method == "sgd":
        try:
            _sgd_limits(res, datasets, bias, batch_size, order, momentum, nesterov,
                        almost_sure, threads)
        except KeyboardInterrupt:  # Ctrl-C in the theory stage: keep the finished sweep
            res.meta["theory_interrupted"] = True
            raise SweepInterrupted(res) from None
    if interrupted is not None:
        raise SweepInterrupted(res)
    return res


def _kernel_spec(method, probs, lrs, momentum, nesterov, w0v, T, tol, blowup, rec_every,
                 n_rec, dtype, backend, lanes, batch, order_code, seed_list, exact=False):
    """Everything the grid kernels need, as NumPy arrays and scalars (picklable: the
    engines ship it to workers; its hash keys a checkpoint directory)."""
    ft = np.float32 if dtype == "float32" else np.float64

    def a(x):
        return np.ascontiguousarray(np.asarray(x, dtype=ft))

    spec = {"method": method, "dtype": dtype, "backend": backend, "lanes": int(lanes),
            "d": int(probs[0].d), "T": int(T), "tol": float(tol), "blowup": float(blowup),
            "nesterov": bool(nesterov), "rec_every": int(rec_every), "n_rec": int(n_rec),
            "exact": bool(exact),
            "R": a(np.stack([p.R for p in probs])), "wstar": a(np.stack([p.wstar for p in probs])),
            "estar": a([p.estar for p in probs]), "c0": a([p.c0 for p in probs]),
            "lr": a(lrs), "beta": a(np.full(lrs.size, momentum)), "w0": a(w0v)}
    if method == "sgd":
        Pmax = max(p.P for p in probs)
        Xs = np.zeros((len(probs), Pmax, probs[0].d))
        ys = np.zeros((len(probs), Pmax))
        for k, p in enumerate(probs):
            Xs[k, : p.P] = p.X
            ys[k, : p.P] = p.y
        from fastgd.linear.table import lam_bounds

        spec.update(X=a(Xs), y=a(ys), P=np.array([p.P for p in probs], dtype=np.int64),
                    bounds=lam_bounds(spec["R"]),
                    batch=int(batch), order=int(order_code),
                    keys=np.ascontiguousarray(np.stack([G.seed_key(s) for s in seed_list])))
    return spec


def _execute(f, kspec, chunks, out, nthreads, engine, checkpoint, progress, desc, counts,
             summary, finish):
    """Run the chunk table on the chosen engine / backend, through a checkpoint
    directory when one is given (resume first, then write blocks as they finish).
    Every block of results passes ``finish`` (in place) before it is kept.
    The directory's lock is released however the run ends."""
    from fastgd.linear import executors as E

    todo = chunks
    if checkpoint is not None:
        from fastgd.engine.checkpoint import Checkpoint

        ck = Checkpoint(checkpoint, kspec, chunks, summary=summary, func=f)
        try:
            done = set()
            for blk in ck.load():
                finish(blk)  # idempotent: blocks are written checked
                E.scatter(out, blk)
                done.update(map(tuple, blk["rows"].tolist()))
            if done:
                keep = np.array([tuple(r) not in done for r in chunks.tolist()], dtype=bool)
                todo = np.ascontiguousarray(chunks[keep])
            counts["chunks_resumed"] = int(chunks.shape[0] - todo.shape[0])
            if todo.shape[0]:
                _run_chunks(kspec, todo, out, nthreads, engine, ck, progress, desc, counts,
                            finish)
        finally:
            ck.close()  # releases the directory lock
    elif todo.shape[0]:
        _run_chunks(kspec, todo, out, nthreads, engine, None, progress, desc, counts, finish)


def _run_chunks(kspec, todo, out, nthreads, engine, ck, progress, desc, counts, finish):
    """Run ``todo`` into ``out``, writing finished blocks to the checkpoint ``ck``."""
    import time

    from fastgd.linear import executors as E

    buf = []
    # the first finished batch is written at once, later ones about once a second
    state = {"flushed": -math.inf}

    def flush():
        if buf:
            ck.write(E.concat(buf))
            buf.clear()  # after the write: a write cut by Ctrl-C is retried at the end
        state["flushed"] = time.perf_counter()

    def on_done(block):  # local engines: a finished, checked block (scattered into `out`)
        counts["chunks_computed"] += int(block["rows"].shape[0])
        if ck is not None:
            buf.append(block)
            if time.perf_counter() - state["flushed"] >= 1.0:
                flush()

    def on_result(res):  # executor: one file per finished task
        counts["chunks_computed"] += int(res["rows"].shape[0])
        if ck is not None:
            ck.write(res)

    t0 = time.perf_counter()
    with _sigterm_as_interrupt(ck is not None):
        try:
            if kspec["backend"] == "cuda":
                from fastgd.linear import gpu

                def call(rows):
                    block = gpu.run_rows(kspec, rows)
                    finish(block)
                    E.scatter(out, block)
                    on_done(block)

                # a launch of ~2^17 runs fills a GPU; progress and Ctrl-C between launches
                per = 4 if gpu.simulated() else max(1, (1 << 17) // kspec["lanes"])
                E.run_blocks(call, todo, per, progress=progress, desc=desc)
            elif engine is None:
                E.run_local(kspec, todo, out, nthreads, progress=progress, desc=desc,
                            on_done=on_done, finish=finish)
            else:
                E.run_executor(kspec, todo, out, engine, nthreads, progress=progress,
                               desc=desc, on_result=on_result, finish=finish)
        finally:
            counts["seconds_run"] = time.perf_counter() - t0
            if ck is not None:
                flush()


class _sigterm_as_interrupt:
    """While active (main thread only), SIGTERM raises KeyboardInterrupt, so that a
    checkpointed sweep stops between chunks and saves what finished."""

    def __init__(self, active):
        self.active = active
        self.old = None

    def __enter__(self):
        import signal
        import threading

        if self.active and threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise KeyboardInterrupt

            try:
                self.old = signal.signal(signal.SIGTERM, handler)
            except (ValueError, OSError):  # pragma: no cover - not allowed here
                self.old = None
        return self

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _sgd_limits(res, datasets, bias, batch_size, order, momentum, nesterov, almost_sure,
                threads):
    """Fill the SGD mean-square (and, on request, almost-sure) limits of each dataset."""
    from fastgd.theory import limits

    if order == "cyclic" and not almost_sure:
        return  # the exact cyclic limit needs an epoch-product root search (~0.2 s each)
    for k, (X, _) in enumerate(datasets):
        try:
            lim = limits(X, bias=bias, momentum=momentum, nesterov=nesterov,
                         batch_size=batch_size, order=order, almost_sure=almost_sure,
                         threads=threads)
        except ValueError:  # e.g. too many directions for the dense operator
            continue
        res.sgd_ms_limit[k] = lim["sgd_ms"]
        res.sgd_as_limit[k] = lim["sgd_as"]


def _versions():
    import numba

    from fastgd.version import __version__

    return {"fastgd": __version__, "numba": numba.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _assemble(method, lrs, seed_list, probs, out, rec_every, n_rec, momentum, nesterov, spec,
              nthreads, w0=None):
    if w0 is None:
        w0 = np.zeros(probs[0].d)
    lam = np.linalg.eigvalsh(np.stack([p.H for p in probs]))  # one LAPACK call per H
    lam_max = np.array([max(l[-1], 0.0) for l in lam])
    lam_min = np.array([max(l[0], 0.0) for l in lam])
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
    meta = {"versions": _versions(), "threads": int(nthreads), "spec": spec}
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
        growing=np.ascontiguousarray(PB.growing(probs, out, w0).transpose(tr)),
        weights=(None if out.w is None
                 else np.ascontiguousarray(out.w.transpose(0, 2, 1, 3))))


# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Boundary:
    """The divergence boundary of one dataset and method (see :func:`critical_lr`).

    Attributes
    ----------
    lr : float
        The critical learning rate.
    lo, hi : float
        Final bracket (``lo`` stable / below half, ``hi`` unstable / above half).
    method : str
    criterion : str
        ``"spectrum"`` (GD: the closed form from lambda_max), ``"growth"`` (GD with
        ``check=True``: the sign of the long-run growth rate of the error) or
        ``"half-diverged"`` (SGD: half of the seeds diverge within the budget).
    lrs, fraction : arrays
        SGD: the final grid and its diverged fraction (the fraction curve); GD: the
        final grid and its growth rate per step (``growth``).
    growth : array or None
        GD: log growth rate of ||(e, buf)|| per step on ``lrs``.
    """

    lr: float
    lo: float
    hi: float
    method: str
    criterion: str
    lrs: np.ndarray
    fraction: np.ndarray | None = None
    growth: np.ndarray | None = None

    def __repr__(self):
        r = (f"Boundary(lr={self.lr:.7g}, method={self.method!r}, "
             f"criterion={self.criterion!r}")
        if self.hi > self.lo:
            r += f", bracket=[{self.lo:.7g}, {self.hi:.7g}] ({self.hi / self.lo - 1:.2g} wide)"
        if self.lrs is not None and np.size(self.lrs) > 1:
            r += f", {np.size(self.lrs)}-point final grid"
        return r + ")"


def _gd_growth(prob, lrs, beta, nesterov, T1, T2, nthreads, renorm=16, seed=12345):
    """Long-run growth rate per step of the GD error map at each rate (difference of the
    accumulated log norms at T2 and T1 from the same random start: transients cancel)."""
    from fastgd.linear.executors import launch
    from fastgd.linear.table import KernelSpec

    d = prob.d
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(d)
    w0 /= np.linalg.norm(w0)
    arrays = {"R": prob.R[None], "wstar": np.zeros((1, d)), "estar": np.zeros(1),
              "c0": np.ones(1), "lr": lrs, "beta": np.full(lrs.size, beta), "w0": w0}
    logs, over = [], np.zeros(lrs.size, dtype=bool)
    for T in (T1, T2):
        out = G.Outputs(1, 1, lrs.size, d)
        spec = KernelSpec("gd", d, T, 0.0, np.inf, momentum=beta != 0, nesterov=nesterov,
                          renorm=renorm)
        launch(spec, arrays, G.make_chunks(1, 1, lrs.size, 64), nthreads, out)
        logs.append(out.logg[0, 0].copy())
        # a lane that overflowed between renormalisations stopped there: unstable
        over |= out.status[0, 0] == ST.Status.DIVERGED
    with np.errstate(invalid="ignore"):
        g = np.where(over, np.inf, (logs[1] - logs[0]) / (T2 - T1))
    # a lane that hit exactly zero (e.g. eta = 1/lambda with kappa = 1) is stable
    g = np.where(np.isnan(g), np.where(logs[1] > 0, np.inf, -np.inf), g)
    return g


def critical_lr(X, y, *, method="gd", momentum=0.0, nesterov=False, bias=False, rtol=None,
                steps=None, epochs=100, batch_size=1, order=ST.DEFAULT_ORDER, seeds=64,
                blowup=1e12, lr_range=None, threads=None, check=False) -> Boundary:
    """The divergence boundary in the learning rate for one dataset.

    GD (``method="gd"``): the long-run boundary, where the growth rate of the error
    crosses zero.  For the linear unit it is known in closed form from the spectrum
    of H: 2/lambda_max, with momentum beta 2(1 + beta)/lambda_max (Nesterov
    (2 + 2 beta)/((1 + 2 beta) lambda_max); :func:`fastgd.theory.momentum_lr_max`);
    that is what is returned (``criterion="spectrum"``, milliseconds).
    ``check=True`` finds it by simulation instead, as a check of the kernels:
    multisection on a grid of 64 rates per round (each rate a SIMD lane); the growth
    rate is measured from blockwise renormalised runs, never from "diverged within T
    steps" (biased by about ln(blowup)/(4T)); it lands on the closed form to ``rtol``
    (default 1e-6; ``criterion="growth"``; seconds to a minute on ill-conditioned data).

    SGD (``method="sgd"``): the rate at which half of the ``seeds`` runs diverge within
    ``epochs`` epochs, by successive grids refined around the crossing; returns the
    fraction curve of the final grid.  Default ``rtol`` 1e-3.  ``order="cyclic"`` is
    deterministic (no seed changes the sample order), so one seed is run whatever
    ``seeds`` says.  This budget boundary lies above the mean-square limit of
    :mod:`fastgd.theory`, and it is *not* bounded by the almost-sure (typical run)
    limit: a run just above that limit grows slowly and may not pass ``blowup``
    within the budget, so the budget boundary is biased upward (on scikit-learn's
    digits it lies about 9 % above the almost-sure limit with 100 epochs).

    Parameters
    ----------
    X, y : data.  momentum, nesterov, bias: as in :func:`fastgd.gd`.
    rtol : float
        Relative width of the final bracket (simulations only).
    steps : int
        GD with ``check=True``: steps per growth measurement (default chosen from the
        spectrum).
    epochs, batch_size, order, seeds, blowup
        SGD budget and options (``order`` defaults to ``fastgd.DEFAULT_ORDER``,
        "shuffle", as in :func:`fastgd.sgd` and :func:`fastgd.sweep`).
    lr_range : (lo, hi), optional
        Initial search range of a simulation (default from the trace of H).
    check : bool
        GD: run the growth-rate bisection instead of the closed form.

    Returns
    -------
    Boundary

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> round(fg.critical_lr(X, y).lr, 5)      # 2/0.84
    2.38095
    """
    f = "critical_lr"
    V.choice(f, "method", method, ("gd", "sgd"))
    prob = PB.prepare(f, X, y, bias)
    momentum = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    if rtol is None:
        rtol = 1e-6 if method == "gd" else 1e-3
    rtol = V.real(f, "rtol", rtol, positive=True)
    V.threads(f, threads)
    if method == "sgd":
        V.integer(f, "batch_size", batch_size, minimum=1, maximum=prob.P)
        V.choice(f, "order", order, tuple(ST.ORDERS))
        V.blowup(f, blowup)
    steps = _cost.critical(f, method, steps, epochs, seeds, prob.P, prob.d)
    trH = float(np.trace(prob.H))
    if trH <= 0:
        raise V.fail(f, "X", "not identically zero", "H = 0 (no boundary exists)")
    if lr_range is None:
        lo, hi = 0.1 / trH, 1e3 / trH
    else:
        lo, hi = V.pair(f, "lr_range", lr_range)
    check = V.boolean(f, "check", check)
    if method == "gd" and not check:
        return _critical_gd_spectrum(prob, momentum, nesterov)
    with G.using_threads(f, threads) as nthreads, np.errstate(all="ignore"):
        if method == "gd":
            return _critical_gd(f, prob, momentum, nesterov, rtol, steps, lo, hi, nthreads)
        return _critical_sgd(f, prob, momentum, nesterov, rtol, epochs, batch_size, order,
                             seeds, blowup, lo, hi, nthreads, threads)


def _critical_gd_spectrum(prob, momentum, nesterov):
    """The GD boundary from lambda_max of H (scipy's ``eigvalsh``, as
    :func:`fastgd.spectrum`)."""
    import scipy.linalg

    from fastgd.theory import momentum_lr_max

    lam_max = float(scipy.linalg.eigvalsh(prob.H)[-1])
    lr = (momentum_lr_max(lam_max, momentum, nesterov) if momentum > 0 or nesterov
          else 2.0 / lam_max)
    return Boundary(lr=float(lr), lo=float(lr), hi=float(lr), method="gd",
                    criterion="spectrum", lrs=np.array([lr]))


def _critical_gd(f, prob, momentum, nesterov, rtol, steps, lo, hi, nthreads):
    lam = np.linalg.eigvalsh(prob.H)
    if steps is None:
        # transients along other directions decay like (1 - 2 lambda_min/lambda_max)^t:
        # run long enough for them to vanish, and for the top rate to be resolved
        pos = lam[lam > 1e-12 * lam[-1]]
        gap = max(pos[0] / lam[-1], 1e-6)
        steps = int(min(max(20.0 / gap, 0.2 / rtol, 2000), 4e6))
    else:
        steps = V.integer(f, "steps", steps, minimum=100)
    grid = np.geomspace(lo, hi, 64)
    for _ in range(8):
        g = _gd_growth(prob, grid, momentum, nesterov, steps // 2, steps, nthreads)
        unstable = np.flatnonzero(g > 0)
        if unstable.size == 0:
            grid = np.geomspace(grid[-1], grid[-1] * 1e3, 64)
            continue
        k = unstable[0]
        if k == 0:
            grid = np.geomspace(grid[0] * 1e-3, grid[0], 64)
            continue
        lo, hi = grid[k - 1], grid[k]
        break
    else:
        raise V.fail(f, "X", "data with a finite divergence boundary",
                     "no diverging rate found")
    while (hi - lo) / lo > rtol:
        grid = np.linspace(lo, hi, 66)[1:-1]
        g = _gd_growth(prob, grid, momentum, nesterov, steps // 2, steps, nthreads)
        unstable = np.flatnonzero(g > 0)
        if unstable.size == 0:
            lo = grid[-1]
        else:
            k = unstable[0]
            hi = grid[k]
            if k > 0:
                lo = grid[k - 1]
    return Boundary(lr=float(0.5 * (lo + hi)), lo=float(lo), hi=float(hi), method="gd",
                    criterion="growth",
                    lrs=grid, growth=g)


def _critical_sgd(f, prob, momentum, nesterov, rtol, epochs, batch_size, order, seeds, blowup,
                  lo, hi, nthreads, threads):
    data = [(prob.X[:, :-1] if prob.bias else prob.X, prob.y)]
    if order == "cyclic":  # the order does not depend on the seed: one is enough
        seeds = [0]
    kw = dict(method="sgd", data=data, epochs=epochs, batch_size=batch_size, order=order,
              seeds=seeds, momentum=momentum, nesterov=nesterov, bias=prob.bias, tol=0.0,
              blowup=blowup, threads=threads, progress=False)
    grid = np.geomspace(lo, hi, 64)
    for _ in range(40):
        res = sweep(lr=grid, **kw)
        frac = res.diverged_fraction()[0]
        k = np.flatnonzero(frac >= 0.5)
        if k.size == 0:
            grid = np.geomspace(grid[-1], grid[-1] * 100, 64)
            continue
        k = k[0]
        if k == 0:
            grid = np.geomspace(grid[0] / 100, grid[0], 64)
            continue
        lo, hi = grid[k - 1], grid[k]
        if (hi - lo) / lo <= rtol:
            break
        grid = np.geomspace(lo, hi, 64)
    else:
        raise V.fail(f, "X", "data with a finite divergence boundary", "none found")
    lr = float(res.critical_lr(0.5)[0])
    return Boundary(lr=lr, lo=float(lo), hi=float(hi), method="sgd", criterion="half-diverged",
                    lrs=grid,
                    fraction=frac)
