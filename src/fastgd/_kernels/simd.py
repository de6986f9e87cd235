"""Lane state in registers: per-sample SGD steps for a block of lanes, written as LLVM
vector code.

LLVM's loop vectoriser keeps lane state in memory: per sample it loads and stores
every weight of every lane.  Here a block of V vectors of lanes (4 doubles or 8 floats
each) keeps its d x V weight vectors in registers for a whole epoch of samples; only
x_p and y_p are loaded (broadcast) per sample.  The arithmetic is the register
layout's (:func:`fastgd._kernels.linear.sgd_kernel`) operation for operation --
s = w.x accumulated from 0 in component order, c = lr (s - y), w <- w - c x, fused
multiply-adds exactly where contraction fuses them (none with ``FASTGD_CONTRACT=0``) --
so results are equal bit for bit (tested).

Why V vectors: a lane's step is a chain of five dependent operations (~20 cycles), so a
core needs about ten independent vectors in flight to keep both FMA units busy.
Measured on one core (Rocket Lake, 3.9 GHz, 256-bit), share of the FMA ceiling:
d = 2: V = 4 49 %, 8 76 %, 10 82 %, 16 75 % (spills); d = 4: V = 4 57 %, 8 75 %;
d = 6: V = 6 74 %; d = 8: V = 6 68 % -- against 57-60 % for the vectorised loop.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import contract

#: vectors per block for each d of the register layout (registers: d x V weights)
VECTORS = {1: 12, 2: 10, 3: 8, 4: 8, 5: 6, 6: 6, 7: 6, 8: 6}


def lanes_per_block(d, itemsize):
    """Lanes one call of :func:`sgd_lanes` advances (V vectors of 32 bytes)."""
    return VECTORS[d] * (32 // itemsize)


@intrinsic
def sgd_lanes(typingctx, W, LR, X, Y, perm, di, lo, n, D):
    """``sgd_lanes(W, LR, X, Y, perm, di, lo, n, D)``: samples perm[0:n] of dataset di,
    one per-sample step each, for lanes lo .. lo + lanes_per_block(D) - 1 of W (D, nl)
    with rates LR; D a compile-time constant (a literal)."""
    if not isinstance(D, types.IntegerLiteral) or D.literal_value not in VECTORS:
        return None
    d = D.literal_value
    V = VECTORS[d]
    sig = types.void(W, LR, X, Y, perm, di, lo, n, D)

    def codegen(context, builder, signature, args):
        Wv, LRv, Xv, Yv, Pv, div, lov, nv, _ = args
        tys = signature.args
        Wa = context.make_array(tys[0])(context, builder, Wv)
        LRa = context.make_array(tys[1])(context, builder, LRv)
        Xa = context.make_array(tys[2])(context, builder, Xv)
        Ya = context.make_array(tys[3])(context, builder, Yv)
        Pa = context.make_array(tys[4])(context, builder, Pv)
        fty = context.get_value_type(tys[0].dtype)
        size = context.get_abi_sizeof(fty)
        width = 32 // size
        vt = ir.VectorType(fty, width)
        i64 = ir.IntType(64)
        i8p = ir.IntType(8).as_pointer()
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vt, [vt, vt, vt]),
            f"llvm.fma.v{width}{'f64' if size == 8 else 'f32'}")
        wstr = cgutils.unpack_tuple(builder, Wa.strides, 2)
        xstr = cgutils.unpack_tuple(builder, Xa.strides, 3)
        ystr = cgutils.unpack_tuple(builder, Ya.strides, 2)

        def at(base, off, ty):
            return builder.bitcast(builder.gep(builder.bitcast(base, i8p), [off]),
                                   ty.as_pointer())

        def lanes(v):  # byte offset of lane vector v of the block
            return builder.mul(builder.add(lov, ir.Constant(i64, width * v)),
                               ir.Constant(i64, size))

        def wptr(i, v):
            return at(Wa.data, builder.add(builder.mul(ir.Constant(i64, i), wstr[0]),
                                           lanes(v)), vt)

        def bcast(s):
            e = builder.insert_element(ir.Constant(vt, ir.Undefined), s,
                                       ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(e, ir.Constant(vt, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                      [0] * width))

        w_in = [[builder.load(wptr(i, v), align=size) for v in range(V)] for i in range(d)]
        lr = [builder.load(at(LRa.data, lanes(v), vt), align=size) for v in range(V)]
        entry = builder.basic_block
        head = builder.append_basic_block("samples")
        body = builder.append_basic_block("step")
        done = builder.append_basic_block("end")
        builder.branch(head)
        builder.position_at_end(head)
        q = builder.phi(i64)
        q.add_incoming(ir.Constant(i64, 0), entry)
        w = [[builder.phi(vt) for _ in range(V)] for _ in range(d)]
        for i in range(d):
            for v in range(V):
                w[i][v].add_incoming(w_in[i][v], entry)
        builder.cbranch(builder.icmp_signed("<", q, nv), body, done)
        builder.position_at_end(body)
        p = builder.load(at(Pa.data, builder.mul(q, ir.Constant(i64, 8)), i64))
        row = builder.add(builder.mul(div, xstr[0]), builder.mul(p, xstr[1]))
        x = [bcast(builder.load(at(Xa.data, builder.add(
            row, builder.mul(ir.Constant(i64, i), xstr[2])), fty))) for i in range(d)]
        y = bcast(builder.load(at(Ya.data, builder.add(builder.mul(div, ystr[0]),
                                                       builder.mul(p, ystr[1])), fty)))
        fused = contract()
        new = [[None] * V for _ in range(d)]
        for v in range(V):
            s = ir.Constant(vt, [0.0] * width)
            for i in range(d):  # s += w_i x_i
                s = (builder.call(fma, [w[i][v], x[i], s]) if fused
                     else builder.fadd(s, builder.fmul(w[i][v], x[i])))
            c = builder.fmul(lr[v], builder.fsub(s, y))
            for i in range(d):  # w_i -= c x_i
                new[i][v] = (builder.call(fma, [builder.fneg(c), x[i], w[i][v]]) if fused
                             else builder.fsub(w[i][v], builder.fmul(c, x[i])))
        latch = builder.basic_block
        q.add_incoming(builder.add(q, ir.Constant(i64, 1)), latch)
        for i in range(d):
            for v in range(V):
                w[i][v].add_incoming(new[i][v], latch)
        builder.branch(head)
        builder.position_at_end(done)
        for i in range(d):
            for v in range(V):
                builder.store(w[i][v], wptr(i, v), align=size)
        return context.get_dummy_value()

    return sig, codegen
