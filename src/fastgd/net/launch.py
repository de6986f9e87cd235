"""Between the network API (:mod:`fastgd.net.runs`, :mod:`fastgd.net.sweep`) and its
kernels (:func:`fastgd.net.kernels_rows.grid_net`): the chunks of learning rates run as SIMD
lanes, the flat per-cell outputs, the launcher (registered in :mod:`fastgd.engine.table`
for ("net", "gd") and ("net", "sgd"); the adaptive methods are options of the same
kernel), the network's part of the engines (:mod:`fastgd.engine.executors`: its blocks,
its worker task, its dispatch) and the final status rules.

A single run is one lane of the sweep's kernel, so a :func:`fastgd.net.net_sweep` cell
with the same arguments is bit-identical; the optimizer (:mod:`fastgd.net.adaptive`)
reaches the kernel as two small arrays (``opt_i``, ``opt_f``).  A sweep's block runs its
cells and then their curvature (the final sharpness and its curve, Lanczos lanes
warm-started from each initialisation's top Ritz vector at theta0, which the sweep
computes once, before any block): a lane's arithmetic depends neither on the other
lanes nor on the thread that runs it, so every cell is bit-identical on every engine,
for any thread count and however the chunk table is cut.
"""

from __future__ import annotations

import sys

import numpy as np

from fastgd.engine import executors as X
from fastgd.engine import grid as G
from fastgd.engine import helper, table
from fastgd.engine.notice import first_compile
from fastgd.net.adaptive import _Optim, _precond_diag, _precond_sharpness
from fastgd.net.model import _top_eig
from fastgd.status import Status

#: learning rates per chunk (SIMD lanes sharing one initialisation), and for wide
#: networks one vector block of the kernel (:mod:`fastgd.kernels.simd`: 8).  A chunk's
#: arrays are [param][lane]: with 32 lanes a block's rows sit 256 bytes apart and use a
#: quarter of the cache's sets, which costs nothing while a block's parameters, gradient
#: and activations fit a quarter of the cache and a lot when they do not (wide networks
#: run faster with 8 lanes; bench/test_bench_net.py)
LANES = 32
LANES_WIDE = 8
_FIT = 4096  # cache lines (256 KB): the largest block footprint run with LANES
#: per-cell result fields of a sweep's block (what a checkpoint file holds): the
#: kernel's outputs, the final sharpness, its curve and their preconditioned twins
FIELDS = ("status", "loss", "tol_at", "div_at", "maxloss", "sharpness", "curve", "psharp",
          "pcurve")
#: bytes of parameters (final and recorded) one block of the local engine may hold
BLOCK_BYTES = 64 << 20


def _lanes(m, d, bias):
    """Lanes per chunk for width m: a block touches ~3 N + 8 m lines (parameters,
    gradient and rollback copy, activations of up to 8 samples)."""
    N = m * (d + 1 + int(bias))
    return LANES if 3 * N + 8 * m <= _FIT else LANES_WIDE


def chunk_table(job):
    """The chunk table of a :class:`fastgd.net.contract.NetJob`: rows ``(init, 0,
    lr_start, lr_stop)``, init-major, ``job.lanes`` rates each (None: by width)."""
    inp = job.inputs
    d, bias, n_lr = inp.X.shape[1], inp.bias, inp.n_lr
    rows = []
    for c in range(inp.n_init):
        n = job.lanes or _lanes(int(inp.widths[c]), d, bias)
        rows += [(c, 0, a, min(a + n, n_lr)) for a in range(0, n_lr, n)]
    return np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(-1, 4))


