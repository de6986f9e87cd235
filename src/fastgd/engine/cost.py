"""The cost model: refuse, in milliseconds and before anything is allocated or any
kernel runs, a call whose memory or work is out of reach.

Every public function that allocates in proportion to its arguments (grids, seeds,
recorded steps, H of size d x d, trajectories, generated datasets) or works in
proportion to them (cells x steps x d, x P for SGD) states its estimate here:

* **memory** (bytes): refused above ``max_bytes``: the function's ``max_bytes=``
  argument where it has one (:func:`fastgd.sweep`), else the environment variable
  ``FASTGD_MAX_BYTES``, else half of physical memory.
* **work** (units: one multiply-add of a kernel's inner loop, turned into a time in
  messages at the rough rate :data:`RATE`; one iteration of a Python-level loop counts as
  :data:`PY_STEP` units): refused above the environment variable ``FASTGD_MAX_WORK``
  (default :data:`MAX_WORK` = 1e13, an hour or more of kernel time).

``FASTGD_MAX_BYTES=0`` / ``FASTGD_MAX_WORK=0`` (or ``inf``) switch a limit off.  The
message gives the figure, the limit, and how to go ahead.
"""

from __future__ import annotations

from fastgd import validate as V

#: Default work limit (multiply-adds).
MAX_WORK = 1e13
#: Work units charged for one iteration of a Python-level loop.
PY_STEP = 1e4
#: Rough kernel throughput used to turn work into a time in messages (units/s).
RATE = 3e9

_ENV_WORK = "FASTGD_MAX_WORK"

# the memory half of the model lives with the argument checks (validate: H must fit)
env_limit, physical_memory, memory_limit = V.env_limit, V.physical_memory, V.memory_limit
fmt_bytes, matrix_bytes = V.fmt_bytes, V.matrix_bytes


def work_limit(max_work=None, func="fastgd"):
    """The work limit (multiply-adds) and a phrase saying where it comes from."""
    if max_work is not None:
        return V.real(func, "max_work", max_work, positive=True, finite=False), "max_work"
    v = V.env_limit(_ENV_WORK, "work units")
    return (v, _ENV_WORK) if v is not None else (MAX_WORK, "the default")


def fmt_time(seconds) -> str:
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h"
    if s < 2 * 3.15e7:
        return f"{s / 86400:.0f} days"
    return f"{s / 3.15e7:.2g} years"


def check(func, name, *, nbytes=0, work=0, what="", work_what="", max_bytes=None,
          max_work=None, hint="reduce it"):
    """Refuse ``func``'s call (naming argument ``name``) if ``nbytes`` or ``work``
    exceeds its limit.  ``what`` / ``work_what`` describe the estimates (e.g.
    "1,000 cells x 61 B")."""
    V.check_bytes(func, name, nbytes, what=what, hint=hint, max_bytes=max_bytes)
    work = float(work)
    if work > 0:
        limit, source = work_limit(max_work, func)
        if work > limit:
            how = "raise max_work=" if source == "max_work" else "set FASTGD_MAX_WORK"
            raise V.fail(func, name,
                         f"small enough to finish in reasonable time (limit {limit:.3g} "
                         f"work units, {source})",
                         f"{work_what + ' = ' if work_what else ''}{work:.3g} units, about "
                         f"{fmt_time(work / RATE)}; {hint}, or {how} to go ahead")


def run(func, name, steps, d, per_step, record):
    """A single run of ``steps`` steps / epochs: its per-step loss recording (and the
    trajectory with ``record``) if it runs to the end (the buffer is allocated lazily and
    returned as a view: a run that stops early touches only what it used), and its work
    ``steps x per_step``."""
    n = float(steps) + 1
    per = 8.0 * (1 + (d if record else 0))
    check(func, name, nbytes=n * per, work=n * per_step,
          what=f"{n:,.0f} recorded {name} x {per:.0f} B",
          work_what=f"{n:,.0f} {name} x {per_step:,.0f}", hint=f"use fewer {name}")


def _count(value):
    """Length of a 1-D argument (lr, condition, seeds list) without converting it;
    1 for a scalar; None when it cannot be told (validation reports it later)."""
    try:
        import numpy as np

        if isinstance(value, (str, bytes)) or value is None:
            return None
        if np.ndim(value) == 0:
            return 1
        return len(value)
    except Exception:
        return None


