"""Single runs of batch GD and SGD on the linear unit, with trajectories.

A single run is a sweep of one cell with recording switched on: it goes through the
same grid kernels as :func:`fastgd.sweep`, so a sweep cell and the matching run are
bit-identical.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, and
batch GD converges iff lr < 2/lambda_max (LeCun et al., Efficient BackProp, 1998).
"""

from __future__ import annotations

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.linear import checks as CK
from fastgd.linear import problem as PB
from fastgd.linear.result import Run
from fastgd.status import Status

#: the ``optimizer=`` choices of :func:`gd` (the adaptive ones: :mod:`fastgd.linear.adaptive`)
OPTIMIZERS = ("gd", "adam", "rmsprop", "adagrad")


def _adaptive(f, X, y, lr, steps, options, momentum, nesterov):
    """``gd(optimizer=...)`` for an adaptive optimizer: momentum belongs to plain GD."""
    from fastgd.linear.adaptive import run_adaptive

    if V.real(f, "momentum", momentum) != 0 or V.boolean(f, "nesterov", nesterov):
        raise V.fail(f, "momentum", "0 (and nesterov False) with an adaptive optimizer "
                     "(Adam's own momentum is betas[0])", momentum)
    return run_adaptive(f, X, y, lr, steps, **options)


def _plain_gd_only(f, warmup, schedule, freeze_preconditioner):
    """Refuse the adaptive-only options with ``optimizer="gd"`` (the GD kernels have no
    schedule), naming the argument."""
    if not (isinstance(warmup, int | np.integer) and not isinstance(warmup, bool)
            and warmup == 0):
        raise V.fail(f, "warmup", "0 with optimizer='gd' (warm-up needs an adaptive "
                     "optimizer: optimizer='adam')", warmup)
    if not (isinstance(schedule, str) and schedule == "constant"):
        raise V.fail(f, "schedule", "'constant' with optimizer='gd'", schedule)
    if freeze_preconditioner is not None:
        raise V.fail(f, "freeze_preconditioner", "None with optimizer='gd'",
                     freeze_preconditioner)


def _common(f, lr, steps, stepname, momentum, nesterov, tol, blowup, record):
    lr = V.real(f, "lr", lr, positive=True)
    steps = V.integer(f, stepname, steps, minimum=0)
    momentum = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    record = V.boolean(f, "record", record)
    return lr, steps, momentum, nesterov, tol, blowup, record


def _launch(prob, spec, lr, momentum, w0, out, seed=None):
    """Run a one-cell grid on ``prob`` (:func:`fastgd.linear.table.launch`)."""
    from fastgd.linear.contract import linear_inputs
    from fastgd.linear.executors import launch

    inputs = linear_inputs([prob], [lr], momentum, w0,
                           seeds=None if seed is None else [seed])
    launch(spec, inputs, G.make_chunks(1, 1, 1, 1), 1, out)


def _to_run(out, n, record, lr, method, unit, prob, w0):
    st = Status(int(out.status[0, 0, 0]))
    end = n
    if st == Status.CONVERGED:
        end = int(out.tol_at[0, 0, 0])
    elif st == Status.DIVERGED:
        end = int(out.div_at[0, 0, 0])
    # views of the lazily allocated records: only the pages up to the end were touched
    losses = out.rec_loss[0, 0, 0, : end + 1]
    traj = out.rec_w[0, 0, 0, : end + 1] if record else None
    return Run(w=out.w[0, 0, 0].copy(), loss=float(out.loss[0, 0, 0]), losses=losses,
               status=st, diverged_at=int(out.div_at[0, 0, 0]),
               steps_to_tol=int(out.tol_at[0, 0, 0]), trajectory=traj, lr=lr, method=method,
               unit=unit, excess=float(out.excess[0, 0, 0]),
               growing=bool(CK.growing([prob], out, w0)[0, 0, 0]),
               w_star=prob.wstar.copy(), loss_star=float(prob.estar))