class _Out:
    """Flat per-cell kernel outputs (cells: init-major, lr-minor); with ``moments`` also
    the second moments of an adaptive method where the parameters go."""

    def __init__(self, Ns, n_lr, n_rec=0, rec_every=0, n_th=0, moments=False):
        n = len(Ns) * n_lr
        per_cell_N = np.repeat(np.asarray(Ns, dtype=np.int64), n_lr)
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.theta_off = np.concatenate([[0], np.cumsum(per_cell_N)]).astype(np.int64)
        self.theta = np.zeros(int(self.theta_off[-1]))
        self.loss = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_every = int(rec_every)
        self.rec_off = np.concatenate([[0], np.cumsum(per_cell_N * n_th)]).astype(np.int64)
        self.rec_theta = np.zeros(int(self.rec_off[-1]) if rec_every else 0)
        self.v = np.zeros(self.theta.size if moments else 0)
        self.rec_v = np.zeros(self.rec_theta.size if moments else 0)
        self.per_cell_N = per_cell_N

    @classmethod
    def of(cls, spec, inputs):
        """Outputs for every cell of ``inputs`` under ``spec``."""
        return cls(inputs.sizes, inputs.n_lr, spec.n_rec, spec.rec_every, spec.n_th,
                   moments=spec.optim.adaptive)

    def tail(self):
        return (self.rec_every, self.status, self.theta, self.theta_off, self.loss,
                self.tol_at, self.div_at, self.maxloss, self.rec_loss, self.rec_theta,
                self.rec_off, self.v, self.rec_v)

    def theta_of(self, k):
        return self.theta[self.theta_off[k]: self.theta_off[k + 1]]

    def v_of(self, k):
        return self.v[self.theta_off[k]: self.theta_off[k + 1]]

    def rec_of(self, k, v=False):
        N = self.per_cell_N[k]
        src = self.rec_v if v else self.rec_theta
        return src[self.rec_off[k]: self.rec_off[k + 1]].reshape(-1, N)


# ------------------------------------------------------------------- the launcher
def kernel_key(spec, act):
    """The specialisation key of the compiled chunk kernel that runs ``spec`` on networks
    of activation code ``act`` (``NetInputs.act``;
    :func:`fastgd.net.kernels_rows.rows_kernel`): (SGD, optimizer mode, activation).

    Examples
    --------
    >>> from fastgd.net.contract import NetSpec
    >>> from fastgd.net.kernels import ACT_RELU
    >>> from fastgd.net.launch import kernel_key
    >>> kernel_key(NetSpec("gd", 10, 1e-8, 1e12), ACT_RELU)
    (False, 0, 2)
    """
    from fastgd.net import kernels_rows as K

    o = spec.optim
    mode = (K.ADAPTIVE if o.adaptive else
            K.SCHEDULED if o.warmup > 0 or o.schedule != "constant" else K.PLAIN)
    return spec.method == "sgd", mode, int(act)


def select(spec, act):
    """The compiled chunk kernel for ``spec`` and activation code ``act`` (the one place
    that picks it, by :func:`kernel_key`; built on first use, compiled on its first
    call)."""
    from fastgd.net.kernels_rows import rows_kernel

    return rows_kernel(*kernel_key(spec, act))


def _cpu(spec, i, rows, nworkers, out):
    """The launcher of ("net", "gd") and ("net", "sgd"): the one place the kernel's
    argument list is spelled (rows ``(init, 0, a, b)`` become the kernel's
    ``(init, a, b)``)."""
    from fastgd.net.kernels_rows import grid_net

    opt_i, opt_f = spec.optim.kernel_args()
    grid_net(select(spec, i.act),
             (i.X, i.y, i.act, i.bias, 0 if spec.method == "gd" else 1, i.widths, i.scales,
              i.init_off, i.inits, i.keys, i.lrs, spec.beta, opt_i, opt_f, spec.steps,
              spec.batch, spec.order, spec.tol, spec.gtol, spec.blowup, i.c0,
              np.ascontiguousarray(rows[:, [0, 2, 3]])), nworkers, out.tail())


table.register("net", "gd", _cpu)
table.register("net", "sgd", _cpu)


_NOTICE = "fastgd: compiling the two-layer network kernels, first run only (cached on disk)..."


def _precompile(spec, M, threads):
    """Before a sweep's initial curvature: where its training kernel is cold (its first
    call on this machine, :func:`fastgd.engine.notice.first_compile`), the one-line
    notice on stderr and, for a sweep on ``threads`` >= 2 threads of this process (0:
    another engine runs it) with two CPUs, a helper process
    (:mod:`fastgd.engine.helper`) that compiles that kernel into Numba's disk cache (a
    one-step run of the same spec on a tiny network, :func:`_compile_child`) while this
    one compiles and runs the Lanczos kernels; :func:`_launch` waits for it, then loads
    the kernel from the cache (the same machine code; a cold ``fastgd net phase``
    15.2-16.4 -> 12.1-12.9 s on a loaded 2-core VM).  Returns the process, or None."""
    import pickle

    if not first_compile(select(spec, M.act)):
        return None
    print(_NOTICE, file=sys.stderr, flush=True)
    if not helper.allowed(threads):
        return None
    payload = pickle.dumps((spec, M.activation, bool(M.bias), int(M.d))).hex()
    return helper.start(("net",) + kernel_key(spec, M.act), __name__, "_compile_child",
                        payload)


