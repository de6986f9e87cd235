"""The final check of every cell of the linear unit: its loss and excess loss recomputed
from the data for the weights it returns (:func:`cell_losses`, one kernel call for all
cells), and the status rules that follow (:func:`finalize`, :func:`finalize_block`,
:func:`growing`); the shared set-up of a sweep's checks (:class:`Checks`) and the helper
process that compiles the check's kernel on a cold cache (:func:`precompile_check`)."""

from __future__ import annotations

import numpy as np

from fastgd.engine import helper
from fastgd.linear.problem import BOUNDED, CONVERGED, DIVERGED, Problem, padded, prepare
from fastgd.status import GROWING_FACTOR

#: relative slack of the CONVERGED check on the returned weights: the kernels' excess
#: (from R) and the residuals' agree to ~d * eps * kappa(X), 6e-7 at d = 64, kappa(H) = 1e16
CONVERGED_SLACK = 1e-6


#: doubles of weights per segment of the final check (the unit of work of its kernel:
#: a segment's weights, d x cells, stay in the L1 cache), and the most cells in one
SEGMENT_DOUBLES = 2048
SEGMENT_MAX = 256
#: multiply-adds under which the final check runs on the calling thread only (a thread
#: hand-off costs more)
CHECK_THREADED_WORK = 500_000


def _stack(probs):
    """(X, y, P, w*) of problems as zero-padded stacks (n, P_max, d), (n, P_max), (n,),
    (n, d): the final check's inputs."""
    if len(probs) == 1:
        p = probs[0]
        return (np.ascontiguousarray(p.X)[None], np.ascontiguousarray(p.y)[None],
                np.array([p.P], dtype=np.int64), np.ascontiguousarray(p.wstar)[None])
    return (*padded(probs), np.ascontiguousarray(np.stack([p.wstar for p in probs])))


