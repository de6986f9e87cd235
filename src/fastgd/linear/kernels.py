"""Kernels for the linear unit E(w) = 1/(2P) sum_p (y_p - w.x_p)^2: the layouts.

The kernels live in four modules, by layout; this module names them for the rest of
the package (:mod:`fastgd.linear.table` picks among them):

* :mod:`fastgd.linear.kernels_sgd` -- per-sample and minibatch SGD (:func:`sgd_kernel`);
* :mod:`fastgd.linear.kernels_gd` -- batch GD in the eigenbasis of H (:func:`gd_kernel`,
  :func:`eig_basis`) and the final check of returned weights (:func:`cell_losses`);
* :mod:`fastgd.linear.kernels_plain` -- the register blocks of plain per-sample SGD
  (lanes' weights in stack arrays held in registers for an epoch; at d = 3, 4 the
  hand-written vector code of :mod:`fastgd.kernels.simd` still runs, see ``REGISTER_IR_D``);
* :mod:`fastgd.linear.kernels_lanes` -- the per-lane helpers they share.

Layout: a *chunk* is up to L runs (lanes) that share one dataset and one
sample order and differ in learning rate (and momentum).  Per-lane state is stored
``[field][lane]`` so that the innermost loop runs over lanes and compiles to SIMD code.
Divergence and convergence are detected without branches in the vector loops: a count
is reduced and a scalar handler (``_stop``) runs only on the (rare) checks where a
lane changes state.  Finished lanes are frozen (their learning rate set to 0) and a
chunk ends as soon as all of its lanes are finished.

Every kernel comes from a factory (:func:`sgd_kernel`, :func:`gd_kernel`) specialised
on two closure constants, which Numba compiles as constants (``cache=True`` keys the
cached code on them); :mod:`fastgd.linear.table` picks the factory arguments:

* ``D`` -- the *register layout* for small d (1 <= D <= :data:`REGISTER_MAX_D`): d is a
  compile-time constant, the loops over components unroll and each lane's update is one
  pass of a vectorised loop over lanes, its weights held in registers for the sample.
  ``D = 0`` -- the *streaming layout* for any d: the d x L weights stream through the
  cache; per-sample SGD takes blocks of four samples per pass over them (``BLOCK = 4``,
  ``kernels_stream._block4``; the same steps in exact arithmetic) unless asked for
  ``exact`` arithmetic (``BLOCK = 1``: sample by sample, the same multiply-adds in the
  same order as the register layout, so that the two are equal bit for bit).
* ``FULL`` -- False: plain per-sample SGD / plain GD (the common case, and the one that
  must compile fast on a cold cache); True adds minibatches, heavy-ball / Nesterov
  momentum and renormalisation (the long-run growth rate).

float32 runs use the same kernels with float32 inputs (a second signature): per-lane
state is allocated with the dtype of the inputs.

Losses: ``loss = E* + excess`` with ``excess = |R (w - w*)|^2 / 2`` (exact for a
quadratic), R = diag(s) V^T / sqrt(P) from the SVD of X (so R^T R = H = X^T X / P), w* a
least-squares minimiser and E* = E(w*).  A sum of squares is never negative, and R keeps
the small singular values of X where a formed H loses them.  Batch GD works in error
coordinates e = w - w* in the eigenbasis of H (lam = s^2), where the excess is
sum_i lam_i z_i^2 / 2; plain GD takes blocks of 16 steps per pass over the lanes where
bounds of the excess show that no lane changes state within them (any d).  The status
rules and the momentum step are the scalar functions of :mod:`fastgd.kernels.steps`,
shared with the one-run-per-thread kernels of :mod:`fastgd.linear.scalar` (CPU and GPU).

Output arrays are indexed ``[data, seed, lr]``; recordings ``[data, seed, lr, k]``
(loss) and ``[data, seed, lr, k, i]`` (weights), written by the kernel up to the step
where a lane stops (the API fills the rest); a zero-length record axis switches
recording off.
"""

from fastgd.linear.kernels_gd import cell_losses, eig_basis, gd_kernel  # noqa: F401
from fastgd.linear.kernels_lanes import REGISTER_MAX_D, SIMD  # noqa: F401
from fastgd.linear.kernels_sgd import (  # noqa: F401
    _block4,
    _excess,
    _quiet,
    sgd_kernel,
)