def _compile_child(payload, source):
    """The helper process of :func:`_precompile`: one step of the spec ``payload``
    (pickled, hex: spec, activation, bias, d) on a tiny network, one thread, no
    curvature, so that the training kernel it compiles has the argument types of the
    sweep's; nothing where this module is not the file ``source`` (another fastgd)."""
    import dataclasses
    import pickle

    from fastgd.net.contract import NetJob, net_inputs
    from fastgd.net.model import _init, _model

    if not helper.same_source(__file__, source):
        raise SystemExit(1)
    spec, activation, bias, d = pickle.loads(bytes.fromhex(payload))
    P = max(8, int(spec.batch))
    X = np.linspace(-1.0, 1.0, P * d).reshape(P, d)
    M = _model("precompile", X, np.zeros(P), activation, "ntk", bias)
    inp = net_inputs(M, [(2, _init(2, d, 1.0, 0, bias), np.zeros(2, np.int64))], [1e-3])
    spec = dataclasses.replace(spec, steps=1, rec_every=0, sharpness=False)
    run_job("precompile", NetJob(spec, inp), threads=1)


def _launch(spec, inputs, rows, nworkers, out):
    """Run the cells of the chunk rows into ``out`` (:func:`fastgd.engine.table.launch`)
    with NumPy's warnings off (divergence is a result); one line on stderr before the
    kernels' first compilation on this machine (unless :func:`_precompile` said it)."""
    kern = select(spec, inputs.act)
    helper.wait(("net",) + kernel_key(spec, inputs.act))
    if first_compile(kern):
        print(_NOTICE, file=sys.stderr, flush=True)
    with np.errstate(all="ignore"):
        table.launch(spec, inputs, rows, nworkers, out)


def run_job(f, job, threads=None, progress=False):
    """Run every cell of ``job`` in this process into full-size outputs (single runs:
    the parameters and recordings are read back); returns (outputs, seconds, threads).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.contract import NetJob, NetSpec, net_inputs
    >>> from fastgd.net.launch import run_job
    >>> from fastgd.net.model import _init, _model
    >>> M = _model("demo", np.linspace(-1, 1, 6)[:, None], 0.5 * np.linspace(-1, 1, 6),
    ...            "identity", "ntk", False)
    >>> inp = net_inputs(M, [(4, _init(4, 1, 1.0, 0, False), np.zeros(2, np.int64))],
    ...                  [1.0, 20.0])
    >>> out, _, _ = run_job("demo", NetJob(NetSpec("gd", 200, 1e-8, 1e12), inp))
    >>> out.status.tolist()
    [1, 2]
    """
    import time

    chunks = chunk_table(job)
    t0 = time.perf_counter()
    out = _Out.of(job.spec, job.inputs)
    with G.using_threads(f, threads) as nw:
        G.execute(lambda rows, n: _launch(job.spec, job.inputs, rows, n, out), chunks, nw,
                  progress=progress, desc=f)
    return out, time.perf_counter() - t0, nw


# -------------------------------------------------------------------- the engines
def _cell_index(rows, n_lr):
    """The cells of chunk rows ``(init, 0, a, b)`` in row order."""
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(c * n_lr + a, c * n_lr + b) for c, _, a, b in rows])


