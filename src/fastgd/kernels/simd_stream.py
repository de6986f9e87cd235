"""Hand-written LLVM vector code for the linear unit at any d (a run-time value), with
accumulators in vector registers where the plain-Numba loops keep them in memory:

* the SGD kernel's streaming layout (d > 8): blocks of four samples over a vector block
  of lanes, the four dot products of every lane in registers for the whole pass over
  the components (:func:`stream4_lanes`).  The plain-Numba block
  (:func:`fastgd.linear.kernels_stream._block4`) reloads them every four components: on
  the 2-core AVX2 VM the vector blocks ran 1.18-1.25x faster at d = 10, 30 and 100 (2
  threads; 62-73 % of the 256-bit FMA ceiling, bench/test_bench_layouts.py
  ``ir_over_plain``).  The kernel runs them on a contiguous copy of the block's weights.
* the final check of a sweep's cells (:func:`check_lanes`, called by
  :func:`fastgd.linear.kernels_gd.cell_losses`): two or four samples per pass over the
  components, their residuals in registers (one thread, 8,192 cells at d = 100: 33 ->
  25 ms with segments of 20 cells, two samples).

Both give the loops' bits (tested).  The helpers are :mod:`.simd`'s.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from fastgd.kernels.jit import VECTOR_BYTES, contract
from fastgd.kernels.simd import _at, _bcast, _fma, _vector, _wide_registers, counted_loop


class _Emit:
    """Builder helpers of this module's vector code: constants, fused or separate
    multiply-adds (as contraction fuses them), and a counted loop with vector state."""

    def __init__(self, context, builder, fty):
        self.b = builder
        self.fty = fty
        self.vt, self.width, self.size = _vector(context, fty, VECTOR_BYTES)
        self._fma = _fma(builder, self.vt)
        self.fused = contract()
        self.zero = ir.Constant(self.vt, [0.0] * self.width)

    def c(self, n):
        return ir.Constant(ir.IntType(64), n)

    def muladd(self, x, y, z):  # z + x y
        b = self.b
        return b.call(self._fma, [x, y, z]) if self.fused else b.fadd(z, b.fmul(x, y))

    def mulsub(self, x, y, z):  # z - x y
        b = self.b
        return (b.call(self._fma, [b.fneg(x), y, z]) if self.fused
                else b.fsub(z, b.fmul(x, y)))

    def load(self, base, off):  # a vector at byte offset off
        return self.b.load(_at(self.b, base, off, self.vt), align=self.size)

    def bcast(self, base, off):  # the scalar at byte offset off, in every element
        return _bcast(self.b, self.vt, self.b.load(_at(self.b, base, off, self.fty)))

    def loop(self, name, n, init, body):
        """for i in range(n): state = body(i, state); the final state."""
        return counted_loop(self.b, n, init, body, name)


#: vectors of lanes per call of :func:`stream4_lanes` (STREAM_VECTORS x VECTOR_BYTES //
#: itemsize lanes): 4 samples x STREAM_VECTORS vectors of dot products in registers.
#: With 16 vector registers (AVX2) 2 (8 accumulators, 2 weight vectors, a broadcast: 11
#: registers; 3 measured slower); with 32 (AVX-512) 4: each block of samples ends in a
#: chain of dependent operations (r_3 waits for r_0, r_1, r_2: about 27 cycles) that 4
#: vectors' work hides better than 2 (Zen 4, 512-bit, 32 datasets x 256 rates: marginal
#: rate at d = 10 79.5 -> 84.6 % of the ceiling, d = 30 85.7 -> 87.9 %, d = 100 73 %
#: either way)
STREAM_VECTORS = 4 if _wide_registers() else 2
#: vectors of lanes per call of :func:`stream4_tail`: the lanes that do not fill a block
#: of :func:`stream4_lanes` (a chunk of 1-31 lanes ran 1.7x slower in 32-lane blocks)
TAIL_VECTORS = max(1, STREAM_VECTORS // 2)


def _stream4(NV):
    """The intrinsic of the streaming blocks for NV vectors of lanes per call
    (:data:`stream4_lanes`, :data:`stream4_tail`)."""
    return intrinsic(_stream4_typer(NV))


def _stream4_typer(NV):
    """The typer of :func:`_stream4`'s intrinsic (NV vectors of lanes per call)."""

    def stream4(typingctx, W, LR, Xp, Y, perm, gr, di, lo, q0):
        """``stream4_lanes(W, LR, Xp, Y, perm, gr, di, lo, q0)``: the streaming layout's
        blocks of four samples (:func:`fastgd.linear.kernels_stream._block4`'s arithmetic) for
        the samples perm[0:q0] (q0 a multiple of 4) of dataset di, lanes lo .. lo +
        NV x (VECTOR_BYTES // itemsize) - 1 of W (d, nl) with rates LR (NV =
        :data:`STREAM_VECTORS`; :data:`TAIL_VECTORS` for :func:`stream4_tail`).

        ``Xp[q d + 4 i + k]`` = x_i of sample perm[q + k] (one pointer, constant offsets)
        and ``gr[q // 4]`` = the block's Gram entries (G01, G02, G03, G12, G13, G23), both
        from :func:`fastgd.linear.kernels_stream._stream_blocks`.  Per block, for each lane: the four
        dot products s_k = w.x_k accumulate in vector registers over the components (from 0,
        in component order), r_k = lr ((s_k - y_k) - sum_{m<k} r_m G_mk), then
        w_i <- w_i - r_0 x_0i - r_1 x_1i - r_2 x_2i - r_3 x_3i: _block4's operations in its
        order, fused exactly where contraction fuses them, so the same bits (tested).
        _block4 keeps the dot products in memory and reloads them every four components."""
        sig = types.void(W, LR, Xp, Y, perm, gr, di, lo, q0)

        def codegen(context, builder, signature, args):
            b = builder
            div, lov, q0v = args[6:]
            tys = signature.args
            Wa, LRa, Xa, Ya, Pa, Ga = (context.make_array(t)(context, b, v)
                                       for t, v in zip(tys[:6], args[:6], strict=True))
            e = _Emit(context, b, context.get_value_type(tys[0].dtype))
            vt, width, size, c = e.vt, e.width, e.size, e.c
            muladd, mulsub, loop = e.muladd, e.mulsub, e.loop
            i64 = ir.IntType(64)
            fty = e.fty
            wstr = cgutils.unpack_tuple(b, Wa.strides, 2)
            d = cgutils.unpack_tuple(b, Wa.shape, 2)[0]
            ystr = cgutils.unpack_tuple(b, Ya.strides, 2)
            gstr = cgutils.unpack_tuple(b, Ga.strides, 2)

            def wptr(i, v):  # lane vector v of the block in row i of W
                lanes = b.mul(b.add(lov, c(width * v)), c(size))
                return _at(b, Wa.data, b.add(b.mul(i, wstr[0]), lanes), vt)

            lr = [b.load(_at(b, LRa.data, b.mul(b.add(lov, c(width * v)), c(size)), vt),
                         align=size) for v in range(NV)]
            zero = e.zero
            gi = {(0, 1): 0, (0, 2): 1, (0, 3): 2, (1, 2): 3, (1, 3): 4, (2, 3): 5}

            def block(kb, _):  # samples perm[4 kb : 4 kb + 4]
                q = b.mul(kb, c(4))
                xq = b.mul(q, d)

                def x(i, k):  # x_i of the block's sample k, in every element
                    n = b.add(xq, b.add(b.mul(i, c(4)), c(k)))
                    return _bcast(b, vt, b.load(_at(b, Xa.data, b.mul(n, c(size)), fty)))

                def dots(i, s):  # s[k NV + v] += w_i x_k,i
                    w = [b.load(wptr(i, v), align=size) for v in range(NV)]
                    out = list(s)
                    for k in range(4):
                        xk = x(i, k)
                        for v in range(NV):
                            out[k * NV + v] = muladd(w[v], xk, s[k * NV + v])
                    return out

                s = loop("dots", d, [zero] * (4 * NV), dots)
                ys = []
                for k in range(4):
                    p = b.load(_at(b, Pa.data, b.mul(b.add(q, c(k)), c(8)), i64))
                    ys.append(_bcast(b, vt, b.load(_at(b, Ya.data, b.add(
                        b.mul(div, ystr[0]), b.mul(p, ystr[1])), fty))))
                g = [_bcast(b, vt, b.load(_at(b, Ga.data, b.add(b.mul(kb, gstr[0]),
                                                                b.mul(c(j), gstr[1])), fty)))
                     for j in range(6)]
                r = [[None] * NV for _ in range(4)]
                for v in range(NV):
                    for k in range(4):  # r_k = lr ((s_k - y_k) - r_0 G_0k - ... - r_k-1 G_k-1,k)
                        t = b.fsub(s[k * NV + v], ys[k])
                        for j in range(k):
                            t = mulsub(r[j][v], g[gi[(j, k)]], t)
                        r[k][v] = b.fmul(lr[v], t)

                def update(i, st):  # w_i -= r_0 x_0,i, then r_1 x_1,i, ...
                    xs = [x(i, k) for k in range(4)]
                    for v in range(NV):
                        u = b.load(wptr(i, v), align=size)
                        for k in range(4):
                            u = mulsub(r[k][v], xs[k], u)
                        b.store(u, wptr(i, v), align=size)
                    return st

                loop("update", d, [], update)
                return []

            loop("blocks", b.sdiv(q0v, c(4)), [], block)
            return context.get_dummy_value()

        return sig, codegen

    return stream4


