"""The vector code of :mod:`fastgd.net.lanczos` (LLVM IR through Numba intrinsics).

A *row* is one parameter (sample, hidden unit) of the :data:`BLOCK` lanes of a block:
BLOCK contiguous doubles, one LLVM vector (two 256-bit registers).  Each intrinsic runs
the loops of :mod:`fastgd.net.lanczos` (``forward_block``, ``hvp_block``, ``_rdot``,
``_orth``, ``_rmul``) operation for operation on rows, and fuses x y + z where Numba's
contraction fuses it in those loops (:func:`fastgd.kernels.jit.contract`: the left product
of a sum of two products; ``a - c q`` as ``fma(-c, q, a)``), so both give the same bits,
with or without contraction.  Plain Numba does not vectorise those loops (the lanes'
arrays may alias as far as LLVM knows), and the HVP reads every row of the direction and
of the product once per sample; here the forward pass and the HVP take
:data:`SAMPLES` samples per pass (each row read once for all of them; the products still
summed sample after sample) and the Gram-Schmidt passes read the Lanczos vectors once per
sweep.

Arguments of the block intrinsics (:func:`_block_intrinsics`): ``X, p, T, FH, FC, act,
bias, m, ib, ia`` (data, first sample, parameters (N, BLOCK), h = phi(z) (P, m, BLOCK),
the residual factors (P, BLOCK), activation code, bias, width, first bias and output
rows), then ``U, RF, V, ss`` or ``U, RF, V, HV``: R{z} of each sample (S m, BLOCK),
R{f} s^2 / P (S, BLOCK), the direction and the product (N, BLOCK), s^2 / P.  Every array
but ``X`` C-contiguous.

An edit here reaches the cached kernels of :mod:`fastgd.net.lanczos`, which inline this
code, through :data:`fastgd.kernels.jit.SOURCE_DIGEST`.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from fastgd.kernels.fmath import emit_tanh
from fastgd.kernels.jit import contract
from fastgd.kernels.simd import counted_loop
from fastgd.net.kernels import ACT_RELU, ACT_TANH

#: lanes per block (one 512-bit vector of doubles, two 256-bit ones)
BLOCK = 8
_VT = ir.VectorType(ir.DoubleType(), BLOCK)
_TILE = 128  # rows of W per tile of the Gram-Schmidt sweeps (8 KiB, in L1)
_I64 = ir.IntType(64)


def _c(n):
    return ir.Constant(_I64, n)


class _Rows:
    """The arguments of an intrinsic (arrays: their data pointers; scalars as int64 or
    float64) and the row operations on them."""

    def __init__(self, context, builder, sig, args):
        self.b, self.ctx = builder, context
        self.sig = sig
        self.v = []
        for t, a in zip(sig.args, args, strict=True):
            if isinstance(t, types.Array):
                self.v.append((context.make_array(t)(context, builder, a), t))
            elif isinstance(t, types.Float):
                self.v.append(context.cast(builder, a, t, types.float64))
            else:
                self.v.append(context.cast(builder, a, t, types.int64))
        self.fused = contract()

    def code(self, k):
        """Argument k, a literal (the activation code of a kernel built for one
        activation: only that activation's code is emitted), as a Python int."""
        return self.sig.args[k].literal_value

    def ptr(self, k, r):  # row r of the C-contiguous array argument k
        b = self.b
        return b.bitcast(b.gep(self.v[k][0].data, [b.mul(r, _c(BLOCK))]), _VT.as_pointer())

    def ld(self, k, r):
        return self.b.load(self.ptr(k, r), align=8)

    def st(self, x, k, r):
        self.b.store(x, self.ptr(k, r), align=8)

    def splat(self, s):
        b = self.b
        e = b.insert_element(ir.Constant(_VT, ir.Undefined), s, ir.Constant(ir.IntType(32), 0))
        return b.shuffle_vector(e, ir.Constant(_VT, ir.Undefined),
                                ir.Constant(ir.VectorType(ir.IntType(32), BLOCK), [0] * BLOCK))

    def k(self, x):
        return ir.Constant(_VT, [x] * BLOCK)

    def x(self, p, i):  # X[p, i] (argument 0) in every element
        a, t = self.v[0]
        return self.splat(self.b.load(cgutils.get_item_pointer(self.ctx, self.b, t, a, [p, i])))

    def fma(self, x, y, z):  # x y + z
        b = self.b
        if not self.fused:
            return b.fadd(z, b.fmul(x, y))
        f = cgutils.get_or_insert_function(b.module, ir.FunctionType(_VT, [_VT] * 3),
                                           f"llvm.fma.v{BLOCK}f64")
        return b.call(f, [x, y, z])

    def loop(self, n, init, body):
        """for i in range(n): state = body(i, state); the final state."""
        return counted_loop(self.b, n, init, body)

    def dots(self, k, r0, ps, bias, rb):
        """Per sample p of ``ps``: (row rb if bias else 0) + sum_i row r0 + i X[p, i]."""
        b = self.b
        nd = cgutils.unpack_tuple(b, self.v[0][0].shape, 2)[1]
        z0 = b.select(bias, self.ld(k, rb), self.k(0.0))

        def term(i, zs):
            v = self.ld(k, b.add(r0, i))
            return [self.fma(v, self.x(p, i), z) for p, z in zip(ps, zs, strict=True)]

        return self.loop(nd, [z0] * len(ps), term)

    def derivs(self, act, h):
        """phi', phi'' from h = phi(z) as the loops compute them (``act``: the activation
        code, :meth:`code`)."""
        b = self.b
        if act == ACT_RELU:
            return b.select(b.fcmp_ordered(">", h, self.k(0.0)), self.k(1.0), self.k(0.0)), \
                self.k(0.0)
        if act != ACT_TANH:
            return self.k(1.0), self.k(0.0)
        if self.fused:
            g1 = self.fma(b.fneg(h), h, self.k(1.0))
        else:
            g1 = b.fsub(self.k(1.0), b.fmul(h, h))
        return g1, b.fmul(b.fmul(self.k(-2.0), h), g1)

    def phi(self, act, z):
        """h = phi(z): tanh as :func:`fastgd.kernels.fmath.tanh`, relu as max(z, 0.0)
        (``act``: the activation code, :meth:`code`)."""
        b = self.b
        if act == ACT_TANH:
            return emit_tanh(b, z)
        if act == ACT_RELU:
            return b.select(b.fcmp_ordered(">", self.k(0.0), z), self.k(0.0), z)
        return z


def _sig(gen, *args, free=0):
    """The typing of an intrinsic whose code is ``gen(rows, builder)`` (returns nothing);
    its array arguments past the first ``free`` (``X``: any layout) are rows."""
    if any(isinstance(a, types.Array) and a.layout != "C" for a in args[free:]):
        raise TypingError(f"{gen.__name__}: the rows must be C-contiguous")

    def codegen(context, builder, sig, llargs):
        gen(_Rows(context, builder, sig, llargs), builder)
        return context.get_dummy_value()

    return types.void(*args), codegen


def _samples(r, b, S):
    """The arguments common to the block's intrinsics and the S samples p, p + 1, ..."""
    return ([b.add(r.v[1], _c(q)) for q in range(S)], b.icmp_signed("!=", r.v[6], _c(0)),
            cgutils.unpack_tuple(b, r.v[0][0].shape, 2)[1])


def _gen_forward(S, r, b):  # FH, FC from T
    act, m, ib, ia = r.code(5), r.v[7], r.v[8], r.v[9]
    ps, bias, nd = _samples(r, b, S)

    def unit(j, fc):
        zs = r.dots(2, b.mul(j, nd), ps, bias, b.add(ib, j))
        a = r.ld(2, b.add(ia, j))
        out = []
        for p, z, f in zip(ps, zs, fc, strict=True):
            h = r.phi(act, z)
            r.st(h, 3, b.add(b.mul(p, m), j))
            out.append(r.fma(a, h, f))
        return out

    for p, f in zip(ps, r.loop(m, [r.k(0.0)] * S, unit), strict=True):
        r.st(f, 4, p)


def _gen_hvp1(S, r, b):  # U, RF: R{z}, R{f} s^2 / P of V
    act, m, ib, ia = r.code(5), r.v[7], r.v[8], r.v[9]
    ps, bias, nd = _samples(r, b, S)

    def unit(j, rfs):
        us = r.dots(12, b.mul(j, nd), ps, bias, b.add(ib, j))
        a, va = r.ld(2, b.add(ia, j)), r.ld(12, b.add(ia, j))
        out = []
        for q, (p, u, rf) in enumerate(zip(ps, us, rfs, strict=True)):
            r.st(u, 10, b.add(b.mul(j, _c(S)), _c(q)))
            h = r.ld(3, b.add(b.mul(p, m), j))
            g1, _ = r.derivs(act, h)
            out.append(b.fadd(rf, r.fma(va, h, b.fmul(b.fmul(a, g1), u))))
        return out

    for q, rf in enumerate(r.loop(m, [r.k(0.0)] * S, unit)):
        r.st(b.fmul(rf, r.splat(r.v[13])), 11, _c(q))


def _gen_hvp2(S, r, b):  # HV += the samples' terms
    act, m, ib, ia = r.code(5), r.v[7], r.v[8], r.v[9]
    ps, bias, nd = _samples(r, b, S)
    rfs = [r.ld(11, _c(q)) for q in range(S)]
    cs = [r.ld(4, p) for p in ps]

    def unit(j, _):
        ra, rb = b.add(ia, j), b.add(ib, j)
        a, va = r.ld(2, ra), r.ld(12, ra)
        hva, ws = r.ld(13, ra), []
        for q, (p, rf, c) in enumerate(zip(ps, rfs, cs, strict=True)):  # samples in order
            h = r.ld(3, b.add(b.mul(p, m), j))
            g1, g2 = r.derivs(act, h)
            u = r.ld(10, b.add(b.mul(j, _c(S)), _c(q)))
            hva = b.fadd(hva, r.fma(rf, h, b.fmul(b.fmul(c, g1), u)))
            ws.append(r.fma(rf, b.fmul(a, g1), b.fmul(c, r.fma(va, g1,
                                                                b.fmul(b.fmul(a, g2), u)))))
        r.st(hva, 13, ra)
        with b.if_then(bias):
            hvb = r.ld(13, rb)
            for w in ws:
                hvb = b.fadd(hvb, w)
            r.st(hvb, 13, rb)
        r0 = b.mul(j, nd)

        def one(i, _):
            hv = r.ld(13, b.add(r0, i))
            for p, w in zip(ps, ws, strict=True):
                hv = r.fma(w, r.x(p, i), hv)
            r.st(hv, 13, b.add(r0, i))
            return []

        r.loop(nd, [], one)
        return []

    r.loop(m, [], unit)


def _gen_dot(r, b):  # A, ra, B, rb, n, C, rc: C[rc] = sum_t A[ra + t] B[rb + t]
    acc = r.loop(r.v[4], [r.k(0.0)], lambda t, s: [r.fma(r.ld(0, b.add(r.v[1], t)),
                                                         r.ld(2, b.add(r.v[3], t)), s[0])])
    r.st(acc[0], 5, r.v[6])


def _gen_orth(r, b):  # Q, W, C1, C2, nq, sub, dot (``fastgd.net.lanczos._orth``)
    nq, N = r.v[4], cgutils.unpack_tuple(b, r.v[1][0].shape, 2)[0]
    sub, dot = (b.icmp_signed("!=", r.v[q], _c(0)) for q in (5, 6))

    def tile(t, _):  # rows t0 .. t0 + nt - 1 of W (in L1) against each Q[i] in turn
        t0 = b.mul(t, _c(_TILE))
        rest = b.sub(N, t0)
        nt = b.select(b.icmp_signed("<", rest, _c(_TILE)), rest, _c(_TILE))
        with b.if_then(sub):
            def against(i, _):
                c, q0 = r.ld(2, i), b.add(b.mul(i, N), t0)

                def one(n, _):
                    y, w = r.ld(0, b.add(q0, n)), r.ld(1, b.add(t0, n))
                    r.st(r.fma(b.fneg(c), y, w) if r.fused else b.fsub(w, b.fmul(c, y)), 1,
                         b.add(t0, n))
                    return []

                r.loop(nt, [], one)
                return []

            r.loop(nq, [], against)
        with b.if_then(dot):
            def acc(i, _):
                q0 = b.add(b.mul(i, N), t0)
                s = r.loop(nt, [r.ld(3, i)], lambda n, s: [r.fma(r.ld(0, b.add(q0, n)),
                                                                 r.ld(1, b.add(t0, n)), s[0])])
                r.st(s[0], 3, i)
                return []

            r.loop(nq, [], acc)
        return []

    r.loop(b.sdiv(b.add(N, _c(_TILE - 1)), _c(_TILE)), [], tile)


def _gen_mul(r, b):  # D, A, B, sb, n: D[t] = A[t] B[t sb]
    def one(t, _):
        r.st(b.fmul(r.ld(1, t), r.ld(2, b.mul(t, r.v[3]))), 0, t)
        return []

    r.loop(r.v[4], [], one)


def _literal(act):
    if not isinstance(act, types.IntegerLiteral):
        raise TypingError(f"the activation code must be a compile-time constant, not {act}")


def _block_intrinsics(S):
    """The forward pass and the two halves of the HVP for S samples at a time (the
    arguments: X, p, T, FH, FC, act, bias, m, ib, ia, then U, RF, V, HV, ss), ``act`` a
    literal activation code (the kernels of one activation: only its code is emitted)."""

    @intrinsic(prefer_literal=True)
    def fwd(typingctx, X, p, T, FH, FC, act, bias, m, ib, ia):
        _literal(act)
        return _sig(lambda r, b: _gen_forward(S, r, b), X, p, T, FH, FC, act, bias, m, ib, ia,
                    free=1)

    @intrinsic(prefer_literal=True)
    def hvp1(typingctx, X, p, T, FH, FC, act, bias, m, ib, ia, U, RF, V, ss):
        _literal(act)
        return _sig(lambda r, b: _gen_hvp1(S, r, b), X, p, T, FH, FC, act, bias, m, ib, ia,
                    U, RF, V, ss, free=1)

    @intrinsic(prefer_literal=True)
    def hvp2(typingctx, X, p, T, FH, FC, act, bias, m, ib, ia, U, RF, V, HV):
        _literal(act)
        return _sig(lambda r, b: _gen_hvp2(S, r, b), X, p, T, FH, FC, act, bias, m, ib, ia,
                    U, RF, V, HV, free=1)

    return fwd, hvp1, hvp2


#: samples per pass of the vector code (then one at a time)
SAMPLES = 4
forward_v, hvp1_v, hvp2_v = _block_intrinsics(SAMPLES)
forward1_v, hvp11_v, hvp21_v = _block_intrinsics(1)


@intrinsic
def dot_v(typingctx, A, ra, B, rb, n, C, rc):
    """C[rc] = sum_t A[ra + t] B[rb + t] for t < n (rows, t in order)."""
    return _sig(_gen_dot, A, ra, B, rb, n, C, rc)


@intrinsic
def orth_v(typingctx, Q, W, C1, C2, nq, sub, dot):
    """One Gram-Schmidt sweep over the rows of W (``fastgd.net.lanczos._orth``)."""
    return _sig(_gen_orth, Q, W, C1, C2, nq, sub, dot)


@intrinsic
def mul_v(typingctx, D, A, B, sb, n):
    """D[t] = A[t] B[t sb] for t < n (rows)."""
    return _sig(_gen_mul, D, A, B, sb, n)