def run_chunks(job, rows, threads=1):
    """Run a block of chunk-table rows of a network sweep and the curvature of its
    cells; return their results (the engines' task, here or on a worker).

    Parameters
    ----------
    job : fastgd.net.contract.NetJob
        Spec, inputs (with the warm starts) and lanes built by :func:`fastgd.net.net_sweep`.
    rows : (n, 4) int64
        Rows ``(init, 0, lr_start, lr_stop)`` of the chunk table.
    threads : int
        Worker threads for this call (the kernel's and the Lanczos lanes').

    Returns
    -------
    dict
        ``rows`` and, per cell in row order, each field of :data:`FIELDS`.

    Notes
    -----
    The rows run in one kernel call on the initialisations they touch, restricted to
    the rates between their first and last (outputs for those cells only); every cell
    equals the one of any other cutting of the table, bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.contract import NetJob, NetSpec, net_inputs
    >>> from fastgd.net.launch import run_chunks
    >>> from fastgd.net.model import _init, _model
    >>> M = _model("demo", np.linspace(-1, 1, 6)[:, None], 0.5 * np.linspace(-1, 1, 6),
    ...            "identity", "ntk", False)
    >>> inp = net_inputs(M, [(4, _init(4, 1, 1.0, 0, False), np.zeros(2, np.int64))],
    ...                  [1.0, 6.0, 20.0])
    >>> run_chunks(NetJob(NetSpec("gd", 200, 1e-8, 1e12), inp), [[0, 0, 1, 3]])["status"]
    array([1, 2], dtype=int8)
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    spec, nw = job.spec, max(1, int(threads))
    if rows.shape[0] == 0:
        used, local, lo, hi = np.zeros(0, np.int64), rows, 0, 0
    else:
        used, loc = np.unique(rows[:, 0], return_inverse=True)
        lo, hi = int(rows[:, 2].min()), int(rows[:, 3].max())
        local = rows.copy()
        local[:, 0] = loc.ravel()
        local[:, 2:] -= lo
    inputs = job.inputs.writable().take(used)
    inputs = _rates(inputs, lo, hi)
    out = _Out.of(spec, inputs)
    if rows.shape[0]:
        _launch(spec, inputs, local, nw, out)
    cells = _cell_index(local, inputs.n_lr)
    block = {"rows": rows, "status": out.status[cells], "loss": out.loss[cells],
             "tol_at": out.tol_at[cells], "div_at": out.div_at[cells],
             "maxloss": out.maxloss[cells]}
    block.update(_curvature(spec, inputs, out, cells, nw))
    return block


def _rates(inputs, lo, hi):
    """``inputs`` with the rates ``lo:hi`` of each initialisation only."""
    import dataclasses

    return dataclasses.replace(inputs, lrs=np.ascontiguousarray(inputs.lrs[:, lo:hi]))


def _curvature(spec, inp, out, cells, nw):
    """Per cell of ``cells``: the final sharpness (with ``spec.sharpness``, else
    ``inf``) and the sharpness curve (every ``spec.rec_every`` steps); for the adaptive
    methods also their preconditioned twins lambda_max(P^-1 H) (the computation of
    :func:`fastgd.net.runs._with_precond`).  The points of all the cells of a width are
    the lanes of one Lanczos call per operator (:func:`_width_curvature`), each
    warm-started from its initialisation's top Ritz vector at theta0."""
    n, n_th, n_lr = cells.size, spec.n_th, inp.n_lr
    res = {"sharpness": np.full(n, np.inf), "curve": np.full((n, n_th), np.inf),
           "psharp": np.full(n, np.inf), "pcurve": np.full((n, n_th), np.inf)}
    if n == 0 or not (spec.sharpness or spec.rec_every):
        return res
    M = inp.model()
    init = cells // n_lr
    end = _ends(spec, out, cells) if spec.optim.adaptive else None
    for m in np.unique(inp.widths[init]):
        sel = np.flatnonzero(inp.widths[init] == m)
        _width_curvature(spec, inp, M, int(m), out, cells[sel], nw, res, sel, None)
        if spec.optim.adaptive:
            _width_curvature(spec, inp, M, int(m), out, cells[sel], nw, res, sel, end[sel])
    return res


def _ends(spec, out, cells):
    """The updates made by each cell's run up to its last finite iterate (a diverged
    run: the one before its blow-up)."""
    st = out.status[cells]
    last = np.where(st == Status.CONVERGED, out.tol_at[cells],
                    np.where(st == Status.DIVERGED, out.div_at[cells], spec.steps))
    return np.where(st == Status.DIVERGED, np.maximum(last - 1, 0), last)


