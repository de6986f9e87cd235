"""GPU backend: ``fastgd.sweep(..., backend="cuda")`` (optional extra ``fastgd[cuda]``).

One run per CUDA thread, for the linear unit's GD and SGD sweeps and for scalar-chain
sweeps (:func:`chain_launch`, the GPU twin of the chain CPU launcher in :mod:`fastgd.chain.launch`, used by ``chain_sweep(backend="cuda")``).  The runs are
the scalar functions of :mod:`fastgd.linear.scalar` (``gd_run``, ``sgd_run``,
``chain_gd_run``, ``chain_sgd_run``), compiled with
``numba.cuda.jit(device=True)`` from the same source that the CPU ``jit`` compiles for
the tests; they follow the lane kernels of :mod:`fastgd.linear.kernels` operation for
operation (statuses exact; losses equal to rounding, since the GPU contracts
multiply-adds).  SGD sample orders (shuffle, replacement) are drawn on the host by the
CPU's counter-based generator and read by every thread of a seed, so the GPU visits the
same samples as the CPU.

``import fastgd`` never imports ``numba.cuda``: this module imports it when a CUDA
sweep starts.  Without a GPU, :func:`require` raises a clear error; the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` in the environment before numba is imported) runs the same
kernels in Python on small grids (tests).
"""

from __future__ import annotations

import functools
import types as _pytypes

import numpy as np

from fastgd import validate as V

THREADS_PER_BLOCK = 128


def _cuda(func="sweep"):
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba without its CUDA target
        raise V.fail(func, "backend", "'cpu', or 'cuda' with numba-cuda installed "
                     "(pip install 'fastgd[cuda]')", "'cuda'") from exc
    return cuda


def simulated() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def available() -> bool:
    """True when a CUDA GPU (or the simulator) can run the GPU kernels."""
    try:
        cuda = _cuda()
        return bool(cuda.is_available())
    except Exception:
        return False


def require(func="sweep"):
    """Raise :class:`fastgd.FastGDValueError` unless a CUDA GPU (or the simulator)
    is usable."""
    cuda = _cuda(func)
    try:
        ok = cuda.is_available()
    except Exception:  # pragma: no cover - broken driver
        ok = False
    if not ok:
        raise V.fail(func, "backend", "'cpu' on a machine without a usable CUDA GPU "
                     "(backend='cuda' needs an NVIDIA GPU with its driver and "
                     "'fastgd[cuda]'; NUMBA_ENABLE_CUDASIM=1, set before numba is "
                     "imported, simulates one for small grids)",
                     "'cuda', but no CUDA device was found")


# -- kernels (plain functions: compiled with cuda.jit in _kernels()) -----------------
def _gpu_grid_gd_linear(run_di, run_lane, lam, V, wstar, estar, c0, lr, beta, nesterov, w0,
                        steps, tol, blowup, rec_every, z, buf, zok, out_status, out_w,
                        out_loss, out_excess, out_tol_at, out_div_at, rec_loss):
    k = cuda.grid(1)  # noqa: F821 - injected at compile time
    if k < run_di.shape[0]:
        gd_run(k, run_di[k], run_lane[k], lam, V, wstar, estar, c0, lr, beta,  # noqa: F821
               nesterov, w0, steps, tol, blowup, rec_every, z, buf, zok, out_status,
               out_w, out_loss, out_excess, out_tol_at, out_div_at, rec_loss)


def _gpu_grid_sgd_linear(run_di, run_si, run_lane, run_oi, X, y, Ps, R, wstar, estar, c0,
                         lr, beta, nesterov, w0, epochs, batch, order_idx, tol, blowup,
                         rec_every, w, e, g, buf, wok, out_status, out_w, out_loss,
                         out_excess, out_tol_at, out_div_at, rec_loss):
    k = cuda.grid(1)  # noqa: F821
    if k < run_di.shape[0]:
        di = run_di[k]
        sgd_run(k, di, run_si[k], run_lane[k], X, y, Ps[di], R, wstar, estar,  # noqa: F821
                c0, lr, beta, nesterov, w0, epochs, batch, order_idx, run_oi[k], tol,
                blowup, rec_every, w, e, g, buf, wok, out_status, out_w, out_loss,
                out_excess, out_tol_at, out_div_at, rec_loss)


def _gpu_grid_gd_chain(cells, sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup,
                       w, wprev, pre, p, out_status, out_w, out_excess, out_tol_at,
                       out_div_at, out_maxloss, rec_loss, rec_w):
    r = cuda.grid(1)  # noqa: F821
    if r < cells.shape[0]:
        chain_gd_run(r, cells[r], sxx, pstar, estar, c0, cs, inits, lrs, steps,  # noqa: F821
                     tol, blowup, w, wprev, pre, p, out_status, out_w, out_excess,
                     out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)


def _gpu_grid_sgd_chain(cells, X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch,
                        order_idx, tol, blowup, w, wprev, pre, p, out_status, out_w,
                        out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w):
    r = cuda.grid(1)  # noqa: F821
    if r < cells.shape[0]:
        chain_sgd_run(r, cells[r], X, Y, sxx, pstar, estar, c0, cs, inits, lrs,  # noqa: F821
                      epochs, batch, order_idx, tol, blowup, w, wprev, pre, p, out_status,
                      out_w, out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)


