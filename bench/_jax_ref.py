"""Independent JAX references for bench/test_bench_jax.py (issue 22 item 4, issue 24
item 6): what a researcher would write instead of fastgd -- float64, ``jax.vmap`` over
the learning rates, a jitted ``lax.fori_loop`` over the steps, ``jax.grad`` for the
gradient, optax's ``adam`` for Adam.  Nothing here imports fastgd.

Import this module only after :func:`configure` (``XLA_FLAGS`` must be set before jax is
imported) and after ``pytest.importorskip("jax")``.

The network is fastgd's (:mod:`fastgd.net.model`)::

    f(x) = s a . phi(W x + b),   E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2,

s = 1/sqrt(m) ("ntk") or 1 ("standard"), theta flat: W (m, d) row-major, then b (with
bias), then a.  The linear unit: E(w) = 1/(2P) |X w - y|^2.
"""

from __future__ import annotations

import os

#: what the JAX rows run under: XLA's CPU client on the same 2 cores as fastgd
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"


def configure(threads: int = 2) -> str:
    """Set ``XLA_FLAGS`` (unless the caller set it) before jax is imported; the value."""
    flags = XLA_FLAGS.replace("=2", f"={threads}")
    os.environ.setdefault("XLA_FLAGS", flags)
    return os.environ["XLA_FLAGS"]


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _net_loss(act, m, d, bias, param):
    """E(theta; X, y) of the two-layer network, in jax.numpy."""
    jax = _jax()
    jnp = jax.numpy
    phi = {"tanh": jnp.tanh, "relu": jax.nn.relu, "identity": lambda z: z}[act]
    s = 1.0 / float(m) ** 0.5 if param == "ntk" else 1.0

    def loss(theta, X, y):
        W = theta[: m * d].reshape(m, d)
        a = theta[m * d + (m if bias else 0):]
        Z = X @ W.T
        if bias:
            Z = Z + theta[m * d: m * d + m]
        f = s * (phi(Z) @ a)
        return 0.5 * jnp.mean((y - f) ** 2)

    return loss


def net_gd(act, m, d, bias=False, param="ntk"):
    """A jitted ``run(theta0, X, y, lrs, steps) -> (thetas (n_lr, N), losses (n_lr,))``:
    full-batch GD of every rate from the same theta0 (vmap over rates, fori_loop over
    steps)."""
    jax = _jax()
    loss = _net_loss(act, m, d, bias, param)
    grad = jax.grad(loss)

    def one(theta0, X, y, lr, steps):
        body = lambda _, t: t - lr * grad(t, X, y)  # noqa: E731
        theta = jax.lax.fori_loop(0, steps, body, theta0)
        return theta, loss(theta, X, y)

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0, None)))


def net_adam(act, m, d, bias=False, param="ntk", b1=0.9, b2=0.999, eps=1e-8):
    """As :func:`net_gd` with optax's ``adam`` (bias-corrected moments, eps added to
    sqrt(v_hat), the convention fastgd follows)."""
    jax = _jax()
    import optax

    loss = _net_loss(act, m, d, bias, param)
    grad = jax.grad(loss)

    def one(theta0, X, y, lr, steps):
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps)

        def body(_, carry):
            theta, state = carry
            upd, state = opt.update(grad(theta, X, y), state, theta)
            return optax.apply_updates(theta, upd), state

        theta, _ = jax.lax.fori_loop(0, steps, body, (theta0, opt.init(theta0)))
        return theta, loss(theta, X, y)

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0, None)))


def linear_adam(b1=0.9, b2=0.999, eps=1e-8):
    """A jitted ``run(X (K, P, d), y (K, P), lrs (n_lr,), w0 (d,), steps) -> w (K, n_lr, d)``:
    full-batch optax Adam on the linear unit, vmap over datasets and rates."""
    jax = _jax()
    jnp = jax.numpy
    import optax

    def loss(w, X, y):
        r = X @ w - y
        return 0.5 * jnp.mean(r * r)

    grad = jax.grad(loss)

    def one(X, y, lr, w0, steps):
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps)

        def body(_, carry):
            w, state = carry
            upd, state = opt.update(grad(w, X, y), state, w)
            return optax.apply_updates(w, upd), state

        w, _ = jax.lax.fori_loop(0, steps, body, (w0, opt.init(w0)))
        return w

    over_lr = jax.vmap(one, in_axes=(None, None, 0, None, None))
    return jax.jit(jax.vmap(over_lr, in_axes=(0, 0, None, None, None)))