def sweep_grid(func, method, n_lr, data, condition, steps, epochs, seeds, n, d,
               curve_points, max_bytes, weights=False):
    """The cost of :func:`fastgd.sweep` from its arguments alone, before any dataset is
    generated or array allocated: outputs (and their transposed copies), loss curves,
    generated or stacked datasets, and the work cells x steps x d^2 (GD) or
    cells x epochs x P x d (SGD).  Arguments that are not yet valid are skipped here
    (the full validation reports them)."""
    import numpy as np

    if method not in ("gd", "sgd"):
        return
    T = steps if method == "gd" else epochs
    if T is None:
        T = 1000 if method == "gd" else 100
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)):
        return
    T = V.integer(func, "steps" if method == "gd" else "epochs", T, minimum=0)
    if method == "gd":
        n_seed = 1
    elif isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n_seed = V.integer(func, "seeds", seeds, minimum=1)
    else:
        n_seed = _count(seeds) or 1
    if condition is not None and data is None:
        n_data = _count(condition) or 1
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or \
                isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            return
        dd = V.integer(func, "d", d, minimum=1)
        P = V.integer(func, "n", n, minimum=dd + 1)
        data_bytes = 5.0 * n_data * P * (dd + 1) * 8 + n_data * matrix_bytes(dd, 2)
        check(func, "n" if P > n_data else "condition", nbytes=data_bytes,
              what=f"{n_data:,} generated datasets of {P:,} x {dd}",
              max_bytes=max_bytes, hint="use fewer condition numbers or a smaller n")
    elif data is not None:
        try:
            items = [data] if V.single_pair(data) else list(data)
            shapes = [np.shape(X) for X, _ in items]
        except Exception:
            return
        if not shapes or any(len(s) not in (1, 2) for s in shapes):
            return
        n_data = len(shapes)
        P = max(s[0] for s in shapes)
        dd = max((s[1] if len(s) == 2 else 1) for s in shapes)
    else:
        return
    if isinstance(curve_points, bool) or not isinstance(curve_points, (int, np.integer)):
        return
    cp = V.integer(func, "curve_points", curve_points, minimum=0)
    n_rec = 0
    if cp > 0:
        n_rec = T // max(1, T // max(cp - 1, 1)) + 1
    cells = float(n_data) * n_lr * n_seed
    # what a sweep holds per cell (and its transposed copy in the result): status, 5
    # numbers, the curve, and the final weights only when they are returned
    per_cell = 2.0 * (1 + 8 * (5 + (dd if weights is True else 0)) + 8 * n_rec)
    axes = {"lr": n_lr, "seeds": n_seed, "data" if condition is None else "condition": n_data}
    if n_rec:
        axes["curve_points"] = n_rec
    big = max(axes, key=axes.get)
    what = (f"{n_data:,} datasets x {n_lr:,} rates x {n_seed:,} seeds = {cells:,.0f} cells"
            f" x {per_cell:,.0f} B")
    check(func, big, nbytes=cells * per_cell, what=what, max_bytes=max_bytes,
          hint="reduce the grid or the curve length, or split the sweep")
    per_step = dd * dd if method == "gd" else P * dd
    axes[("steps" if method == "gd" else "epochs")] = T
    axes.pop("curve_points", None)
    big = max(axes, key=axes.get)
    check(func, big, work=cells * T * per_step,
          work_what=f"{cells:,.0f} cells x {T:,} {'steps' if method == 'gd' else 'epochs'}"
          f" x {per_step:,}", hint="reduce the grid or the budget")


def critical(func, method, steps, epochs, seeds, P, d):
    """:func:`fastgd.critical_lr`: GD runs rounds of 64 rates x 2 growth measurements
    of ``steps`` (about 30 rounds); SGD sweeps of 64 rates x seeds x ``epochs`` (up to
    40 rounds, about 10 typically).  Checked before the first round.  Returns
    ``steps`` (validated for GD)."""
    import numpy as np

    if method == "gd":
        if steps is None:
            return None
        steps = V.integer(func, "steps", steps, minimum=100)
        check(func, "steps", work=30.0 * 2 * 64 * steps * d * d,
              work_what=f"~30 rounds x 128 runs x {steps:,} steps x {d * d:,}",
              hint="use fewer steps")
        return steps
    epochs = V.integer(func, "epochs", epochs, minimum=0)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n_seed = V.integer(func, "seeds", seeds, minimum=1)
    else:
        sl = np.asarray(seeds) if V.ndim_of(seeds) == 1 and not isinstance(
            seeds, (str, bytes)) else None
        if sl is None or sl.size == 0 or sl.dtype.kind not in "iu" or np.any(sl < 0):
            raise V.fail(func, "seeds", "a count >= 1 or a non-empty 1-D list of integers "
                         ">= 0", repr(seeds)[:40])
        n_seed = sl.size
    name = "seeds" if n_seed > epochs else "epochs"
    check(func, name, nbytes=64.0 * n_seed * 2 * (1 + 8 * (d + 5)),
          what=f"64 rates x {n_seed:,} seeds", hint="use fewer seeds")
    check(func, name, work=10.0 * 64 * n_seed * epochs * P * d,
          work_what=f"~10 rounds x 64 rates x {n_seed:,} seeds x {epochs:,} epochs x "
          f"{P * d:,}", hint="use fewer seeds or epochs")
    return steps


