"""Adaptive methods (Adam, RMSProp) with a frozen preconditioner, on a quadratic.

Convention (PyTorch's ``torch.optim.Adam`` and optax's ``adam``): moments
m <- beta1 m + (1 - beta1) g, v <- beta2 v + (1 - beta2) g^2, bias-corrected
m_hat = m/(1 - beta1^t), v_hat = v/(1 - beta2^t), step w <- w - eta m_hat/(sqrt(v_hat) + eps)
(eps added to sqrt(v_hat)).  RMSProp (PyTorch's ``RMSprop``, no momentum) is
w <- w - eta g/(sqrt(v) + eps) without bias correction: Adam's formula with beta1 = 0 and
the bias factor 1.

With the preconditioner frozen after T steps (v_hat and the factor 1 - beta1^T held fixed),
Adam on E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (Hessian H = X^T X / P) is heavy ball in the
preconditioned coordinates: with P = (1 - beta1^T) diag(sqrt(v_hat) + eps) and
b = m/(1 - beta1), the update reads b' = beta1 b + g, w' = w - eta (1 - beta1) P^-1 b',
PyTorch's heavy ball at rate eta (1 - beta1) on the matrix P^-1 H (similar to the symmetric
P^-1/2 H P^-1/2, so its eigenvalues are real and positive).  Heavy ball is stable iff
0 < rate x lambda < 2 (1 + beta1) for every eigenvalue (the Jury test on
z^2 - (1 + beta1 - s) z + beta1), so the frozen run is stable iff

    lambda_max(P^-1 H) < (2 + 2 beta1) / (eta (1 - beta1))        (38/eta at beta1 = 0.9)

J. Cohen et al., "Adaptive Gradient Methods at the Edge of Stability", 2022.  With one
learning rate for both phases the preconditioner itself depends on eta (Adam's steps are
scale-free), so a boundary in eta need not exist: these functions take the frozen
preconditioner as given.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from fastgd import validate as V

__all__ = ["adaptive_lr_max", "adaptive_threshold", "preconditioned_sharpness"]


def adaptive_threshold(lr, beta1=0.9) -> float:
    """The preconditioned sharpness at which a frozen-preconditioner Adam run at rate
    ``lr`` loses stability: (2 + 2 beta1)/(lr (1 - beta1)) (2/lr for RMSProp, beta1 = 0).

    Parameters
    ----------
    lr : float
        Learning rate eta (> 0), in the units of 1/curvature.
    beta1 : float
        Adam's first-moment decay, 0 <= beta1 < 1.

    Returns
    -------
    float
        The threshold on lambda_max(P^-1 H) (module docstring).

    Examples
    --------
    >>> from fastgd.theory import adaptive_threshold
    >>> round(adaptive_threshold(1.0, 0.9), 12), adaptive_threshold(0.5, 0.0)
    (38.0, 4.0)
    """
    f = "adaptive_threshold"
    lr = V.real(f, "lr", lr, positive=True)
    beta1 = V.real(f, "beta1", beta1, nonneg=True, below=1.0)
    return float((2.0 + 2.0 * beta1) / (lr * (1.0 - beta1)))


def preconditioned_sharpness(H, v_hat, *, beta1=0.9, eps=1e-8, t=None) -> float:
    """lambda_max(P^-1 H) for the frozen preconditioner P = (1 - beta1^t) diag(sqrt(v_hat) + eps).

    Parameters
    ----------
    H : array_like, shape (d, d)
        Symmetric positive semi-definite Hessian (for the linear unit, X^T X / P under the
        1/2 convention).
    v_hat : array_like, shape (d,)
        The bias-corrected second moment at the freeze (>= 0).
    beta1 : float
        First-moment decay, 0 <= beta1 < 1.
    eps : float
        Added to sqrt(v_hat) (>= 0).
    t : int or None
        The step count at the freeze: the bias factor is 1 - beta1^t.  None: no bias
        correction of the first moment (factor 1; RMSProp, or t large).

    Returns
    -------
    float
        The largest eigenvalue of P^-1/2 H P^-1/2, by SciPy's ``eigh``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.theory import preconditioned_sharpness
    >>> H = np.diag([4.0, 1.0])
    >>> round(preconditioned_sharpness(H, [4.0, 1.0], eps=0.0, beta1=0.0), 12)
    2.0
    >>> round(preconditioned_sharpness(H, [4.0, 1.0], eps=0.0, beta1=0.5, t=1), 12)
    4.0
    """
    return _sharpness("preconditioned_sharpness", H, v_hat, beta1, eps, t)


def _sharpness(f, H, v_hat, beta1, eps, t):
    """:func:`preconditioned_sharpness` with errors naming the public function ``f``."""
    H = V.as_float_array(f, "H", H, 2)
    d = H.shape[0]
    if H.shape != (d, d) or not np.allclose(H, H.T, rtol=1e-12, atol=0.0):
        raise V.fail(f, "H", "a symmetric (d, d) matrix", f"shape {H.shape}")
    v_hat = V.as_float_array(f, "v_hat", V.atleast_1d(f, "v_hat", v_hat), 1)
    if v_hat.shape != (d,) or np.any(v_hat < 0):
        raise V.fail(f, "v_hat", f"{d} values >= 0", f"shape {v_hat.shape}")
    beta1 = V.real(f, "beta1", beta1, nonneg=True, below=1.0)
    eps = V.real(f, "eps", eps, nonneg=True)
    factor = 1.0
    if t is not None:
        t = V.integer(f, "t", t, minimum=1)
        factor = 1.0 - beta1 ** t
    p = factor * (np.sqrt(v_hat) + eps)
    if np.any(p <= 0):
        raise V.fail(f, "v_hat", "sqrt(v_hat) + eps > 0 in every coordinate", "a zero")
    s = 1.0 / np.sqrt(p)
    return float(scipy.linalg.eigh(s[:, None] * H * s[None, :], eigvals_only=True)[-1])


def adaptive_lr_max(H, v_hat, *, beta1=0.9, eps=1e-8, t=None) -> float:
    """Largest stable learning rate of Adam (or RMSProp, ``beta1=0``, ``t=None``) with its
    preconditioner frozen, on a quadratic with Hessian ``H``:
    eta* = (2 + 2 beta1) / ((1 - beta1) lambda_max(P^-1 H)).

    Parameters are those of :func:`preconditioned_sharpness`.  The frozen run is stable
    below eta* and diverges above it (module docstring; Cohen et al. 2022).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.theory import adaptive_lr_max
    >>> H = np.diag([4.0, 1.0])
    >>> round(adaptive_lr_max(H, [4.0, 1.0], beta1=0.0, eps=0.0), 12)   # RMSProp: 2/2
    1.0
    >>> round(adaptive_lr_max(H, [4.0, 1.0], beta1=0.9, eps=0.0, t=1), 12)  # 3.8/(0.1 x 20)
    1.9
    """
    s = _sharpness("adaptive_lr_max", H, v_hat, beta1, eps, t)
    b = float(beta1)
    return float((2.0 + 2.0 * b) / ((1.0 - b) * s))