@single_blas
def gd(X, y, lr, steps, *, w0=None, momentum=0.0, nesterov=False, bias=False, record=False,
       tol=ST.DEFAULT_TOL, blowup=1e12, optimizer="gd", betas=(0.9, 0.999), eps=1e-8,
       warmup=0, lr_init=0.0, schedule="constant", decay_steps=None, decay_factor=None,
       freeze_preconditioner=None, pre_freeze_lr=None) -> Run:
    """Batch gradient descent on E(w) = 1/(2P) sum_p (y_p - w.x_p)^2.

    Parameters
    ----------
    X : array (P, d)
        Inputs.  y : array (P,) targets.
    lr : float
        Learning rate eta (> 0).  Converges iff eta < 2/lambda_max (with momentum beta:
        eta < 2(1 + beta)/lambda_max; Nesterov: (2 + 2 beta)/((1 + 2 beta) lambda_max)).
    steps : int
        Number of steps (>= 0).
    w0 : array (d,) or (d + 1,), optional
        Initial weights (default zeros).  With ``bias=True`` a length-(d + 1) vector
        sets the initial bias (last entry).
    momentum : float in [0, 1)
        Heavy-ball coefficient beta in PyTorch's form: buf <- beta buf + g, w <- w - eta buf.
    nesterov : bool
        Nesterov momentum, PyTorch's form: w <- w - eta (g + beta buf).
    bias : bool
        Append a constant input 1 (the unit's bias); H becomes the augmented
        second-moment matrix.
    record : bool
        Keep the weight trajectory.
    tol : float
        Converged when E(w) - E* <= tol * (E(w0) - E*); the run then stops.  Default
        ``fastgd.DEFAULT_TOL`` = 1e-8, the same as :func:`fastgd.sweep`.
    blowup : float
        Diverged when E(w) > blowup * max(E(w0), E(0)) or E(w) is not finite.
    optimizer : {"gd", "adam", "rmsprop", "adagrad"}
        "gd" (default): plain / heavy-ball / Nesterov GD, the kernels above.  The adaptive
        ones (PyTorch's / optax's convention: bias-corrected moments, ``eps`` added to
        sqrt(v_hat)) run :func:`fastgd.linear.adaptive.adaptive_gd` and return its
        ``AdaptiveRun``; ``betas``, ``eps``, ``warmup`` (linear warm-up over that many
        steps from ``lr_init``), ``schedule`` ("constant", "cosine", "step" with
        ``decay_steps`` / ``decay_factor``), ``freeze_preconditioner`` (freeze v_hat and
        the bias factors after that many steps) and ``pre_freeze_lr`` are theirs and
        documented there.  Momentum must be 0 with them.

    Returns
    -------
    Run

    Notes
    -----
    The kernel runs in error coordinates e = w - w* in the eigenbasis of H, taken from
    the SVD of X (not from a formed X^T X / P, which loses the small eigenvalues once
    kappa(H) passes ~1e8): a step costs O(d), not O(P d).  The reported ``loss`` and
    ``excess`` are recomputed from the data for the weights returned.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> fg.gd(X, y, lr=1.5, steps=500).status.name, fg.gd(X, y, lr=2.5, steps=500).status.name
    ('CONVERGED', 'DIVERGED')
    """
    f = "gd"
    if V.choice(f, "optimizer", optimizer, OPTIMIZERS) != "gd":
        return _adaptive(f, X, y, lr, steps, dict(
            optimizer=optimizer, betas=betas, eps=eps, warmup=warmup, lr_init=lr_init,
            schedule=schedule, decay_steps=decay_steps, decay_factor=decay_factor,
            freeze_preconditioner=freeze_preconditioner, pre_freeze_lr=pre_freeze_lr, w0=w0,
            bias=bias, tol=tol, blowup=blowup, record=record), momentum, nesterov)
    _plain_gd_only(f, warmup, schedule, freeze_preconditioner)
    prob = PB.prepare(f, X, y, bias)
    d_in = prob.d - int(prob.bias)
    lr, steps, momentum, nesterov, tol, blowup, record = _common(
        f, lr, steps, "steps", momentum, nesterov, tol, blowup, record)
    _cost.run(f, "steps", steps, prob.d, prob.d, record)
    w0 = PB.initial_weights(f, w0, prob, d_in)
    from fastgd.linear.table import KernelSpec

    out = G.Outputs(1, 1, 1, prob.d, n_rec=steps + 1, rec_w=record, lazy=True)
    spec = KernelSpec("gd", prob.d, steps, tol, blowup, momentum=momentum != 0,
                      nesterov=nesterov)
    _launch(prob, spec, lr, momentum, w0, out)
    CK.finalize([prob], out, w0, tol, steps)
    return _to_run(out, steps, record, lr, "gd", "step", prob, w0)