@functools.lru_cache(maxsize=1)
def _kernels():
    """Compile (once per process) the device functions and the grid kernels:
    ``{"gd": ..., "sgd": ..., "chain_gd": ..., "chain_sgd": ...}``.  The one cache of
    this module, bounded to that one set of four kernels; no device memory outlives
    the sweep that allocated it (:class:`Runner`)."""
    cuda = _cuda()
    from fastgd.linear import scalar

    glb = {"cuda": cuda, **scalar.compile_for(cuda.jit(device=True))}
    out = {}
    for key, py in (("gd", _gpu_grid_gd_linear), ("sgd", _gpu_grid_sgd_linear),
                    ("chain_gd", _gpu_grid_gd_chain), ("chain_sgd", _gpu_grid_sgd_chain)):
        fn = _pytypes.FunctionType(py.__code__, glb, py.__name__.lstrip("_"))
        out[key] = cuda.jit(fn)
    return out


# -- host side ---------------------------------------------------------------------
def order_table(Ps, keys, T, order):
    """Sample indices ``[pair, epoch, pos]`` (int32) that the CPU kernels visit, one pair
    per (P in ``Ps`` (sorted, unique), key); an empty table for the cyclic order."""
    from fastgd.kernels import ORDER_CYCLIC, ORDER_SHUFFLE
    from fastgd.kernels.rng import hash4, permutation, randbelow

    if order == ORDER_CYCLIC:
        return np.zeros((0, 0, 0), dtype=np.int32)
    uniq = sorted(set(int(P) for P in Ps))
    n_key = keys.shape[0]
    Pmax = max(uniq)
    need = len(uniq) * n_key * T * Pmax * 4
    if need > 4 << 30:
        raise V.fail("sweep", "epochs", "small enough for the GPU's precomputed sample "
                     "orders (at most 4 GiB)", f"{need / 2**30:.1f} GiB; use "
                     "order='cyclic' or fewer epochs")
    idx = np.zeros((len(uniq) * n_key, T, Pmax), dtype=np.int32)
    for a, P in enumerate(uniq):
        perm = np.empty(P, dtype=np.int64)
        for s in range(n_key):
            k0, k1 = int(keys[s, 0]), int(keys[s, 1])
            row = a * n_key + s
            for ep in range(T):
                if order == ORDER_SHUFFLE:
                    permutation(k0, k1, ep, perm)
                    idx[row, ep, :P] = perm
                else:
                    for pos in range(P):
                        idx[row, ep, pos] = randbelow(hash4(k0, k1, ep, pos), P)
    return idx


def sample_orders(job):
    """SGD sample orders of a linear job (:class:`fastgd.linear.contract.LinearJob`):
    the table of :func:`order_table` and the pair index ``[data, seed]`` into it."""
    Ps, keys = job.inputs.P, job.inputs.keys
    idx = order_table(Ps, keys, job.spec.T, job.spec.order)
    uniq = sorted(set(Ps.tolist()))
    n_seed = keys.shape[0]
    pair = np.zeros((Ps.size, n_seed), dtype=np.int64)
    for di in range(Ps.size):
        pair[di] = uniq.index(int(Ps[di])) * n_seed + np.arange(n_seed)
    return idx, pair


class Runner:
    """A linear job on the GPU: its inputs copied to the device once, for the launches
    of one sweep (dropped with the runner, i.e. when the sweep ends)."""

    def __init__(self, job):
        cuda = _cuda()
        self.job = job
        inp = job.inputs
        up = cuda.to_device
        self.common = tuple(up(np.ascontiguousarray(a)) for a in  # lr: 1-D, flat rows
                            (inp.wstar, inp.estar, inp.c0, inp.lr.ravel(), inp.beta))
        self.w0 = up(np.ascontiguousarray(inp.w0))
        if job.spec.method == "gd":  # GD iterates in the eigenbasis of each H (as the CPU)
            from fastgd.linear.kernels import eig_basis

            lam, V = (inp.lam, inp.V) if inp.lam is not None else eig_basis(inp.R)
            self.head = (up(lam), up(V))
        else:
            idx, self.pair = sample_orders(job)
            self.head = tuple(up(np.ascontiguousarray(a)) for a in (inp.X, inp.y, inp.P,
                                                                   inp.R))
            self.order_idx = up(idx)

    def run_rows(self, rows):
        """Run chunk-table rows; per-run results in row order (the lanes of row 0, then
        row 1, ...), as :func:`fastgd.linear.executors.run_chunks` returns them."""
        cuda = _cuda()
        kern = _kernels()
        spec = self.job.spec
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
        di = np.concatenate([np.full(b - a, r0) for r0, _, a, b in rows])
        si = np.concatenate([np.full(b - a, r1) for _, r1, a, b in rows])
        lane = np.concatenate([np.arange(a, b) for _, _, a, b in rows])
        n = lane.size
        d, n_rec = self.job.d, int(self.job.n_rec)
        res = {"rows": rows, "status": np.empty(n, np.int8), "w": np.empty((n, d)),
               "loss": np.empty(n), "excess": np.empty(n), "tol_at": np.empty(n, np.int64),
               "div_at": np.empty(n, np.int64), "rec_loss": np.empty((n, n_rec))}
        outs = {k: cuda.device_array(v.shape, v.dtype) for k, v in res.items() if k != "rows"}
        scratch = [cuda.device_array((d, n), self.job.inputs.R.dtype) for _ in range(5)]
        tpb = 16 if simulated() else THREADS_PER_BLOCK
        grid = (n + tpb - 1) // tpb
        o = tuple(outs[k] for k in ("status", "w", "loss", "excess", "tol_at", "div_at",
                                    "rec_loss"))
        wstar, estar, c0, lr, beta = self.common
        if spec.method == "gd":
            kern["gd"][grid, tpb](cuda.to_device(di), cuda.to_device(lane), *self.head,
                                  wstar, estar, c0, lr, beta, spec.nesterov, self.w0, spec.T,
                                  spec.tol, spec.blowup, spec.rec_every, *scratch[:3], *o)
        else:
            oi = np.ascontiguousarray(self.pair[di, si])
            X, y, P, R = self.head
            kern["sgd"][grid, tpb](cuda.to_device(di), cuda.to_device(si),
                                   cuda.to_device(lane), cuda.to_device(oi), X, y, P, R,
                                   wstar, estar, c0, lr, beta, spec.nesterov, self.w0,
                                   spec.T, spec.batch, self.order_idx, spec.tol, spec.blowup,
                                   spec.rec_every, *scratch, *o)
        cuda.synchronize()
        for k, v in outs.items():
            res[k] = v.copy_to_host()
        return res


