"""The network's kernel contract: its spec, its inputs and its job, as typed frozen values.

:class:`NetSpec` holds the scalars every cell of a grid shares (method, budget,
thresholds, momentum, SGD options, the optimizer, what is recorded and which curvature
each cell reports), :class:`NetInputs` the arrays the kernels read (the data, every
initialisation's parameters, widths, output scales and sample-order keys, the rates;
for a sweep also the top Ritz vectors at theta0 that warm-start each cell's Lanczos),
built by :func:`net_inputs`, the one builder, and :class:`NetJob` both with the lanes
per chunk: what the engines (:mod:`fastgd.engine.executors`) ship to a worker and what
keys a checkpoint directory.  The network's launcher (:mod:`fastgd.net.launch`,
registered in :mod:`fastgd.engine.table` for ("net", "gd") and ("net", "sgd")) is the
one place that turns them into the kernel's argument list.

Cells are those of a flattened (init x lr) grid: cell k runs init ``k // n_lr`` at the
rate ``lrs[k // n_lr, k % n_lr]``; the chunk table's rows are ``(init, 0, lr_start,
lr_stop)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fastgd.engine.table import writable
from fastgd.net.adaptive import _Optim
from fastgd.net.model import LANCZOS_ITERS, _Model

__all__ = ["NetInputs", "NetJob", "NetSpec", "net_inputs"]


@dataclass(frozen=True)
class NetSpec:
    """What a network grid kernel runs: the scalars shared by every cell.

    Attributes
    ----------
    method : {"gd", "sgd"}
    steps : int
        Budget in steps (epochs for SGD).
    tol, blowup : float
        Convergence and divergence thresholds (:func:`fastgd.net.net_gd`).
    beta : float
        Heavy-ball momentum.
    batch : int
        SGD batch size.
    order : int
        SGD order code (:data:`fastgd.status.ORDERS`).
    gtol : float
        The gradient rule of CONVERGED (0: off).
    optim : fastgd.net.adaptive._Optim
        The optimizer (plain GD / SGD by default, or Adam, RMSProp, AdaGrad).
    n_rec : int
        Losses recorded per cell (a single run: steps + 1; a sweep: 0).
    rec_every : int
        Parameters recorded every ``rec_every`` steps (0: none; a sweep: its
        ``sharpness_every``, each cell then reports its sharpness curve).
    sharpness : bool
        Sweeps: each cell reports its final sharpness (Lanczos, ``iters`` HVPs).
    iters : int
        Lanczos steps of the sharpness.
    backend : str
        ``"cpu"``.
    model : str
        ``"net"``: the key of :mod:`fastgd.engine.table`.

    Examples
    --------
    >>> from fastgd.net.contract import NetSpec
    >>> spec = NetSpec("gd", 100, 1e-8, 1e12, rec_every=10)
    >>> spec.model, spec.method, spec.n_th, spec.optim.name
    ('net', 'gd', 11, 'gd')
    """

    method: str
    steps: int
    tol: float
    blowup: float
    beta: float = 0.0
    batch: int = 1
    order: int = 0
    gtol: float = 0.0
    optim: _Optim = _Optim()
    n_rec: int = 0
    rec_every: int = 0
    sharpness: bool = False
    iters: int = LANCZOS_ITERS
    backend: str = "cpu"
    model: str = "net"

    @property
    def n_th(self) -> int:
        """Recorded parameter vectors per cell."""
        return self.steps // self.rec_every + 1 if self.rec_every else 0


@dataclass(frozen=True, eq=False)
class NetInputs(_Model):
    """The inputs of the network kernels: the data, the initialisations, the rates.

    Attributes
    ----------
    X, y : (P, d), (P,) arrays
        The data.
    act : int
        Activation code of the kernels; ``activation`` its name, ``param`` the
        parametrisation (``"ntk"`` or ``"standard"``), ``bias`` whether there are hidden
        biases, ``c0`` = E(0) = 1/2 mean y^2.
    widths, scales : (n_init,) arrays
        Width m and output scale (1/sqrt(m) or 1) of each initialisation.
    init_off : (n_init + 1,) int64
        Offsets of each initialisation's parameters in ``inits``.
    inits : (sum N,) array
        The initial parameters theta0, concatenated.
    keys : (n_init, 2) int64
        Sample-order keys (SGD; zeros for GD).
    lrs : (n_init, n_lr) array
        The absolute rates of each initialisation's cells.
    v0, pv0 : (sum N,) arrays or None
        Sweeps: the top Ritz vector at theta0 of H (``v0``) and of P^-1/2 H P^-1/2
        (``pv0``, adaptive methods), laid out as ``inits``: each cell's Lanczos starts
        from its initialisation's vector.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.contract import net_inputs
    >>> from fastgd.net.model import _init, _model
    >>> M = _model("demo", np.linspace(-1, 1, 6)[:, None], np.zeros(6), "tanh", "ntk", False)
    >>> inits = [(m, _init(m, 1, 1.0, 0, False), np.zeros(2, np.int64)) for m in (2, 3)]
    >>> inp = net_inputs(M, inits, [0.1, 0.2])
    >>> inp.n_init, inp.n_lr, inp.init_off.tolist(), inp.take([1]).widths.tolist()
    (2, 2, [0, 4, 10], [3])
    """

    widths: np.ndarray
    scales: np.ndarray
    init_off: np.ndarray
    inits: np.ndarray
    keys: np.ndarray
    lrs: np.ndarray
    v0: np.ndarray | None = None
    pv0: np.ndarray | None = None

    @property
    def n_init(self) -> int:
        """The number of initialisations."""
        return int(self.widths.shape[0])

    @property
    def n_lr(self) -> int:
        """Rates per initialisation."""
        return int(self.lrs.shape[1])

    @property
    def sizes(self) -> np.ndarray:
        """N, the parameter count of each initialisation."""
        return np.diff(self.init_off)

    def model(self) -> _Model:
        """The network and its data (:class:`fastgd.net.model._Model`)."""
        return _Model(self.X, self.y, self.act, self.activation, self.param, self.bias,
                      self.c0)

    def theta0(self, c) -> np.ndarray:
        """theta0 of initialisation ``c`` (a view)."""
        return self.inits[self.init_off[c]: self.init_off[c + 1]]

    def start(self, c, precond=False) -> np.ndarray:
        """The warm start of initialisation ``c``'s Lanczos runs (``pv0`` with
        ``precond``), shaped (1, N)."""
        src = self.pv0 if precond else self.v0
        return src[self.init_off[c]: self.init_off[c + 1]][None]

    def take(self, idx) -> NetInputs:
        """The inputs restricted to the initialisations ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        parts = [np.arange(self.init_off[c], self.init_off[c + 1]) for c in idx]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(self.sizes[idx])]).astype(np.int64)

        def pick(a):
            return None if a is None else np.ascontiguousarray(a[flat])

        return dataclasses.replace(
            self, widths=np.ascontiguousarray(self.widths[idx]),
            scales=np.ascontiguousarray(self.scales[idx]), init_off=off,
            inits=pick(self.inits), keys=np.ascontiguousarray(self.keys[idx]),
            lrs=np.ascontiguousarray(self.lrs[idx]), v0=pick(self.v0), pv0=pick(self.pv0))

    def writable(self) -> NetInputs:
        """The inputs with every read-only array copied (:func:`fastgd.engine.table.writable`)."""
        return writable(self)