def _even(size, cap):
    """Cells per segment for groups of ``size`` cells: the fewest segments of at most
    ``cap`` cells (a multiple of 16), evened out and rounded up to a multiple of 16."""
    count = -(-np.asarray(size) // cap)
    per = -(-np.asarray(size) // np.maximum(count, 1))
    return np.maximum(16, per + (-per) % 16)


def _segments(data, d):
    """The final check's work list: (datasets used, cell order, segments).  Cells sorted
    by dataset (stable; a block's cells already are), each dataset's cells cut into the
    fewest segments of at most ``SEGMENT_DOUBLES // d`` cells (32 to
    :data:`SEGMENT_MAX`), all of one size, a multiple of 16 (whole vector blocks of
    the kernel, 8 or 16 cells), but the last: the workers take every n-th segment, so
    equal segments share the work evenly (at d = 10, 256 cells a dataset cut as 192 + 64
    gave one of two threads three quarters of it: 565 -> 440 us for 8,192 cells);
    segment rows (local dataset, first, stop) over the sorted cells, the local dataset
    indexing the datasets used."""
    m = data.size
    cap = int(min(SEGMENT_MAX, max(32, SEGMENT_DOUBLES // max(d, 1))))
    cap -= cap % 16
    if m and data[0] == data[-1] and (m < 3 or not np.any(data != data[0])):
        # one dataset (every block of a relative-rate sweep): equal segments
        seg = _even(m, cap)
        first = np.arange(0, m, seg, dtype=np.int64)
        segs = np.stack([np.zeros_like(first), first, np.minimum(first + seg, m)], axis=1)
        return data[:1].copy(), np.arange(m, dtype=np.int64), np.ascontiguousarray(segs)
    order = (np.arange(m, dtype=np.int64) if m < 2 or np.all(data[1:] >= data[:-1])
             else np.argsort(data, kind="stable").astype(np.int64))
    ds = data[order]
    start = np.flatnonzero(np.r_[True, ds[1:] != ds[:-1]])
    size = np.diff(np.r_[start, m])
    per = _even(size, cap)
    count = -(-size // per)
    seg = np.repeat(per, count)
    first = np.repeat(start, count) + seg * (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    stop = np.minimum(first + seg, np.repeat(start + size, count))
    local = np.repeat(np.arange(start.size), count)
    segs = np.ascontiguousarray(np.stack([local, first, stop], axis=1), dtype=np.int64)
    return ds[start], order, segs


def cell_losses(probs, W, data, nworkers=1, stack=None):
    """E(w) and E(w) - E* of the weights ``W`` (m, d), row c on ``probs[data[c]]``, from
    the data: the loss from the residuals y - X w, the excess as |X (w - w*)|^2 / (2P)
    (never a difference of two losses, which cancels).  Never negative; inf where a
    weight is huge or non-finite.

    One kernel call for every cell of every dataset, on ``nworkers`` threads
    (:func:`fastgd.linear.kernels_gd.cell_losses`); a cell's arithmetic does not depend
    on the other cells, so a sweep cell and the matching single run agree bit for bit.
    ``stack``: :func:`_stack` of all of ``probs``, when already built (:class:`Checks`).
    """
    from fastgd.kernels.threads import fan_out
    from fastgd.linear.kernels_gd import cell_losses as kernel

    d = probs[0].d
    # C-contiguous and writeable (a read-only W, e.g. np.broadcast_to of w0, would compile
    # a second, read-only specialisation of the kernel on a cold cache)
    W = np.require(np.asarray(W, dtype=np.float64).reshape(-1, d), requirements=("C", "W"))
    data = np.ascontiguousarray(np.asarray(data, dtype=np.int64).reshape(-1))
    m = W.shape[0]
    loss = np.empty(m)
    excess = np.empty(m)
    if m == 0:
        return loss, excess
    used, order, segs = _segments(data, d)
    if stack is None:
        stack = _stack([probs[int(k)] for k in used])
    elif used.size != len(probs) or np.any(used != np.arange(used.size)):
        stack = tuple(a[used] for a in stack)  # the datasets used, in that order
    X, y, P, wstar = (np.require(a, requirements=("C", "W")) for a in stack)
    if m * X.shape[1] * d < CHECK_THREADED_WORK:
        nworkers = 1
    helper.wait(_CHECK_HELPER)  # a helper compiling the kernel (precompile_check)
    with np.errstate(all="ignore"):  # overflow is a result here (NUMBA_DISABLE_JIT=1 too)
        fan_out(kernel, (X, y, P, wstar, W, order, loss, excess, segs), nworkers, ())
    bad = ~(np.isfinite(loss) & np.isfinite(excess))
    loss[bad] = np.inf
    excess[bad] = np.inf
    return loss, excess


_CHECK_HELPER = ("linear", "check")


def precompile_check(threads):
    """Where the final check's kernel (:func:`fastgd.linear.kernels_gd.cell_losses`) is
    cold and a sweep on ``threads`` threads may have a helper process
    (:func:`fastgd.engine.helper.allowed`), compile it there
    (:func:`_compile_check_child`) while this process compiles the chunk kernel: the
    first check then loads it from the disk cache (:func:`cell_losses` waits for the
    helper).  A first d = 10 SGD sweep or ``fastgd phase`` on an empty cache: 0.6 s of
    compilation off the critical path.  Returns the process, or None."""
    from fastgd.engine.notice import first_compile
    from fastgd.linear.kernels_gd import cell_losses as kernel

    if not helper.allowed(threads) or not first_compile(kernel):
        return None
    return helper.start(_CHECK_HELPER, __name__, "_compile_check_child")


def _compile_check_child(source):
    """The helper process of :func:`precompile_check`: the final check of one cell on a
    tiny dataset, which compiles the kernel with the argument types of every sweep's
    check (float64 C arrays, any d); nothing where this module is not the file
    ``source`` (another fastgd)."""
    if not helper.same_source(__file__, source):
        raise SystemExit(1)
    X = np.linspace(-1.0, 1.0, 8).reshape(4, 2)
    true_losses(prepare("precompile", X, X @ np.ones(2), False), np.zeros((1, 2)))


def true_losses(prob: Problem, W, nworkers=1):
    """E(w) and E(w) - E* of weights ``W`` (m, d) on one problem (:func:`cell_losses`)."""
    W = np.asarray(W, dtype=np.float64).reshape(-1, prob.d)
    return cell_losses([prob], W, np.zeros(W.shape[0], dtype=np.int64), nworkers)


def _check_cells(probs, data, cells, w0, tol, T, nworkers=1, checks=None):
    """The checks of :func:`finalize` on flat per-cell arrays ``cells`` (status, w, loss,
    excess, tol_at, div_at; changed in place), cell c on ``probs[data[c]]``: one
    vectorised pass over every cell.  Idempotent (a checked block read back from a
    checkpoint comes out unchanged).  ``checks``: the sweep's :class:`Checks`."""
    st = cells["status"]
    idx = np.flatnonzero((st == BOUNDED) | (st == CONVERGED))
    if idx.size == 0:
        return
    di = data[idx]
    W = cells["w"] if idx.size == st.size else cells["w"][idx]
    if checks is None:
        checks = Checks(probs, w0, np.unique(di))
    loss, excess = cell_losses(probs, W, di, nworkers, checks.stack)
    s = st[idx]
    diverged = ~np.isfinite(loss)
    unmet = (s == CONVERGED) & ~(excess <= tol * checks.ex0[di] * (1.0 + CONVERGED_SLACK))
    s = np.where(diverged, DIVERGED, np.where(unmet, BOUNDED, s))
    st[idx] = s
    cells["loss"][idx] = loss
    cells["excess"][idx] = excess
    cells["div_at"][idx] = np.where(diverged, T, cells["div_at"][idx])
    cells["tol_at"][idx] = np.where(s == CONVERGED, cells["tol_at"][idx], -1)


class Checks:
    """What the final checks of one sweep's blocks share, computed once: the datasets as
    zero-padded stacks (``stack``, :func:`_stack`) and the loss and excess loss of the
    initial weights ``w0`` on each (``loss0``, ``ex0``; inf where not computed).
    ``used``: the datasets to compute them for (default all); ``stack``: :func:`_stack` of
    ``probs`` when the caller holds it (e.g. float64 SGD kernel inputs).  A dataset's
    figures do not depend on the others (bit for bit), so the checks give the same bits
    however the sweep is cut in blocks."""

    def __init__(self, probs, w0, used=None, stack=None):
        self._args = (probs, np.asarray(w0, dtype=np.float64), used)
        self.stack = _stack(probs) if stack is None else stack
        self._initial = None

    def initial(self):
        """(loss0, ex0), computed on first use: :func:`fastgd.linear.sweep.sweep` asks
        for them before its first block, unless a helper process compiles the check's
        kernel (:func:`precompile_check`): then the first block's check computes them,
        once the chunk kernel has compiled beside the helper."""
        if self._initial is None:
            probs, w0, used = self._args
            n = len(probs)
            used = np.arange(n, dtype=np.int64) if used is None else used
            loss0 = np.full(n, np.inf)
            ex0 = np.full(n, np.inf)
            loss0[used], ex0[used] = cell_losses(
                probs, np.broadcast_to(w0, (used.size, w0.size)), used, 1, self.stack)
            self._initial = (loss0, ex0)
        return self._initial

    @property
    def loss0(self):
        return self.initial()[0]

    @property
    def ex0(self):
        return self.initial()[1]


_CHECKED = ("status", "w", "loss", "excess", "tol_at", "div_at")


def finalize(probs, out, w0, tol, T, nworkers=1):
    """Check every finished cell of ``out`` against the truth of the weights it returns
    (in place): loss and excess recomputed from residuals (:func:`cell_losses`), so the
    reported loss is the loss of the reported weights on the float64 data, whatever the
    kernel's precision or kappa; a BOUNDED cell whose loss is not finite becomes
    DIVERGED (at the end of its budget ``T``); a CONVERGED cell whose excess exceeds
    ``tol`` x its initial excess (up to :data:`CONVERGED_SLACK`) becomes BOUNDED -- the
    tolerance was met in the kernel's arithmetic, not by the weights returned."""
    n_data = len(probs)
    per = out.status[0].size  # cells per dataset
    cells = {k: getattr(out, k).reshape((n_data * per,) + getattr(out, k).shape[3:])
             for k in _CHECKED}  # views of the contiguous outputs
    data = np.repeat(np.arange(n_data, dtype=np.int64), per)
    _check_cells(probs, data, cells, w0, tol, T, nworkers)


def fill_records(out):
    """Curves of a sweep stay flat after a run stopped: the kernels write a cell's record
    at its last step only, so each converged or bounded cell's last finite record is
    carried forward over the inf its unwritten records start at (also for a CONVERGED
    cell that :func:`finalize` turned BOUNDED: it stopped early).  Diverged cells keep
    inf after their end; cells not run stay inf throughout."""
    rec = out.rec_loss
    if rec.shape[-1] == 0:
        return
    k = np.arange(rec.shape[-1])
    last = np.maximum.accumulate(np.where(np.isfinite(rec), k, 0), axis=-1)
    filled = np.take_along_axis(rec, last, axis=-1)
    keep = (out.status == DIVERGED)[..., None] | np.isfinite(rec)
    rec[...] = np.where(keep, rec, filled)


def finalize_block(probs, res, w0, tol, T, nworkers=1, checks=None):
    """:func:`finalize` for one block of results (a dict of per-cell arrays in row order,
    :func:`fastgd.linear.executors.run_block`), in place: every cell of the block in one
    pass.  Idempotent: a block that was already checked (e.g. read back from a
    checkpoint) comes out unchanged.  ``checks``: the sweep's :class:`Checks` (built
    here when None)."""
    rows = res["rows"]
    data = np.repeat(rows[:, 0], rows[:, 3] - rows[:, 2]).astype(np.int64)
    _check_cells(probs, data, res, w0, tol, T, nworkers, checks)


def growing(probs, out, w0, checks=None):
    """(n_data, n_seed, n_lr) bool: BOUNDED cells whose final loss exceeds
    :data:`GROWING_FACTOR` x max(initial loss, loss at w = 0).  ``checks``: the sweep's
    :class:`Checks` (built here when None)."""
    loss0 = (Checks(probs, w0) if checks is None else checks).loss0
    scale = np.maximum(loss0, np.array([p.c0 for p in probs]))
    with np.errstate(invalid="ignore", over="ignore"):
        return (out.status == BOUNDED) & \
            (out.loss > GROWING_FACTOR * scale[:, None, None])
