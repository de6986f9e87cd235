"""Per-lane helpers shared by the linear-unit SGD and GD chunk kernels.

A lane's end (:func:`_stop`), the write-out of a chunk (:func:`_flush`) and the
renormalisation of a lane for growth-rate runs (:func:`_renorm`, :func:`_log_norm`);
layouts and conventions in :mod:`fastgd.linear.kernels`.
"""

import numba
import numpy as np

from fastgd.kernels import CONVERGED, DIVERGED
from fastgd.kernels.jit import jit

#: the lane blocks are LLVM vector code (:mod:`fastgd.kernels.simd`): not under
#: NUMBA_DISABLE_JIT, where the kernels run as Python and take the loop over lanes
SIMD = not numba.config.DISABLE_JIT

#: largest d compiled with the register layout (d a compile-time constant): beyond it the
#: unrolled loops over components no longer vectorise and the streaming layout is faster
#: (bench/ has the comparison)
REGISTER_MAX_D = 8


@jit
def _stop(l, st, t, x, es, src, wfin, fst, ft, floss, fex):
    """Record lane l's end: status ``st`` at step ``t`` with excess ``x`` (a diverged lane
    reports loss inf and the weights ``src``, its last finite iterate)."""
    for i in range(src.shape[0]):
        wfin[i, l] = src[i, l]
    fst[l] = st
    ft[l] = t
    floss[l] = np.inf if st == DIVERGED else es + x
    fex[l] = np.inf if st == DIVERGED else x


@jit
def _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w, out_loss,
           out_excess, out_tol_at, out_div_at, out_logg, rec_every, rec_loss, rec_w):
    """Write every lane of a chunk (lane l is lr index a + l) from its final status,
    step, loss, excess loss and weights, and its recordings at its last step (only
    there: a single run's buffer of ``steps + 1`` records is touched only up to where
    the run stopped; :func:`fastgd.engine.grid.fill_records` fills the rest)."""
    d = wfin.shape[0]
    nrec = rec_loss.shape[3]
    for l in range(fst.shape[0]):
        lane = a + l
        st = fst[l]
        t = ft[l]
        out_status[di, si, lane] = st
        for i in range(d):
            out_w[di, si, lane, i] = wfin[i, l]
        out_loss[di, si, lane] = floss[l]
        out_excess[di, si, lane] = fex[l]
        out_logg[di, si, lane] = logg[l]
        if st == CONVERGED:
            out_tol_at[di, si, lane] = t
        elif st == DIVERGED:
            out_div_at[di, si, lane] = t
        k0 = (t + rec_every - 1) // rec_every  # the first record at or after the end
        if k0 < nrec:
            rec_loss[di, si, lane, k0] = floss[l]
            if rec_w.shape[3] > 0:
                for i in range(d):
                    rec_w[di, si, lane, k0, i] = wfin[i, l]


@jit
def _renorm(l, x, buf, logg):
    """Scale lane l of (x, buf) to unit norm; return False when it is 0 or non-finite."""
    d = x.shape[0]
    s = 0.0
    for i in range(d):
        s += x[i, l] * x[i, l] + buf[i, l] * buf[i, l]
    nrm = np.sqrt(s)
    if nrm > 0.0 and nrm < np.inf:
        logg[l] += np.log(nrm)
        inv = 1.0 / nrm
        for i in range(d):
            x[i, l] *= inv
            buf[i, l] *= inv
        return True
    logg[l] = -np.inf if nrm == 0.0 else np.inf
    return False


@jit
def _log_norm(x, buf, l):
    """log |(x, buf)| of lane l (the growth accumulated since the last renormalisation)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i, l] * x[i, l] + buf[i, l] * buf[i, l]
    return 0.5 * np.log(s)