def run_rows(job, rows):
    """Run chunk-table rows of a linear job on the GPU (inputs copied for this call):
    :meth:`Runner.run_rows`."""
    return Runner(job).run_rows(rows)


def chain_launch(method, s, inits, lrs, steps, tol, blowup, out, chunks, sgd):
    """The GPU twin of the chain CPU launcher (:mod:`fastgd.chain.launch`): run the cells of the chunk rows
    (``[_, _, cell_start, cell_stop]``) of a scalar-chain sweep, one cell per CUDA
    thread, into the flat outputs ``out`` (:class:`fastgd.chain.launch.Out`).  ``s`` holds the chain's
    statistics (X, Y, sxx, pstar, estar, c0, c); ``sgd`` = (batch, order code, key)."""
    cuda = _cuda()
    kern = _kernels()
    rows = np.asarray(chunks, dtype=np.int64).reshape(-1, 4)
    cells = np.concatenate([np.arange(a, b) for _, _, a, b in rows])
    n = cells.size
    depth = inits.shape[1]
    n_rec, n_rec_w = out.rec_loss.shape[1], out.rec_w.shape[1]
    res = {"status": np.empty(n, np.int8), "w": np.empty((n, depth)),
           "excess": np.empty(n), "tol_at": np.empty(n, np.int64),
           "div_at": np.empty(n, np.int64), "maxloss": np.empty(n),
           "rec_loss": np.empty((n, n_rec)), "rec_w": np.empty((n, n_rec_w, depth))}
    outs = {k: cuda.device_array(v.shape, v.dtype) for k, v in res.items()}
    w, wprev, p = (cuda.device_array((depth, n)) for _ in range(3))
    pre = cuda.device_array((depth + 1, n))
    tpb = 16 if simulated() else THREADS_PER_BLOCK
    grid = (n + tpb - 1) // tpb
    o = tuple(outs[k] for k in ("status", "w", "excess", "tol_at", "div_at", "maxloss",
                                "rec_loss", "rec_w"))
    dcells = cuda.to_device(cells)
    dinits = cuda.to_device(np.ascontiguousarray(inits, dtype=np.float64))
    dlrs = cuda.to_device(np.ascontiguousarray(lrs, dtype=np.float64))
    if method == "gd":
        kern["chain_gd"][grid, tpb](dcells, s.sxx, s.pstar, s.estar, s.c0, s.c, dinits, dlrs,
                                    steps, tol, blowup, w, wprev, pre, p, *o)
    else:
        batch, code, key = sgd
        idx = order_table([s.X.shape[0]], np.asarray(key).reshape(1, 2), steps, code)
        kern["chain_sgd"][grid, tpb](dcells, cuda.to_device(s.X), cuda.to_device(s.Y),
                                     s.sxx, s.pstar, s.estar, s.c0, s.c, dinits, dlrs, steps,
                                     batch, cuda.to_device(idx), tol, blowup, w, wprev, pre, p,
                                     *o)
    cuda.synchronize()
    for k, v in outs.items():
        res[k] = v.copy_to_host()
    out.status[cells] = res["status"]
    out.w[cells] = res["w"]
    out.excess[cells] = res["excess"]
    out.tol_at[cells] = res["tol_at"]
    out.div_at[cells] = res["div_at"]
    out.maxloss[cells] = res["maxloss"]
    out.rec_loss[cells] = res["rec_loss"]
    out.rec_w[cells] = res["rec_w"]
