"""Hand-written LLVM vector code for the linear SGD kernel's streaming layout (d > 8,
any d at run time): blocks of four samples over a vector block of lanes, the four dot
products of every lane in vector registers for the whole pass over the components
(:func:`stream4_lanes`).  The plain-Numba block (:func:`fastgd.linear.kernels_sgd._block4`)
keeps them in memory and reloads them every four components: on the 2-core AVX2 VM the
vector blocks ran 1.18-1.25x faster at d = 10, 30 and 100 (2 threads; 62-73 % of the
256-bit FMA ceiling, bench/test_bench_layouts.py ``ir_over_plain``), with the same bits
(tested).  The kernel runs them on a contiguous copy of the block's weights.  The
helpers are :mod:`.simd`'s.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from fastgd.kernels.jit import contract
from fastgd.kernels.simd import _at, _bcast, _fma, _vector

#: vectors of lanes per call of :func:`stream4_lanes` (8 float64 / 16 float32 lanes):
#: 4 samples x 2 vectors of dot products in registers (8 accumulators, 2 weight vectors,
#: a broadcast: 11 of AVX2's 16 registers); 3 vectors measured slower
STREAM_VECTORS = 2


@intrinsic
def stream4_lanes(typingctx, W, LR, Xp, Y, perm, gr, di, lo, q0):
    """``stream4_lanes(W, LR, Xp, Y, perm, gr, di, lo, q0)``: the streaming layout's
    blocks of four samples (:func:`fastgd.linear.kernels_sgd._block4`'s arithmetic) for
    the samples perm[0:q0] (q0 a multiple of 4) of dataset di, lanes lo .. lo +
    STREAM_VECTORS x (32 // itemsize) - 1 of W (d, nl) with rates LR.

    ``Xp[q d + 4 i + k]`` = x_i of sample perm[q + k] (one pointer, constant offsets)
    and ``gr[q // 4]`` = the block's Gram entries (G01, G02, G03, G12, G13, G23), both
    from :func:`fastgd.linear.kernels_sgd._pack4`.  Per block, for each lane: the four
    dot products s_k = w.x_k accumulate in vector registers over the components (from 0,
    in component order), r_k = lr ((s_k - y_k) - sum_{m<k} r_m G_mk), then
    w_i <- w_i - r_0 x_0i - r_1 x_1i - r_2 x_2i - r_3 x_3i: _block4's operations in its
    order, fused exactly where contraction fuses them, so the same bits (tested).
    _block4 keeps the dot products in memory and reloads them every four components."""
    sig = types.void(W, LR, Xp, Y, perm, gr, di, lo, q0)
    NV = STREAM_VECTORS

    def codegen(context, builder, signature, args):
        b = builder
        Wv, LRv, Xv, Yv, Pv, Gv, div, lov, q0v = args
        tys = signature.args
        Wa, LRa, Xa, Ya, Pa, Ga = (context.make_array(t)(context, b, v)
                                   for t, v in zip(tys[:6], args[:6], strict=True))
        fty = context.get_value_type(tys[0].dtype)
        vt, width, size = _vector(context, fty)
        i64 = ir.IntType(64)
        fma = _fma(b, vt)
        fused = contract()
        wstr = cgutils.unpack_tuple(b, Wa.strides, 2)
        d = cgutils.unpack_tuple(b, Wa.shape, 2)[0]
        ystr = cgutils.unpack_tuple(b, Ya.strides, 2)
        gstr = cgutils.unpack_tuple(b, Ga.strides, 2)

        def c(n):
            return ir.Constant(i64, n)

        def wptr(i, v):  # lane vector v of the block in row i of W
            lanes = b.mul(b.add(lov, c(width * v)), c(size))
            return _at(b, Wa.data, b.add(b.mul(i, wstr[0]), lanes), vt)

        def muladd(x, y, z):  # z + x y
            return b.call(fma, [x, y, z]) if fused else b.fadd(z, b.fmul(x, y))

        def mulsub(x, y, z):  # z - x y
            return b.call(fma, [b.fneg(x), y, z]) if fused else b.fsub(z, b.fmul(x, y))

        def loop(name, n, init, body):  # for i in range(n): state = body(i, state)
            entry = b.basic_block
            head = b.append_basic_block(name)
            step = b.append_basic_block(name + ".body")
            out = b.append_basic_block(name + ".end")
            b.branch(head)
            b.position_at_end(head)
            i = b.phi(i64)
            i.add_incoming(c(0), entry)
            st = [b.phi(vt) for _ in init]
            for p, p0 in zip(st, init, strict=True):
                p.add_incoming(p0, entry)
            b.cbranch(b.icmp_signed("<", i, n), step, out)
            b.position_at_end(step)
            new = body(i, st)
            latch = b.basic_block
            i.add_incoming(b.add(i, c(1)), latch)
            for p, p1 in zip(st, new, strict=True):
                p.add_incoming(p1, latch)
            b.branch(head)
            b.position_at_end(out)
            return st

        lr = [b.load(_at(b, LRa.data, b.mul(b.add(lov, c(width * v)), c(size)), vt),
                     align=size) for v in range(NV)]
        zero = ir.Constant(vt, [0.0] * width)
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