@single_blas
def sgd(X, y, lr, epochs, *, batch_size=1, order=ST.DEFAULT_ORDER, seed=0, w0=None,
        momentum=0.0, nesterov=False, bias=False, record=False, tol=ST.DEFAULT_TOL,
        blowup=1e12, exact=False) -> Run:
    """Stochastic (per-sample or minibatch) gradient descent on the linear unit.

    Each epoch presents P samples in batches of ``batch_size`` (the last batch is
    smaller when it does not divide P); each batch takes one step on its mean
    gradient (1/B) sum_p (w.x_p - y_p) x_p, so ``batch_size=P`` with ``order="cyclic"``
    is batch GD.  Per-sample SGD with rate eta moves about as far per epoch as batch
    GD with rate P*eta (the lecture: eta = 0.2 per sample ~ batch rate 20 on 100 samples).

    Parameters
    ----------
    X, y, lr, w0, momentum, nesterov, bias, tol, blowup, record
        As in :func:`gd` (status is checked once per epoch).
    epochs : int
        Number of passes (>= 0).
    batch_size : int in [1, P]
    order : {"shuffle", "cyclic", "replacement"}
        ``shuffle`` (default, ``fastgd.DEFAULT_ORDER``, as in :func:`fastgd.sweep`,
        :func:`fastgd.critical_lr` and the CLI): a fresh permutation every epoch, what
        SGD means in practice; ``cyclic``: 0..P-1 every epoch (pass it to equal
        scikit-learn's ``SGDRegressor`` with ``shuffle=False``, constant rate, no
        penalty, bit for bit); ``replacement``: i.i.d. draws.
    seed : int
        Key of the counter-based sample order (the same seed gives bit-identical
        results for any thread count).
    exact : bool
        d > 8, per-sample steps: ``False`` (default, as :func:`fastgd.sweep`) takes four
        samples per pass over the weights, the same steps in exact arithmetic with
        rounding ~1e-15 relative apart; ``True`` runs every sample on its own (needed to
        equal scikit-learn bit for bit at d > 8).  d <= 8 is always exact.

    Returns
    -------
    Run
        Losses and trajectory per epoch; ``diverged_at`` / ``steps_to_tol`` in epochs.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> r = fg.sgd(X, y, lr=0.2, epochs=100)
    >>> r.status.name, 0 < r.excess < 0.01
    ('BOUNDED', True)
    """
    f = "sgd"
    prob = PB.prepare(f, X, y, bias)
    d_in = prob.d - int(prob.bias)
    lr, epochs, momentum, nesterov, tol, blowup, record = _common(
        f, lr, epochs, "epochs", momentum, nesterov, tol, blowup, record)
    batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=prob.P)
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    seed = V.integer(f, "seed", seed, minimum=0)
    exact = V.boolean(f, "exact", exact)
    _cost.run(f, "epochs", epochs, prob.d, prob.P * prob.d, record)
    w0 = PB.initial_weights(f, w0, prob, d_in)
    from fastgd.linear.table import KernelSpec

    out = G.Outputs(1, 1, 1, prob.d, n_rec=epochs + 1, rec_w=record, lazy=True)
    spec = KernelSpec("sgd", prob.d, epochs, tol, blowup, momentum=momentum != 0,
                      nesterov=nesterov, batch=batch_size, order=code, exact=exact)
    _launch(prob, spec, lr, momentum, w0, out, seed=seed)
    CK.finalize([prob], out, w0, tol, epochs)
    return _to_run(out, epochs, record, lr, "sgd", "epoch", prob, w0)