def _width_curvature(spec, inp, M, m, out, ks, nw, res, sel, end):
    """The curvature of the cells ``ks`` (all of width m; rows ``sel`` of ``res``) as the
    lanes of one Lanczos call: their final points (with ``spec.sharpness``), then their
    recorded ones (with ``spec.rec_every``), into ``sharpness`` and ``curve``; with
    ``end`` (:func:`_ends`) the preconditioned operator P^-1/2 H P^-1/2 of each point
    (:func:`fastgd.net.adaptive._precond_diag`, warm starts ``inp.pv0``), into ``psharp``
    and ``pcurve``.  A lane's result depends neither on the other lanes nor on the
    threads, so every value equals the one of a call per cell, bit for bit."""
    pre, n, n_th = end is not None, ks.size, spec.n_th
    start = np.concatenate([inp.start(c, precond=pre) for c in ks // inp.n_lr])
    Th, S, Vs, at = [], [], [], []
    if spec.sharpness:
        Th.append(np.stack([out.theta_of(k) for k in ks]))
        S.append(start)
        if pre:
            Vs.append(np.stack([out.v_of(k) for k in ks]))
            at.append(end)
    if spec.rec_every:
        Th.append(np.concatenate([out.rec_of(k) for k in ks]))  # (n * n_th, N)
        S.append(np.repeat(start, n_th, axis=0))
        if pre:
            Vs.append(np.concatenate([out.rec_of(k, v=True) for k in ks]))
            steps = np.arange(n_th)[None, :] * spec.rec_every
            at.append(np.minimum(steps, end[:, None]).ravel())
    Th, S = np.concatenate(Th), np.concatenate(S)
    if pre:
        per = 1 if spec.method == "gd" else -(-M.P // spec.batch)
        D, bad = _precond_diag(M, m, spec.optim, Th, np.concatenate(Vs),
                               np.concatenate(at) * per, spec.method == "gd")
        vals = _top_eig(M, m, Th, spec.iters, start=S, threads=nw, diag=D)
        vals[bad] = np.nan
    else:
        vals = _top_eig(M, m, Th, spec.iters, start=S, threads=nw)
    final, curve = ("psharp", "pcurve") if pre else ("sharpness", "curve")
    if spec.sharpness:
        res[final][sel], vals = vals[:n], vals[n:]
    if spec.rec_every:
        res[curve][sel] = vals.reshape(n, n_th)


class Cells:
    """The per-cell results of a whole sweep (:data:`FIELDS`, NOT_RUN until a block
    is scattered in), flat: cell ``k = init * n_lr + lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.launch import Cells
    >>> cells = Cells(2, 3, 0)
    >>> cells.scatter({"rows": np.array([[1, 0, 1, 3]]), "status": np.array([1, 2]),
    ...                **{f: np.zeros(2) for f in ("loss", "tol_at", "div_at", "maxloss",
    ...                                           "sharpness", "psharp")},
    ...                "curve": np.zeros((2, 0)), "pcurve": np.zeros((2, 0))})
    >>> cells.status.tolist()
    [-1, -1, -1, -1, 1, 2]
    """

    def __init__(self, n_init, n_lr, n_th):
        n = n_init * n_lr
        self.n_lr = int(n_lr)
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        for name in ("loss", "maxloss", "sharpness", "psharp"):
            setattr(self, name, np.full(n, np.inf))
        self.curve = np.full((n, n_th), np.inf)
        self.pcurve = np.full((n, n_th), np.inf)

    def scatter(self, block):
        """Write a block (:func:`run_chunks`) into these results."""
        idx = _cell_index(np.asarray(block["rows"], dtype=np.int64).reshape(-1, 4),
                          self.n_lr)
        for f in X.scatter_order(FIELDS):  # status last
            getattr(self, f)[idx] = block[f]


def block_rows(job, nworkers, max_bytes=None):
    """Most chunk rows per block of the local engine: the parameters a block holds
    (final, recorded, second moments) stay under ``max_bytes`` (default
    :data:`BLOCK_BYTES`), never fewer than ``nworkers`` rows."""
    spec, inp = job.spec, job.inputs
    N = int(inp.sizes.max()) if inp.n_init else 1
    per_row = 8 * N * (1 + spec.n_th) * (2 if spec.optim.adaptive else 1) * (
        job.lanes or LANES)
    edge = 2 * per_row * max(1, -(-inp.n_lr // (job.lanes or LANES)))  # partial inits
    budget = (BLOCK_BYTES if max_bytes is None else max_bytes) - edge
    return max(int(nworkers), int(budget // max(per_row, 1)))


def initial(spec, M, inits, nw):
    """Per initialisation of a sweep, once, before any cell runs (the same bits on every
    engine and for any thread count: a Lanczos lane depends neither on the other lanes
    nor on the threads): the top Hessian eigenvalue lambda0 (the Lanczos runs of a width
    in one call), E(theta0) and, when the cells report curvature (``spec.sharpness``,
    ``spec.rec_every``), the top Ritz vectors that warm-start their Lanczos runs (for the
    adaptive methods also those of P^-1/2 H P^-1/2 at theta0).  ``inits``: (m, theta0,
    key) per initialisation.  Returns (lambda0, loss0, v0 or None, pv0 or None), the
    vectors as lists."""
    from fastgd.net.model import _loss_np

    n_init = len(inits)
    lam0 = np.empty(n_init)
    loss0 = np.array([_loss_np(t0, M, m) for m, t0, _ in inits])
    v0 = [None] * n_init
    widths = np.array([m for m, _, _ in inits])
    for m in np.unique(widths):
        cs = np.flatnonzero(widths == m)
        lam0[cs], vs = _top_eig(M, int(m), np.stack([inits[c][1] for c in cs]), spec.iters,
                                vectors=True, threads=nw)
        for j, c in enumerate(cs):
            v0[c] = vs[j]
    if not (spec.sharpness or spec.rec_every):
        return lam0, loss0, None, None
    pv0 = None
    if spec.optim.adaptive:  # the initialisations of a width as the lanes of one call
        pv0 = [None] * n_init
        for m in np.unique(widths):
            cs = np.flatnonzero(widths == m)
            T0 = np.stack([inits[c][1] for c in cs])
            _, vs = _precond_sharpness(M, int(m), spec.optim, T0, np.zeros(T0.shape),
                                       np.zeros(cs.size, np.int64), spec.method == "gd",
                                       spec.iters, vectors=True, threads=nw)
            for j, c in enumerate(cs):
                pv0[c] = vs[j]
    return lam0, loss0, v0, pv0


def run_sweep(f, job, nw, engine, checkpoint, progress):
    """Run a sweep's chunk table (:func:`chunk_table`) on ``engine`` (None: this
    process's ``nw`` threads; else ``nw`` threads per task) through ``checkpoint``
    (:func:`fastgd.engine.executors.run_resumable`); return (:class:`Cells`, meta,
    whether Ctrl-C stopped it: the cells then hold the finished chunks, the rest
    NOT_RUN)."""
    from fastgd.version import __version__

    inp = job.inputs
    cells = Cells(inp.n_init, inp.n_lr, job.spec.n_th)
    chunks = chunk_table(job)
    counts = {"chunks_total": int(chunks.shape[0])}
    run = runner(job, cells, nw, engine, progress=progress, desc=f"{f} {job.spec.method}")
    stopped = False
    try:
        X.run_resumable(run, chunks, scatter=cells.scatter, finish=None, counts=counts,
                        checkpoint=checkpoint, job=job, func=f, fields=FIELDS,
                        summary=dict(method=job.spec.method, n_init=inp.n_init,
                                     n_lr=inp.n_lr, widths=inp.widths.tolist()))
    except G.Interrupted:
        stopped = True
    meta = {"fastgd": __version__, **counts,
            "engine": "local" if engine is None else type(engine).__name__}
    return cells, meta, stopped


def runner(job, cells, nthreads, engine, *, progress, desc):
    """The ``run(todo, on_done, on_result)`` of
    :func:`fastgd.engine.executors.run_resumable` for a network sweep: blocks of
    :func:`run_chunks` on this process's threads (``engine`` None) or on an executor,
    scattered into ``cells`` (:class:`Cells`)."""
    def run(todo, on_done, on_result):
        if engine is None:
            X.run_local(lambda rows, nw: run_chunks(job, rows, nw), cells.scatter, todo,
                        nthreads, max_batch=block_rows(job, nthreads), progress=progress,
                        desc=desc, on_done=on_done)
        else:
            X.run_executor(run_chunks, job, cells.scatter, todo, engine, nthreads,
                           progress=progress, desc=desc, on_result=on_result)
    return run


# ------------------------------------------------------------------ final rules


def _stable_check(method, status, tol_at, lr, sharp, beta, optim=None, psharp=None):
    """Batch GD: a converged cell whose minimum is linearly unstable at the rate of its
    next update (lr S > 2 (1 + beta)) met the tolerance on a pass near it and is BOUNDED
    (in place).  An adaptive run is checked only with a frozen preconditioner, converged
    after the freeze, on its preconditioned sharpness ``psharp`` against
    (2 + 2 beta1) / (lr (1 - beta1)) (:mod:`fastgd.net.adaptive`)."""
    if method != "gd":
        return
    optim = optim or _Optim()
    conv = np.flatnonzero(status == Status.CONVERGED)
    rate = np.array([optim.rate(np.ravel(lr)[k] if np.ndim(lr) else lr, tol_at[k])
                     for k in conv], dtype=float)
    if optim.adaptive:
        if not optim.freeze:
            return
        after = tol_at[conv] >= optim.freeze
        bad = after & (np.asarray(psharp)[conv] > optim.threshold(rate) * (1 + 1e-9))
    else:
        bad = rate * np.asarray(sharp)[conv] > 2.0 * (1.0 + beta) * (1 + 1e-9)
    status[conv[bad]] = Status.BOUNDED
    tol_at[conv[bad]] = -1
