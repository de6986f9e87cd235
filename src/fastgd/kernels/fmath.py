"""tanh as plain arithmetic, written once for the kernels' loops and their vector code.

libm's ``tanh`` is a call per element, which LLVM cannot vectorise: it bounded the speed
of the tanh networks whatever the rest of the kernel did.  :func:`tanh_body` is one
rational function on the whole range: tanh(x) = c P(c^2) / Q(c^2) with c = min(|x|,
:data:`XMAX`), P and Q of degree 9 with positive coefficients (the (19, 18) odd/even
form Eigen and XLA use for double precision), the result capped at 1 and given the sign
of x.  The coefficients are a minimax fit of tanh(x)/x in relative error on |x| <= XMAX
(7.2e-17 before they are rounded to doubles), made by ``scripts/tanh_minimax.py`` (a
Remez exchange in 60-digit arithmetic).  Two Horner chains of multiply-adds, one
division, a cap and a sign: it replaced Cephes' tanh (a rational function below 0.625,
1 - 2 / (exp(2|x|) + 1) above, both evaluated branch-free and selected), which took
about twice the operations: 24.5 -> 16.3 cycles per 4-double vector in a stream (one
core, AVX2).  Against the correctly rounded tanh (30-digit ``mpmath``, 85,000 points):
within 7 ulp (8 with ``FASTGD_CONTRACT=0``), 0.9 ulp on average (Cephes' was within 2;
XLA's float64 tanh, Eigen's rational of the same degrees with other coefficients, came
within 5e-16 of NumPy's in a check on [-4, 4]).  tanh(+-0) = +-0, tiny and subnormal x
give x, tanh(+-inf) = +-1 (the fit evaluates to 1 at XMAX), NaN stays NaN, |tanh| <= 1.

The body is one Python function over an operations namespace: :data:`tanh` runs it
under Numba on scalars (the loops), :func:`emit_tanh` runs it on LLVM vector values
(:mod:`.simd`), operation for operation, so both give the same bits (tested).  The
kernels that inline its vector form live in other files: an edit here reaches their
cached code through :data:`fastgd.kernels.jit.SOURCE_DIGEST`.
"""

import types as _pytypes

import numpy as np
from llvmlite import ir
from numba.core import cgutils

from fastgd.kernels.jit import jit

#: tanh(x) / x ~ P(z) / Q(z), z = x^2, |x| <= XMAX: coefficients of z^0 ... z^9
_TP = (
    1.0, 0.15180502318445752, 0.005974662017601704, 9.360093173222943e-05,
    6.830078829336546e-07, 2.4401425480234703e-09, 4.169574058131783e-12,
    3.061698060493182e-15, 7.405680712428028e-19, 2.4972316396116537e-23,
)
_TQ = (
    1.0, 0.48513835651779025, 0.03435411419019994, 0.0008281120943460571,
    8.753312110697548e-06, 4.462799123847081e-08, 1.1108925044415854e-10,
    1.2698090158890927e-13, 5.626854121335801e-17, 6.21480028952834e-21,
)
#: the end of the fit: above it tanh(x) rounds to 1 (from x = 19.06 on)
XMAX = 19.1


def tanh_body(x):
    """tanh(x) from + * /, comparisons and the operations ``where(c, a, b)`` (a if c
    else b), ``fabs`` and ``copysign``: the module's scalar ones, or others bound by
    :func:`_bind` (LLVM vectors)."""
    a = fabs(x)
    c = where(a > XMAX, XMAX, a)  # NaN stays NaN
    z = c * c
    p = _TP[9]
    for k in range(8, -1, -1):
        p = p * z + _TP[k]
    q = _TQ[9]
    for k in range(8, -1, -1):
        q = q * z + _TQ[k]
    t = c * p / q
    return copysign(where(t > 1.0, 1.0, t), x)


# --------------------------------------------------------------- scalars (Numba loops)
def _splat(ty, v):
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [v] * ty.count)
    return ir.Constant(ty, v)


@jit
def _where(c, a, b):
    return a if c else b


@jit
def _fabs(x):
    return abs(x)


@jit
def _copysign(x, y):
    return np.copysign(x, y)


#: tanh_body's operations on scalars
fabs, where, copysign = _fabs, _where, _copysign


def _bind(name, **ops):
    """:func:`tanh_body` with its operations bound to ``ops``."""
    f = _pytypes.FunctionType(tanh_body.__code__, {**globals(), **ops}, name)
    f.__qualname__ = name
    f.__doc__ = tanh_body.__doc__
    return f


#: tanh of a float64 (:func:`tanh_body`), for the kernels' loops
tanh = jit(_bind("tanh"))


# ---------------------------------------------------------------- LLVM vector values
class _V:
    """An LLVM vector of doubles with Python's arithmetic (IEEE, as Numba lowers it)."""

    def __init__(self, b, v):
        self.b, self.v = b, v

    def _c(self, o):
        return o.v if isinstance(o, _V) else _splat(self.v.type, float(o))

    def __add__(self, o):
        return _V(self.b, self.b.fadd(self.v, self._c(o)))

    def __radd__(self, o):
        return _V(self.b, self.b.fadd(self._c(o), self.v))

    def __sub__(self, o):
        return _V(self.b, self.b.fsub(self.v, self._c(o)))

    def __rsub__(self, o):
        return _V(self.b, self.b.fsub(self._c(o), self.v))

    def __mul__(self, o):
        return _V(self.b, self.b.fmul(self.v, self._c(o)))

    def __rmul__(self, o):
        return _V(self.b, self.b.fmul(self._c(o), self.v))

    def __truediv__(self, o):
        return _V(self.b, self.b.fdiv(self.v, self._c(o)))

    def __rtruediv__(self, o):
        return _V(self.b, self.b.fdiv(self._c(o), self.v))

    def __neg__(self):
        return _V(self.b, self.b.fneg(self.v))

    def __gt__(self, o):
        return self.b.fcmp_ordered(">", self.v, self._c(o))

    def __lt__(self, o):
        return self.b.fcmp_ordered("<", self.v, self._c(o))


def emit_tanh(builder, v):
    """tanh of every element of the LLVM double vector ``v`` (:func:`tanh_body`)."""
    vt = v.type

    def call(name, *xs):
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(vt, [vt] * len(xs)),
                                            f"llvm.{name}.v{vt.count}f64")
        return _V(builder, builder.call(fn, [x.v for x in xs]))

    def where(c, a, b):
        a = a if isinstance(a, _V) else _V(builder, _splat(vt, float(a)))
        return _V(builder, builder.select(c, a.v, b.v))

    body = _bind("tanh_ir", fabs=lambda x: call("fabs", x), where=where,
                 copysign=lambda x, y: call("copysign", x, y))
    return body(_V(builder, v)).v
