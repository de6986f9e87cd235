"""tanh as plain arithmetic, written once for the kernels' loops and their vector code.

libm's ``tanh`` is a call per element, which LLVM cannot vectorise: it bounded the speed
of the tanh networks whatever the rest of the kernel did.
:func:`tanh_body` is Cephes' tanh (S. L. Moshier, *Methods and Programs for
Mathematical Functions*, 1989): for |x| < 0.625 an odd rational function, else
1 - 2 / (exp(2|x|) + 1) with Cephes' exp (Cody-Waite reduction by ln 2, a rational
function, a power of two), computed branch-free (both sides, then a select), so the
same operations vectorise, with one division shared by both sides.  Against NumPy's
tanh: at most 2 ulp (4e-16 relative), equal in 80 % of 2 million points (tested on a
dense grid and at the edges); tanh(+-0) = +-0, tanh(+-inf) = +-1, NaN stays NaN.

The body is one Python function over an operations namespace: :data:`tanh` runs it
under Numba on scalars (the loops), :func:`emit_tanh` runs it on LLVM vector values
(:mod:`.simd`), operation for operation, so both give the same bits (tested).
"""

import types as _pytypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastgd.kernels.jit import jit

# Cephes tanh: P(z) / Q(z), Q monic
_TP = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TQ = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
# Cephes exp: ln 2 = C1 + C2, P(r^2), Q(r^2)
_LOG2E = 1.4426950408889634073599
_C1 = 6.93145751953125e-1
_C2 = 1.42860682030941723212e-6
_EP = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EQ = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1,
       2.00000000000000000009e0)
_UMAX = 44.0  # 2|x| above which 2 / (exp(2|x|) + 1) < 2^-60: tanh = +-1 exactly


def tanh_body(x):
    """tanh(x) from + - * /, comparisons and the operations ``where(c, a, b)`` (a if c
    else b), ``fabs``, ``floor`` and ``pow2(k)`` = 2^k for integral k in [0, 64]: the
    module's scalar ones, or others bound by :func:`_bind` (LLVM vectors)."""
    a = fabs(x)
    z = x * x  # |x| < 0.625: x + x z P(z) / Q(z)
    p = (_TP[0] * z + _TP[1]) * z + _TP[2]
    q = ((z + _TQ[0]) * z + _TQ[1]) * z + _TQ[2]
    u = a + a  # else 1 - 2 / (s + 1), s = exp(2|x|) = 2^k (Qe + Pe) / (Qe - Pe)
    u = where(u > _UMAX, _UMAX, u)
    k = floor(_LOG2E * u + 0.5)
    r = u - k * _C1
    r = r - k * _C2
    rr = r * r
    pe = r * ((_EP[0] * rr + _EP[1]) * rr + _EP[2])
    qe = ((_EQ[0] * rr + _EQ[1]) * rr + _EQ[2]) * rr + _EQ[3]
    sn = (qe + pe) * pow2(k)
    sd = qe - pe
    sm = a < 0.625
    t = where(sm, p, sd + sd) / where(sm, q, sn + sd)  # one division for both
    tl = 1.0 - t
    t = where(sm, x + x * z * t, where(x < 0.0, -tl, tl))
    return where(a > 0.0, t, x)  # tanh(+-0) = +-0, NaN stays NaN


# --------------------------------------------------------------- scalars (Numba loops)
_MAGIC = 6755399441055744.0  # 1.5 x 2^52: k + _MAGIC holds an integral k in its low bits


def _pow2_ir(builder, k, ity, fty):
    """2^k for (vectors of) integral doubles k in [0, 1023]: the exponent bits
    (k + 1023) << 52, k read from the bits of k + 1.5 x 2^52 (no float-to-int
    conversion, which LLVM leaves undefined for NaN; NaN gives some finite value, and
    the caller multiplies it by NaN)."""
    m = builder.bitcast(builder.fadd(k, _splat(fty, _MAGIC)), ity)
    n = builder.sub(m, _splat(ity, 0x4338000000000000))
    bits = builder.shl(builder.add(n, _splat(ity, 1023)), _splat(ity, 52))
    return builder.bitcast(bits, fty)


def _splat(ty, v):
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [v] * ty.count)
    return ir.Constant(ty, v)


@intrinsic
def _pow2_bits(typingctx, k):
    """2^k for an integral float64 k in [0, 1023] (:func:`_pow2_ir`)."""
    sig = types.float64(types.float64)

    def codegen(context, builder, signature, args):
        return _pow2_ir(builder, args[0], ir.IntType(64), ir.DoubleType())

    return sig, codegen


def _pow2(k):
    """2^k for an integral float k in [0, 1023] (plain Python; compiled: the bits)."""
    return 2.0 ** k


@overload(_pow2)
def _pow2_jit(k):
    return lambda k: _pow2_bits(k)


@jit
def _where(c, a, b):
    return a if c else b


@jit
def _fabs(x):
    return abs(x)


@jit
def _floor(x):
    return np.floor(x)


#: tanh_body's operations on scalars
fabs, where, floor, pow2 = _fabs, _where, _floor, _pow2


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
    ity = ir.VectorType(ir.IntType(64), vt.count)

    def call(name, x):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt]),
                                            f"llvm.{name}.v{vt.count}f64")
        return _V(builder, builder.call(fn, [x.v]))

    def where(c, a, b):
        a = a if isinstance(a, _V) else _V(builder, _splat(vt, float(a)))
        return _V(builder, builder.select(c, a.v, b.v))

    body = _bind("tanh_ir", fabs=lambda x: call("fabs", x), where=where,
                 floor=lambda x: call("floor", x),
                 pow2=lambda k: _V(builder, _pow2_ir(builder, k.v, ity, vt)))
    return body(_V(builder, v)).v
