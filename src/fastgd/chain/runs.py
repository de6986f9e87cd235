"""Single chain runs: :func:`chain_gd` (batch GD) and :func:`chain_sgd` (per-sample or
minibatch SGD), each a grid of one cell through the sweep kernels, and their result
:class:`ChainRun`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.chain.contract import ChainSpec, chain_inputs
from fastgd.chain.launch import Out, _common, _launch, _sgd_opts
from fastgd.chain.model import _loss, _ntk, _sharpness, _stats, _weights
from fastgd.engine import cost
from fastgd.engine import grid as G
from fastgd.engine.fields import loss_ratio
from fastgd.status import Status

__all__ = ["ChainRun", "chain_gd", "chain_sgd"]


@dataclass(frozen=True)
class ChainRun:
    """Result of one chain run (:func:`chain_gd`, :func:`chain_sgd`).

    Attributes
    ----------
    status : Status
        CONVERGED (excess loss E - E* <= tol x initial excess), DIVERGED (E not finite or
        > blowup x max(E(w0), E(0))), or BOUNDED.
    w : (L,) array
        Final weights; for a diverged run the last iterate that passed the check.
    loss : float
        E(w) at the end (``inf`` when diverged).  excess : float, E(w) - E*.
    sharpness : float
        Top Hessian eigenvalue at ``w`` (a converged run ends with sharpness <= 2/lr).
    ntk : float
        NTK at ``w``.
    lambda0, ntk0, loss0 : float
        Sharpness, NTK and loss at w0 (read lr in units of lr * lambda0 or lr * ntk0).
    max_loss_ratio : float
        max_t E(w_t) / E(w0) over the checked iterates (> 1: the loss spiked, e.g. a
        catapult; ``inf`` when diverged; 1 when E(w0) = 0).
    steps_to_tol : int
        Step (epoch for SGD) at which it converged, -1 if never.
    diverged_at : int
        Step / epoch at which divergence was detected, -1 if none.
    losses : (n,) array
        E per step (epoch), starting with E(w0), up to the step it finished
        (``inf`` at a divergence step).
    trajectory : (n, L) array or None
        Weights per step (``record=True``); at a divergence step the reported ``w``.
    sharpnesses : (n,) array or None
        Sharpness per step (``record=True``).
    lr, loss_scale : float
    method, unit : str
        ``"gd"``/``"step"`` or ``"sgd"``/``"epoch"``.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> r = ch.chain_gd([3.0, 3.0], lr=1.0, steps=200)   # far beyond the edge: diverges
    >>> r.diverged, r.loss, r.losses.shape == (r.diverged_at + 1,)
    (True, inf, True)
    """

    status: Status
    w: np.ndarray
    loss: float
    excess: float
    sharpness: float
    ntk: float
    lambda0: float
    ntk0: float
    loss0: float
    max_loss_ratio: float
    steps_to_tol: int
    diverged_at: int
    losses: np.ndarray
    trajectory: np.ndarray | None
    sharpnesses: np.ndarray | None
    lr: float
    loss_scale: float
    method: str
    unit: str

    @property
    def converged(self) -> bool:
        """True when the run ended CONVERGED."""
        return self.status == Status.CONVERGED

    @property
    def diverged(self) -> bool:
        """True when the run ended DIVERGED."""
        return self.status == Status.DIVERGED

    def save(self, path):
        """Write the run to ``path`` (``.npz`` appended) atomically, with a checksum;
        ``fastgd.load`` reads it back bit for bit (:func:`fastgd.chain.io.save_chain_run`).

        Examples
        --------
        >>> import fastgd as fg, fastgd.chain as ch
        >>> r = ch.chain_gd([0.5, 0.5], lr=0.1, steps=300)
        >>> fg.load(r.save("chain_gd_run")).loss == r.loss
        True
        """
        from fastgd.chain.io import save_chain_run

        return save_chain_run(self, path)

    def __repr__(self):
        """Six lines: status and where it came from, the end, weights, losses,
        curvatures, what was recorded (never the per-step arrays themselves)."""
        end = {Status.CONVERGED: self.steps_to_tol, Status.DIVERGED: self.diverged_at}.get(
            self.status, self.losses.shape[0] - 1)
        how = {Status.CONVERGED: "converged at", Status.DIVERGED: "diverged at"}.get(
            self.status, "stopped at the budget,")
        w = np.array2string(self.w, precision=6, threshold=6, edgeitems=3,
                            max_line_width=10**6)
        with np.errstate(over="ignore", under="ignore"):  # weights near the float limits
            product = float(np.prod(self.w))
        rec = f"{self.losses.shape[0]} losses" + (
            ", the trajectory and sharpnesses" if self.trajectory is not None else "")
        return "\n".join([
            f"<ChainRun {self.method}: {self.status.name}, depth {self.w.shape[0]}, "
            f"lr {self.lr:g}, loss_scale {self.loss_scale:g}>",
            f"  {how} {self.unit} {end}",
            f"  w = {w}  (product {product:.6g})",
            f"  loss {self.loss:.6g} (excess {self.excess:.3g}), start {self.loss0:.6g}, "
            f"max loss / start {self.max_loss_ratio:.4g}",
            f"  sharpness {self.sharpness:.6g} (lr x {self.lr * self.sharpness:.4g}), "
            f"at start {self.lambda0:.6g} (lr x {self.lr * self.lambda0:.4g}), "
            f"NTK0 {self.ntk0:.6g}",
            f"  recorded: {rec} per {self.unit}"])


def _single(f, method, w0, lr, steps, x, y, loss_scale, record, tol, blowup, sgd_opts=None):
    s = _stats(f, x, y, loss_scale)
    w0 = _weights(f, "w0", w0, batch=False)
    lr = V.real(f, "lr", lr, positive=True)
    steps, tol, blowup = _common(f, steps, "steps" if method == "gd" else "epochs", tol,
                                 blowup)
    record = V.boolean(f, "record", record)
    batch, code, seed = _sgd_opts(f, s, *sgd_opts) if method == "sgd" else (1, 0, None)
    L = w0.shape[0]
    cost.run(f, "steps" if method == "gd" else "epochs", steps, L,
              L * (s.X.shape[0] if method == "sgd" else 1), record)
    # the curvatures at w0 and at the end (and at every recorded step): L x L Hessians
    cost.chain_curvature(f, "w0", 2 + (steps + 1 if record else 0), L)
    out = Out(1, L, n_rec=steps + 1, rec_w=record)
    spec = ChainSpec(method, steps, tol, blowup, batch=batch, order=code)
    _launch(spec, chain_inputs(s, None, None, w0, lr, seed=seed), G.make_chunks(1, 1, 1, 1),
            1, out)
    st = Status(int(out.status[0]))
    end = {Status.CONVERGED: int(out.tol_at[0]), Status.DIVERGED: int(out.div_at[0])}.get(
        st, steps)
    w = out.w[0].copy()
    excess = float(out.excess[0])
    loss0 = float(_loss(w0, s))
    traj = out.rec_w[0, : end + 1].copy() if record else None
    return ChainRun(
        status=st, w=w, loss=float(s.estar + excess), excess=excess,
        sharpness=float(_sharpness(w, s)), ntk=float(_ntk(w, s)),
        lambda0=float(_sharpness(w0, s)), ntk0=float(_ntk(w0, s)), loss0=loss0,
        max_loss_ratio=float(loss_ratio(out.maxloss[0], loss0)),
        steps_to_tol=int(out.tol_at[0]), diverged_at=int(out.div_at[0]),
        losses=out.rec_loss[0, : end + 1].copy(), trajectory=traj,
        sharpnesses=_sharpness(traj, s) if record else None, lr=lr, loss_scale=s.c,
        method=method, unit="step" if method == "gd" else "epoch")


def chain_gd(w0, lr, steps, x=1.0, y=1.0, *, loss_scale=1.0, record=False, tol=1e-10,
             blowup=1e12) -> ChainRun:
    """Batch gradient descent on a scalar chain, E = c/(2P) sum_p (y_p - w_L...w_1 x_p)^2.

    Parameters
    ----------
    w0 : array (L,)
        Initial weights, depth L >= 2 (w0[0] multiplies the input).
    lr : float
        Learning rate eta > 0.  Thresholds in eta scale as 1/c.
    steps : int
        Step budget (>= 0).
    x, y : float or array (P,)
        Samples (default the lecture's x = y = 1).
    loss_scale : float
        c; c = 2 is the lecture's (1 - W1 W2)^2.
    record : bool
        Keep the weight trajectory and the sharpness per step.
    tol : float
        Converged when E - E* <= tol * (E(w0) - E*) and the nearby minimum is linearly
        stable, lr * NTK(w) <= 2 (beyond the edge of stability a chaotic orbit can pass
        within tol of an unstable minimum and leave again: that is not convergence);
        the run stops there.
    blowup : float (>= 1)
        Diverged when E is not finite or E > blowup * max(E(w0), E(0)), E(0) = c/2 mean y^2.
        The floor E(0) keeps a catapult (a run starting next to a minimum that spikes
        10^4-10^5 x its initial loss, then settles at a flatter minimum) from being
        called diverged.

    Returns
    -------
    ChainRun

    Notes
    -----
    A single run is a grid of one cell through the sweep kernel
    (:func:`fastgd.chain.kernels.grid_gd_chain`): a :func:`chain_sweep` cell and the matching run
    are bit-identical.  Each step costs O(L) for any number of samples (sufficient
    statistics mean x^2, mean x y).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> r = ch.chain_gd([0.5, 0.5], lr=0.1, steps=1000, loss_scale=2.0)
    >>> r.status.name, round(float(r.w[0] * r.w[1]), 4)
    ('CONVERGED', 1.0)
    """
    return _single("chain_gd", "gd", w0, lr, steps, x, y, loss_scale, record, tol, blowup)


def chain_sgd(w0, lr, epochs, x=1.0, y=1.0, *, batch_size=1, order="cyclic", seed=0,
              loss_scale=1.0, record=False, tol=1e-10, blowup=1e12) -> ChainRun:
    """Stochastic (per-sample or minibatch) gradient descent on a scalar chain.

    Each epoch presents the P samples in batches of ``batch_size`` (the last batch
    smaller when it does not divide P); each batch takes one step on its mean gradient
    c (1/B) sum_p x_p (pi x_p - y_p) p_i.  ``batch_size=P`` with ``order="cyclic"`` is
    batch GD (to rounding).  Status, losses, trajectory are per epoch; the loss is the
    full E.  When the samples cannot be fitted (inconsistent y/x), SGD fluctuates
    around the minima and typically ends BOUNDED.  Unlike :func:`chain_gd`, CONVERGED is
    the plain rule (excess <= tol x initial excess, checked once per epoch), without the
    linear-stability condition lr NTK <= 2 (SGD's per-sample stability differs).

    Parameters
    ----------
    w0, lr, x, y, loss_scale, record, tol, blowup
        As in :func:`chain_gd`.
    epochs : int
        Number of passes (>= 0).
    batch_size : int in [1, P]
    order : {"cyclic", "shuffle", "replacement"}
        As in :func:`fastgd.sgd` (counter-based, from ``seed``).
    seed : int

    Returns
    -------
    ChainRun

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> r = ch.chain_sgd([0.5, 0.5], 0.05, 500, x=[1.0, 2.0, -1.0], y=[2.0, 4.0, -2.0],
    ...                  order="shuffle", seed=1)
    >>> r.status.name, round(float(r.w[0] * r.w[1]), 4)
    ('CONVERGED', 2.0)
    """
    return _single("chain_sgd", "sgd", w0, lr, epochs, x, y, loss_scale, record, tol, blowup,
                   (batch_size, order, seed))