#: the streaming blocks of STREAM_VECTORS vectors of lanes (see ``_stream4_typer``)
stream4_lanes = _stream4(STREAM_VECTORS)
#: the same for TAIL_VECTORS vectors: the lanes over
stream4_tail = _stream4(TAIL_VECTORS)


#: vectors of cells per call of :func:`check_lanes` (CHECK_VECTORS x VECTOR_BYTES //
#: itemsize cells)
CHECK_VECTORS = 2
#: samples per pass over the components in :func:`check_lanes`: 4 x 2 x 2 accumulators
#: where the target has 32 vector registers (d = 100, 16,384 cells, one thread: 29.5-32.6
#: -> 26.7-27.5 ms; 3 samples in between), 2 where it has 16
CHECK_SAMPLES = 4 if _wide_registers() else 2


@intrinsic
def check_lanes(typingctx, X, Y, Wc, Dc, di, P, lo, lc, ec):
    """``check_lanes(X, Y, Wc, Dc, di, P, lo, lc, ec)``: the sums of the final check
    (:func:`fastgd.linear.kernels_gd.cell_losses`) for the cells lo .. lo + CHECK_VECTORS
    x (VECTOR_BYTES // itemsize) - 1 of a segment: weights ``Wc[:, c]`` (d, n) and their
    differences from the minimiser ``Dc[:, c]`` = w - w* (computed once per segment),
    samples 0 .. P - 1 of dataset di of X (n_data, P_max, d) and Y.

    Per cell and sample, r = y_p - sum_i w_i x_pi (from y_p, component by component) and
    u = sum_i (w_i - w*_i) x_pi (from 0), then ``lc[c] += r^2`` and ``ec[c] += u^2``,
    sample after sample: cell_losses' loops operation for operation (fused where
    contraction fuses them), so the same bits (tested).  :data:`CHECK_SAMPLES` samples
    per pass over the components, their r and u in registers instead of memory (the
    samples over one at a time): two multiply-adds per sample, component and cell."""
    sig = types.void(X, Y, Wc, Dc, di, P, lo, lc, ec)
    NV = CHECK_VECTORS

    def codegen(context, builder, signature, args):
        b = builder
        div, Pv, lov = args[4:7]
        tys = signature.args
        Xa, Ya, Wa, Da = (context.make_array(t)(context, b, v)
                          for t, v in zip(tys[:4], args[:4], strict=True))
        La, Ea = (context.make_array(t)(context, b, v)
                  for t, v in zip(tys[7:], args[7:], strict=True))
        e = _Emit(context, b, context.get_value_type(tys[0].dtype))
        c = e.c
        xs = cgutils.unpack_tuple(b, Xa.strides, 3)
        ys = cgutils.unpack_tuple(b, Ya.strides, 2)
        ws = cgutils.unpack_tuple(b, Wa.strides, 2)
        ds = cgutils.unpack_tuple(b, Da.strides, 2)
        d = cgutils.unpack_tuple(b, Wa.shape, 2)[0]

        def lanes(v):  # byte offset of cell vector v of the block in a row
            return b.mul(b.add(lov, c(e.width * v)), c(e.size))

        lcp = [_at(b, La.data, lanes(v), e.vt) for v in range(NV)]
        ecp = [_at(b, Ea.data, lanes(v), e.vt) for v in range(NV)]
        xrow = b.mul(div, xs[0])

        def samples(p, k, acc):  # samples p .. p + k - 1 into acc = lc, ec vectors
            def comp(i, st):  # r -= w_i x_i, u += (w_i - w*_i) x_i
                w = [e.load(Wa.data, b.add(b.mul(i, ws[0]), lanes(v))) for v in range(NV)]
                dw = [e.load(Da.data, b.add(b.mul(i, ds[0]), lanes(v))) for v in range(NV)]
                out = list(st)
                for j in range(k):
                    xv = e.bcast(Xa.data, b.add(xrow, b.add(b.mul(b.add(p, c(j)), xs[1]),
                                                            b.mul(i, xs[2]))))
                    for v in range(NV):
                        n = (j * NV + v) * 2
                        out[n] = e.mulsub(w[v], xv, st[n])
                        out[n + 1] = e.muladd(dw[v], xv, st[n + 1])
                return out

            init = []
            for j in range(k):
                yv = e.bcast(Ya.data, b.add(b.mul(div, ys[0]), b.mul(b.add(p, c(j)), ys[1])))
                for _ in range(NV):
                    init += [yv, e.zero]
            ru = e.loop("comp", d, init, comp)
            acc = list(acc)
            for j in range(k):
                for v in range(NV):
                    r, u = ru[(j * NV + v) * 2], ru[(j * NV + v) * 2 + 1]
                    acc[v] = e.muladd(r, r, acc[v])
                    acc[NV + v] = e.muladd(u, u, acc[NV + v])
            return acc

        acc = ([b.load(pt, align=e.size) for pt in lcp]
               + [b.load(pt, align=e.size) for pt in ecp])
        K = CHECK_SAMPLES
        acc = e.loop("blocks", b.sdiv(Pv, c(K)), acc,
                     lambda q, st: samples(b.mul(q, c(K)), K, st))
        p0 = b.mul(b.sdiv(Pv, c(K)), c(K))  # the samples over, one at a time
        fin = e.loop("rest", b.sub(Pv, p0), acc,
                     lambda q, st: samples(b.add(p0, q), 1, st))
        for v in range(NV):
            b.store(fin[v], lcp[v], align=e.size)
            b.store(fin[NV + v], ecp[v], align=e.size)
        return context.get_dummy_value()

    return sig, codegen
