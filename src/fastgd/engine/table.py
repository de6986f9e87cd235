"""The kernel table of every model: which launcher runs a (model, method) on a backend.

A *launcher* is the one place a model spells its kernels' argument list::

    launcher(spec, inputs, rows, nworkers, out)

``spec`` is the model's frozen kernel spec (it carries ``model`` and ``method``, and
``backend`` where the model has more than one), ``inputs`` its frozen inputs dataclass,
``rows`` rows ``(data, seed, start, stop)`` of a chunk table, ``nworkers`` the worker
threads and ``out`` the model's output holder.  Each model registers its launchers when
its launch module is imported (the engine never imports a model)::

    from fastgd.engine import table
    table.register("chain", "gd", launch_gd)

and every caller runs a grid with :func:`launch`, which dispatches on the spec.  The
table holds one entry per (model, method, backend): it is bounded by the code, not by
the calls.  The models and where they register:

* ("linear", "gd" | "sgd", "cpu"): :mod:`fastgd.linear.executors` (the kernels of
  :mod:`fastgd.linear.table`; specs :class:`fastgd.linear.table.KernelSpec`, inputs
  :class:`fastgd.linear.contract.LinearInputs`);
* ("chain", "gd" | "sgd", "cpu" | "cuda"): :mod:`fastgd.chain.launch` (specs and inputs
  in :mod:`fastgd.chain.contract`);
* ("net", "gd" | "sgd", "cpu"): :mod:`fastgd.net.launch` (specs and inputs in
  :mod:`fastgd.net.contract`; Adam, RMSProp and AdaGrad are options of the same
  kernel, carried by the spec).

Examples
--------
>>> from dataclasses import dataclass
>>> from fastgd.engine import table
>>> @dataclass(frozen=True)
... class Spec:
...     model: str = "toy"
...     method: str = "gd"
>>> table.register("toy", "gd", lambda spec, inputs, rows, nw, out: out.append(len(rows)))
>>> out = []
>>> table.launch(Spec(), None, [[0, 0, 0, 4]], 1, out)
>>> out
[1]
>>> table.unregister("toy", "gd")
"""

from __future__ import annotations

__all__ = ["launch", "lookup", "register", "registered", "unregister", "writable"]

#: (model, method, backend) -> launcher; filled by the models' launch modules on import
_LAUNCHERS: dict = {}


def _key(model, method, backend):
    for name, v in (("model", model), ("method", method), ("backend", backend)):
        if not isinstance(v, str) or not v:
            raise TypeError(f"engine.table: {name} must be a non-empty str, got {v!r}")
    return (model, method, backend)


def register(model, method, launcher, *, backend="cpu"):
    """Register ``launcher(spec, inputs, rows, nworkers, out)`` for (model, method) on
    ``backend``.  Registering the same launcher again is a no-op (a module imported
    twice); another launcher for a taken key is refused with ``ValueError``.

    Examples
    --------
    >>> from fastgd.engine import table
    >>> def run(spec, inputs, rows, nworkers, out):
    ...     pass
    >>> table.register("toy", "sgd", run)
    >>> table.lookup("toy", "sgd") is run
    True
    >>> table.unregister("toy", "sgd")
    """
    key = _key(model, method, backend)
    if not callable(launcher):
        raise TypeError(f"engine.table.register: launcher for {key} must be callable, got "
                        f"{type(launcher).__name__}")
    old = _LAUNCHERS.get(key)
    if old is not None and old is not launcher and _name(old) != _name(launcher):
        raise ValueError(f"engine.table.register: {key} is already registered "
                         f"({_name(old)}); unregister it first")
    _LAUNCHERS[key] = launcher


def _name(f):
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


def unregister(model, method, *, backend="cpu"):
    """Remove an entry (tests, plug-ins); a missing one is ignored.

    Examples
    --------
    >>> from fastgd.engine import table
    >>> table.unregister("nobody", "gd")
    """
    _LAUNCHERS.pop(_key(model, method, backend), None)


def registered() -> tuple:
    """The registered (model, method, backend) keys, sorted.

    Examples
    --------
    >>> import fastgd.chain, fastgd.linear.executors, fastgd.net
    >>> from fastgd.engine import table
    >>> sorted({key[0] for key in table.registered()})
    ['chain', 'linear', 'net']
    """
    return tuple(sorted(_LAUNCHERS))


def lookup(model, method, backend="cpu"):
    """The launcher of (model, method) on ``backend``; ``LookupError`` naming what is
    registered when there is none (the model's launch module not imported, or a method
    it does not have).

    Examples
    --------
    >>> import fastgd.chain
    >>> from fastgd.engine import table
    >>> callable(table.lookup("chain", "sgd"))
    True
    """
    key = _key(model, method, backend)
    try:
        return _LAUNCHERS[key]
    except KeyError:
        have = ", ".join("/".join(k) for k in sorted(_LAUNCHERS)) or "none"
        raise LookupError(f"engine.table: no launcher for model {model!r}, method "
                          f"{method!r}, backend {backend!r} (registered: {have}); its "
                          "model's launch module registers it when imported") from None


def launch(spec, inputs, rows, nworkers, out):
    """Run ``rows`` of a grid with the launcher of ``spec.model``, ``spec.method`` and
    ``spec.backend`` (``"cpu"`` when the spec has none).

    Parameters
    ----------
    spec : frozen dataclass
        The model's kernel spec (``model``, ``method``, optionally ``backend``).
    inputs : frozen dataclass
        The model's kernel inputs.
    rows : (n, 4) int array
        Rows of the chunk table (handed on as a C-contiguous int64 array).
    nworkers : int
        Worker threads.
    out : object
        The model's output holder, written in place.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd.chain as ch
    >>> from fastgd.chain.contract import ChainSpec, chain_inputs
    >>> from fastgd.chain.launch import Out
    >>> from fastgd.engine import table
    >>> inp = chain_inputs(1.0, 1.0, 1.0, [[0.5, 0.5]], [0.1, 3.0])
    >>> out = Out(2, 2)
    >>> table.launch(ChainSpec("gd", 200, 1e-10, 1e12), inp, [[0, 0, 0, 2]], 1, out)
    >>> out.status.tolist()
    [1, 2]
    """
    import numpy as np

    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    return lookup(spec.model, spec.method, getattr(spec, "backend", "cpu"))(
        spec, inputs, rows, nworkers, out)


def writable(inputs):
    """A model's frozen inputs dataclass with every read-only array field copied (arrays
    deserialised from a buffer, e.g. by Dask, can be read-only: another Numba type, so
    another compiled signature); the same object when none is.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import numpy as np
    >>> from fastgd.engine import table
    >>> @dataclass(frozen=True)
    ... class Inputs:
    ...     x: np.ndarray
    >>> a = np.zeros(3)
    >>> a.flags.writeable = False
    >>> table.writable(Inputs(a)).x.flags.writeable
    True
    """
    import dataclasses

    import numpy as np

    change = {f.name: np.array(v) for f in dataclasses.fields(inputs)
              if isinstance(v := getattr(inputs, f.name), np.ndarray)
              and not v.flags.writeable}
    return dataclasses.replace(inputs, **change) if change else inputs