def net_inputs(M, inits, lrs, *, v0=None, pv0=None) -> NetInputs:
    """The kernel inputs of a network grid (the one builder of :class:`NetInputs`).

    Parameters
    ----------
    M : fastgd.net.model._Model
        The checked network and data.
    inits : list of (m, theta0, key)
        Width, initial parameters (N,) and sample-order key (2,) of each initialisation.
    lrs : array (n_lr,) or (n_init, n_lr)
        The absolute rates, shared by every initialisation or a row per initialisation.
    v0, pv0 : list of (N,) arrays, optional
        Sweeps: the warm starts of each initialisation's Lanczos runs
        (:class:`NetInputs`).

    Returns
    -------
    NetInputs

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.contract import net_inputs
    >>> from fastgd.net.model import _init, _model
    >>> M = _model("demo", np.linspace(-1, 1, 6)[:, None], np.zeros(6), "tanh", "ntk", False)
    >>> inp = net_inputs(M, [(4, _init(4, 1, 1.0, 0, False), np.zeros(2, np.int64))], [0.5])
    >>> inp.lrs.shape, inp.inits.shape, float(inp.scales[0])
    ((1, 1), (8,), 0.5)
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    widths = np.array([m for m, _, _ in inits], dtype=np.int64)
    sizes = [t.size for _, t, _ in inits]

    def flat(parts):
        return None if parts is None else np.ascontiguousarray(
            np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]))

    return NetInputs(
        X=M.X, y=M.y, act=int(M.act), activation=M.activation, param=M.param,
        bias=bool(M.bias), c0=float(M.c0), widths=widths,
        scales=np.array([M.scale(m) for m in widths], dtype=np.float64),
        init_off=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        inits=flat([t for _, t, _ in inits]),
        keys=np.ascontiguousarray(np.stack([k for _, _, k in inits]).astype(np.int64)),
        lrs=np.require(np.broadcast_to(lrs, (len(inits), lrs.shape[-1])), requirements=("C", "W")),
        v0=flat(v0), pv0=flat(pv0))


@dataclass(frozen=True, eq=False)
class NetJob:
    """A network grid as the engines ship it to a worker: spec, inputs and the lanes per
    chunk (None: by width, :func:`fastgd.net.launch.chunk_table`).  Picklable (arrays
    and scalars); its fields key a checkpoint directory
    (:func:`fastgd.engine.checkpoint.spec_hash`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.contract import NetJob, NetSpec, net_inputs
    >>> from fastgd.net.model import _init, _model
    >>> M = _model("demo", np.linspace(-1, 1, 6)[:, None], np.zeros(6), "tanh", "ntk", False)
    >>> inp = net_inputs(M, [(4, _init(4, 1, 1.0, 0, False), np.zeros(2, np.int64))],
    ...                  [0.1, 0.2, 0.3])
    >>> NetJob(NetSpec("gd", 10, 1e-8, 1e12), inp).n_cells
    3
    """

    spec: NetSpec
    inputs: NetInputs
    lanes: int | None = None

    @property
    def n_cells(self) -> int:
        """Cells of the grid (n_init x n_lr)."""
        return self.inputs.n_init * self.inputs.n_lr