def lyapunov(func, seeds, epochs, burn, lanes, P, d, rounds=4):
    """:func:`fastgd.theory.sgd_as_critical_lr`: ``rounds`` grids of ``lanes`` rates x
    ``seeds`` runs of ``burn + epochs`` epochs (P x d per epoch), seed keys drawn in
    Python."""
    T = float(burn) + float(epochs)
    name = "seeds" if seeds >= T else "epochs"
    check(func, name, nbytes=2.0 * lanes * seeds * 8 * (d + 6),
          what=f"{lanes} rates x {seeds:,} seeds", hint="use fewer seeds")
    check(func, name, work=rounds * lanes * seeds * T * P * d + seeds * PY_STEP,
          work_what=f"~{rounds} grids x {lanes} rates x {seeds:,} seeds x {T:,.0f} epochs x "
          f"{P * d:,}", hint="use fewer seeds or epochs")


def python_loop(func, name, n, per_item_bytes, per_item_work):
    """A Python-level loop of ``n`` iterations keeping ``per_item_bytes`` each."""
    n = float(n)
    check(func, name, nbytes=n * per_item_bytes, what=f"{n:,.0f} {name} x {per_item_bytes} B",
          work=n * (PY_STEP + per_item_work),
          work_what=f"{n:,.0f} {name} (a Python loop)", hint=f"use fewer {name}")


# ------------------------------------------------------------- networks and chains
#: Lanczos lanes per block and the group size of :func:`fastgd.net.model._top_eig`
_BLOCK, _GROUP_BYTES = 8, 128e6


def lanczos(func, name, n, N, P, m, iters, calls=1, hint="use fewer sharpness_iters or a "
            "smaller width"):
    """The sharpness of ``n`` networks of N parameters (width m, P samples) by Lanczos
    (:func:`fastgd.net.lanczos.top_eig`, in ``calls`` calls): memory of one group of
    lanes (at least a block of 8; Lanczos vectors, forward parts), work of every lane
    (k = min(N, iters) HVPs of about 12 P N and the reorthogonalisation, 4 k N per step)."""
    if n <= 0:
        return
    k = float(min(N, iters))
    lane = 8.0 * (N * (k + 5) + P * (4.0 * m + 1))
    lanes = float(n) + (_BLOCK - 1) * calls
    group = max(_BLOCK * lane, min(lanes * lane, _GROUP_BYTES))
    check(func, name, nbytes=group, what=f"Lanczos vectors of {k:,.0f} x {N:,} x 8 lanes",
          work=lanes * k * (12.0 * P * N + 4.0 * k * N),
          work_what=f"{lanes:,.0f} Lanczos lanes x {k:,.0f} HVPs x {12.0 * P * N:,.0f}",
          hint=hint)


def ntk(func, name, n, P, N, m, dense_p):
    """The top NTK eigenvalue of ``n`` networks (:func:`fastgd.net.model._ntk_top`): a
    dense P x P kernel and its eigenvalues up to ``dense_p`` samples, matrix-free
    Lanczos on K v = J (J^T v) / P above (P x m forward parts, Lanczos vectors; about 64
    products of 8 P N and their reorthogonalisation)."""
    if P <= dense_p:
        nbytes, work = 6 * 8.0 * P * P, float(n) * (P * P * (m + 3) + 0.5 * P ** 3)
    else:
        nbytes = 8.0 * P * (3 * m + 210)
        work = float(n) * 64 * (8.0 * P * N + 4.0 * 64 * P)
    check(func, name, nbytes=nbytes, what=f"the NTK of {P:,} samples", work=work,
          work_what=f"{n:,} NTK top eigenvalues of {P:,} samples",
          hint="use fewer samples or a smaller width")


def chain_curvature(func, name, n, L, hessian=True):
    """Curvatures of ``n`` chains of depth L (:mod:`fastgd.chain.model`): the
    leave-one-out products (n x L); with ``hessian`` the Hessians (n x L x L, built by a
    Python loop over the L^2/2 pairs, each O(n L)) and their eigenvalues (n L^3)."""
    n, L = float(n), float(L)
    if not hessian:
        check(func, name, nbytes=4 * 8.0 * n * L, what=f"{n:,.0f} x {L:,.0f} products",
              work=n * L * 8, hint="use a shallower chain")
        return
    check(func, name, nbytes=3 * 8.0 * n * L * L,
          what=f"{n:,.0f} Hessians of {L:,.0f} x {L:,.0f}",
          work=L * L / 2 * (PY_STEP + 2 * n * L) + n * L ** 3,
          work_what=f"{n:,.0f} Hessians of depth {L:,.0f}",
          hint="use a shallower chain or fewer points")


#: work units per lane, step (GD) or epoch (SGD) and parameter-sample product of the
#: network kernels; every chunk of lanes costs at least a whole block of 8
NET_GD, NET_SGD, NET_BLOCK = 8.0, 24.0, 8


def net_lanes(n_lr, lanes=32):
    """Lanes a chunk table of ``n_lr`` rates costs (chunks of ``lanes``, each at least a
    block of :data:`NET_BLOCK`)."""
    full, rest = divmod(int(n_lr), lanes)
    return full * lanes + (-(-rest // NET_BLOCK) * NET_BLOCK if rest else 0)
