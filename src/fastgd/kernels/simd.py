"""Hand-written LLVM vector code, kept where a benchmark row shows it faster than plain
Numba by more than 5 % (bench/test_bench_layouts.py).

Linear SGD, register layout at d = 3 and 4 (:func:`sgd_lanes`; every other d runs the
plain-Numba blocks of :mod:`fastgd.linear.kernels_plain`, the streaming layout's blocks
of four samples :mod:`.simd_stream`): a
block of V vectors of lanes (4 doubles or 8 floats each) keeps its d x V weight vectors
in registers for a whole epoch of samples; only x_p and y_p are loaded (broadcast) per
sample.  The arithmetic is the register layout's
(:func:`fastgd.linear.kernels.sgd_kernel`) operation for operation -- s = w.x
accumulated from 0 in component order, c = lr (s - y), w <- w - c x, fused multiply-adds
exactly where contraction fuses them (none with ``FASTGD_CONTRACT=0``) -- so results are
equal bit for bit (tested).  V: a lane's step is a chain of five dependent operations,
so a core needs about ten independent vectors in flight to keep both FMA units busy;
too many and the d x V weights no longer fit the registers.

Two-layer networks (:func:`net_block`): a block of NET_SAMPLES samples x 8 lanes runs
the whole loss and gradient through every hidden unit, pre-activations and outputs in
registers, the activations in a scratch of (m, NET_SAMPLES, lanes) that stays in L1 (the
loops store them for all samples, m x P x lanes values that leave the cache), the
samples' inputs from a copy packed per block (one pointer for all of them).  Blocks of
8 samples where the target has 32 vector registers (AVX-512: 16 + 16 accumulators fit),
of 4 where it has 16 (AVX2: 8 samples spill); every sum runs sample after sample, so the
block size never changes a bit.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from fastgd.kernels.fmath import emit_tanh
from fastgd.kernels.jit import contract

#: vectors per block of :func:`sgd_lanes` for the d it serves (registers: d x V weights)
VECTORS = {3: 8, 4: 8}


def _vector(context, fty, nbytes=32):
    """(vector type, lanes per vector, bytes per element) for vectors of ``nbytes``
    bytes (default 256 bits) of fty."""
    size = context.get_abi_sizeof(fty)
    return ir.VectorType(fty, nbytes // size), nbytes // size, size


def _fma(builder, vt):
    """The llvm.fma intrinsic for vector type vt."""
    bits = "f64" if vt.element == ir.DoubleType() else "f32"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                                          f"llvm.fma.v{vt.count}{bits}")


def _at(builder, base, off, ty):
    """Pointer to a ``ty`` at byte offset ``off`` from ``base``."""
    i8p = ir.IntType(8).as_pointer()
    return builder.bitcast(builder.gep(builder.bitcast(base, i8p), [off]), ty.as_pointer())


def _bcast(builder, vt, s):
    """The scalar s in every element of a vector of type vt."""
    e = builder.insert_element(ir.Constant(vt, ir.Undefined), s,
                               ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(e, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vt.count),
                                              [0] * vt.count))


def counted_loop(builder, n, init, body, name="loop"):
    """Emit ``for i in range(n): state = body(i, state)`` (i an i64 from 0; state a list
    of LLVM values carried by phis) and return the final state."""
    b = builder
    entry = b.basic_block
    head = b.append_basic_block(name)
    step = b.append_basic_block(name + ".body")
    out = b.append_basic_block(name + ".end")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(ir.IntType(64))
    i.add_incoming(ir.Constant(ir.IntType(64), 0), entry)
    st = [b.phi(v.type) for v in init]
    for p, p0 in zip(st, init, strict=True):
        p.add_incoming(p0, entry)
    b.cbranch(b.icmp_signed("<", i, n), step, out)
    b.position_at_end(step)
    new = body(i, st)
    latch = b.basic_block
    i.add_incoming(b.add(i, ir.Constant(ir.IntType(64), 1)), latch)
    for p, p1 in zip(st, new, strict=True):
        p.add_incoming(p1, latch)
    b.branch(head)
    b.position_at_end(out)
    return st

def merge(builder, xs, bx, ys, by):
    """Phis joining the values ``xs`` (from block ``bx``) and ``ys`` (from ``by``)."""
    out = []
    for x, y in zip(xs, ys, strict=True):
        p = builder.phi(x.type)
        p.add_incoming(x, bx)
        p.add_incoming(y, by)
        out.append(p)
    return out

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
        vt, width, size = _vector(context, fty)
        i64 = ir.IntType(64)
        fma = _fma(builder, vt)
        wstr = cgutils.unpack_tuple(builder, Wa.strides, 2)
        xstr = cgutils.unpack_tuple(builder, Xa.strides, 3)
        ystr = cgutils.unpack_tuple(builder, Ya.strides, 2)

        def at(base, off, ty):
            return _at(builder, base, off, ty)

        def lanes(v):  # byte offset of lane vector v of the block
            return builder.mul(builder.add(lov, ir.Constant(i64, width * v)),
                               ir.Constant(i64, size))

        def wptr(i, v):
            return at(Wa.data, builder.add(builder.mul(ir.Constant(i64, i), wstr[0]),
                                           lanes(v)), vt)

        def bcast(s):
            return _bcast(builder, vt, s)

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



@intrinsic
def fused_madd(typingctx, a, b, c):
    """``fused_madd(a, b, c)`` = a b + c of three floats of one type with one rounding
    (llvm.fma) where the kernels contract (FASTGD_CONTRACT, the default), else a b
    rounded then + c: what contraction makes of ``a * b + c`` written alone, pinned
    where a neighbouring product could be fused instead (LLVM picks which multiply of
    ``a * b + x * y`` meets the add).  Not under NUMBA_DISABLE_JIT (callers test SIMD)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        x, y, z = args
        if not contract():
            return builder.fadd(builder.fmul(x, y), z)
        fty = context.get_value_type(signature.return_type)
        bits = "f64" if fty == ir.DoubleType() else "f32"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(fty, [fty] * 3),
                                            f"llvm.fma.{bits}")
        return builder.call(fn, [x, y, z])

    return sig, codegen


def _wide_registers():
    """Whether the compile target has 32 vector registers (AVX-512VL: ymm0-31), from
    NUMBA_CPU_FEATURES where it is set, else from the host (Numba's default target)."""
    import llvmlite.binding as ll
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return "+avx512vl" in config.CPU_FEATURES.split(",")
    if config.CPU_NAME not in (None, "host"):
        return False  # a named portable target: assume 16 registers
    return bool(ll.get_host_cpu_features().get("avx512vl"))


#: vectors of lanes (4 doubles each) and samples per block of :func:`net_block`: 8 x 2
#: accumulators where the target has 32 vector registers, 4 x 2 where it has 16 (with 8
#: they spilled on an AVX2 Zen 3: 4 ran 1.1-1.25x faster there, the same bits)
NET_VECTORS = 2
NET_SAMPLES = 8 if _wide_registers() else 4
_TANH, _RELU = 1, 2  # the activation codes of fastgd.net.kernels (ACT_TANH, ACT_RELU)


class _NetIR:
    """What the network block emits with: the arrays (by name), the vector type, lane
    and row addressing, the samples of the block, phi and fused multiply-adds."""

    def __init__(self, context, builder, signature, args, names, samples):
        self.b = builder
        tys = signature.args
        self.arr = {}
        self.val = {}
        for n, t, v in zip(names, tys, args, strict=True):
            if isinstance(t, types.Array):
                a = context.make_array(t)(context, builder, v)
                self.arr[n] = (a, cgutils.unpack_tuple(builder, a.strides, t.ndim))
            else:
                self.val[n] = v
        # a literal activation code (a kernel specialised on it): that activation's code only
        act = tys[names.index("act")]
        self.act = act.literal_value if isinstance(act, types.IntegerLiteral) else None
        self.fty = context.get_value_type(tys[0].dtype)
        self.vt, self.width, self.size = _vector(context, self.fty)
        self.fused = contract()
        self._fma = _fma(builder, self.vt)
        self.d = cgutils.unpack_tuple(builder, self.arr["X"][0].shape, 2)[1]
        self.zero = ir.Constant(self.vt, [0.0] * self.width)
        self.samples = samples
        if "Xp" in self.arr:  # the block's x packed [i][k] at Xp[q d + i S + k]
            self.qd = builder.mul(self.val["q"], self.d)
        else:
            self.xrows = [self.xrow(builder.add(self.val["q"], self.c(k)))  # its samples' rows
                          for k in range(samples)]

    def xrow(self, q):  # byte offset of the row of X of sample idx[q]
        b = self.b
        ia, xs = self.arr["idx"], self.arr["X"][1]
        return b.mul(b.load(_at(b, ia[0].data, b.mul(q, self.c(8)), ir.IntType(64))), xs[0])

    def c(self, n):
        return ir.Constant(ir.IntType(64), n)

    def lanes(self, v):  # byte offset of lane vector v of the block
        b = self.b
        return b.mul(b.add(self.val["lo"], self.c(self.width * v)), self.c(self.size))

    def ptr(self, name, v, *index):  # vector at [*index, lanes v] of a 2-D or 3-D array
        b = self.b
        a, st = self.arr[name]
        off = self.lanes(v)
        for i, s in zip(index, st, strict=False):
            off = b.add(off, b.mul(i, s))
        return _at(b, a.data, off, self.vt)

    def load(self, name, v, *index):
        return self.b.load(self.ptr(name, v, *index), align=self.size)

    def store(self, value, name, v, *index):
        self.b.store(value, self.ptr(name, v, *index), align=self.size)

    def x(self, k, i):  # x_i of the block's sample k, in every element
        b = self.b
        if "Xp" in self.arr:  # one pointer, constant offsets: no row pointers to keep
            n = b.add(b.add(self.qd, b.mul(i, self.c(self.samples))), self.c(k))
            return _bcast(b, self.vt, b.load(_at(b, self.arr["Xp"][0].data,
                                                 b.mul(n, self.c(self.size)), self.fty)))
        xa, xs = self.arr["X"]
        return _bcast(b, self.vt, b.load(_at(b, xa.data, b.add(self.xrows[k],
                                                              b.mul(i, xs[1])), self.fty)))

    def muladd(self, x, y, z):  # x y + z, fused where contraction fuses it
        b = self.b
        return b.call(self._fma, [x, y, z]) if self.fused else b.fadd(z, b.fmul(x, y))

    def loop(self, name, init, body, n=None):
        """for i in range(n) (default d): state = body(i, state); the final state."""
        return counted_loop(self.b, self.d if n is None else n, init, body, name)


    def y(self, k):  # y of the block's sample k, in every element
        b = self.b
        ia, ya = self.arr["idx"], self.arr["Y"]
        i = b.load(_at(b, ia[0].data, b.mul(b.add(self.val["q"], self.c(k)), self.c(8)),
                       ir.IntType(64)))
        return _bcast(b, self.vt, b.load(_at(b, ya[0].data, b.mul(i, ya[1][0]), self.fty)))

    def phi(self, z, act):
        """h = phi(z) of the vectors z for the activation code ``act`` (run-time value,
        or the literal code ``self.act``): relu as Python (and Numba) take max(z, 0.0),
        i.e. 0.0 if 0.0 > z else z; tanh as :func:`.fmath.tanh`, which the loops call."""
        b = self.b
        if self.act is not None:
            if self.act == _TANH:
                return [emit_tanh(b, zz) for zz in z]
            if self.act == _RELU:
                return [b.select(b.fcmp_ordered(">", self.zero, zz), self.zero, zz) for zz in z]
            return list(z)
        relu = b.icmp_signed("==", act, ir.Constant(act.type, _RELU))
        tanh = b.icmp_signed("==", act, ir.Constant(act.type, _TANH))
        with b.if_else(tanh) as (then, other):
            with then:
                ht = [emit_tanh(b, zz) for zz in z]
                bt = b.basic_block
            with other:
                hr = [b.select(relu, b.select(b.fcmp_ordered(">", self.zero, zz), self.zero,
                                              zz), zz) for zz in z]
                bo = b.basic_block
        return merge(b, ht, bt, hr, bo)


def _delta(g, h, ra, relu, tanh):
    """delta = r a_j phi'(h) from ``ra`` = r a_j: times 1 - h^2 (tanh; fused as contraction
    fuses it), (h > 0) (relu) or 1, for the literal code ``g.act`` or, without one, chosen
    by the run-time flags ``relu``, ``tanh``."""
    b = g.b
    if g.act == _RELU:
        return b.select(b.fcmp_ordered(">", h, g.zero), ra, g.zero)
    one = ir.Constant(g.vt, [1.0] * g.width)
    one_m_h2 = (b.call(g._fma, [b.fneg(h), h, one]) if g.fused
                else b.fsub(one, b.fmul(h, h)))
    if g.act == _TANH:
        return b.fmul(ra, one_m_h2)
    if g.act is not None:
        return ra
    dr = b.select(b.fcmp_ordered(">", h, g.zero), ra, g.zero)
    return b.select(relu, dr, b.select(tanh, b.fmul(ra, one_m_h2), ra))


def _net_block(S, step=False):
    """The intrinsic for blocks of S samples (:func:`_net_block_sig`); with ``step`` the
    per-sample SGD step (S = 1): arguments ``lr``, ``chk`` in place of ``G``, ``loss``,
    ``grad``."""
    if step:  # literal arguments first: a literal act gets its activation's code only
        @intrinsic(prefer_literal=True)
        def net_block(typingctx, T, X, Y, idx, q, m, ib, ia, Hb, lr, chk, lo, act, bias, s,
                      sinv):
            return _net_block_sig(S, True, T, X, Y, idx, q, m, ib, ia, Hb, lr, chk, lo, act,
                                  bias, s, sinv)
    elif S > 1:  # x from the packed copy Xp (:func:`fastgd.net.kernels.pack_blocks`)
        @intrinsic(prefer_literal=True)
        def net_block(typingctx, T, X, Xp, Y, idx, q, m, ib, ia, Hb, G, loss, lo, act, bias,
                      s, sinv, grad):
            return _net_block_sig(S, False, T, X, Xp, Y, idx, q, m, ib, ia, Hb, G, loss, lo,
                                  act, bias, s, sinv, grad)
    else:
        @intrinsic(prefer_literal=True)
        def net_block(typingctx, T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lo, act, bias, s,
                      sinv, grad):
            return _net_block_sig(S, False, T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lo, act,
                                  bias, s, sinv, grad)

    return net_block


def _net_block_sig(S, step, *args):
    """(signature, codegen) of the block of S samples for the argument types ``args``
    (T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lo, act, bias, s, sinv, grad; for S > 1
    also Xp after X: the samples' inputs packed per block, ``Xp[q d + i S + k]`` =
    x_i of sample idx[q + k], so that the loops address them from one pointer with
    constant offsets (four row pointers and a run-time stride took the general-purpose
    registers and spilled in the inner loops: on AVX2 a replica of the forward loop took
    77-88 cycles per unit and block against 47 packed, whole sweeps 1.1-1.25x longer).

    Loss and gradient terms of samples idx[q : q + S] for the lanes lo .. lo
    + 4 NET_VECTORS - 1, every hidden unit, in registers (``act`` 0 / 1 / 2, ``bias``,
    ``grad`` at run time):

    * forward, unit by unit: z = b_j + sum_i W_ji x_i over the components in their
      order, h = phi(z) into the scratch Hb[j, k], f += a_j h (from 0);
    * r = s f - y, loss += r^2 sample by sample, then r <- r sinv (sinv = s / nb);
    * with ``grad``, backward unit by unit: G[a_j] += r h, delta = r a_j phi'(h),
      G[b_j] += delta, G[W_ji] += delta x_i, sample by sample.

    The loops of :func:`fastgd.net.kernels.loss_grad_lanes` operation for operation, so
    every sum is taken in the same order: sample after sample, the block's after the
    earlier blocks'.

    ``step`` (S = 1; arguments T, X, Y, idx, q, m, ib, ia, Hb, lr, chk, lo, act, bias, s,
    sinv): the SGD step on that sample instead, unit by unit as each unit's gradient is
    complete (no unit's gradient reads another's parameters): theta <- theta - lr g
    with g the gradient above from 0 (what :func:`fastgd.net.kernels_lanes._step` does with
    beta = 0 after the gradient, the same bits), and chk += 0 x theta (NaN once a
    parameter is not finite), no loss."""
    sig = types.void(*args)
    names = (("T", "X", "Y", "idx", "q", "m", "ib", "ia", "Hb", "lr", "chk", "lo", "act",
              "bias", "s", "sinv") if step else
             ("T", "X") + (("Xp",) if S > 1 else ()) +
             ("Y", "idx", "q", "m", "ib", "ia", "Hb", "G", "loss", "lo", "act", "bias", "s",
              "sinv", "grad"))

    def codegen(context, builder, signature, args):
        g = _NetIR(context, builder, signature, args, names, samples=S)
        b, v_ = builder, g.val
        V = NET_VECTORS
        kk = [g.c(k) for k in range(S)]
        use_b = b.icmp_signed("!=", v_["bias"], ir.Constant(v_["bias"].type, 0))

        def unit(j, f):  # forward of unit j: f[k V + v] += a_j phi(z)
            b0 = [b.select(use_b, g.load("T", v, b.add(v_["ib"], j)), g.zero)
                  for v in range(V)]
            jd = b.mul(j, g.d)

            def dots(i, z):  # z[k V + v] += W_ji x_k,i
                w = [g.load("T", v, b.add(jd, i)) for v in range(V)]
                x = [g.x(k, i) for k in range(S)]
                return [g.muladd(w[n % V], x[n // V], z[n]) for n in range(S * V)]

            h = g.phi(g.loop("fwd", [b0[n % V] for n in range(S * V)], dots), v_["act"])
            a = [g.load("T", v, b.add(v_["ia"], j)) for v in range(V)]
            for n in range(S * V):
                g.store(h[n], "Hb", n % V, j, kk[n // V])
            return [g.muladd(a[n % V], h[n], f[n]) for n in range(S * V)]

        f = g.loop("units", [g.zero] * (S * V), unit, v_["m"])
        sv = _bcast(b, g.vt, v_["s"])
        siv = _bcast(b, g.vt, v_["sinv"])
        ls = None if step else [g.load("loss", v) for v in range(V)]
        r = []
        for k in range(S):  # r = s f - y (fused as contraction fuses it), loss += r^2
            y = g.y(k)
            for v in range(V):
                fk = f[k * V + v]
                rr = (b.call(g._fma, [sv, fk, b.fneg(y)]) if g.fused
                      else b.fsub(b.fmul(sv, fk), y))
                if not step:
                    ls[v] = g.muladd(rr, rr, ls[v])
                r.append(b.fmul(rr, siv))
        if not step:
            for v in range(V):
                g.store(ls[v], "loss", v)
        relu = b.icmp_signed("==", v_["act"], ir.Constant(v_["act"].type, _RELU))
        tanh = b.icmp_signed("==", v_["act"], ir.Constant(v_["act"].type, _TANH))
        lr = [g.load("lr", v) for v in range(V)] if step else None

        def start(v, row):  # a gradient entry before this block's terms
            return g.zero if step else g.load("G", v, row)

        def finish(v, row, gv, chk, cond=None):  # the entry, or the step it makes
            if not step:
                if cond is None:
                    g.store(gv, "G", v, row)
                else:
                    with b.if_then(cond):
                        g.store(gv, "G", v, row)
                return chk
            t = g.load("T", v, row)  # theta - lr g, fused as contraction fuses it
            t = (b.call(g._fma, [b.fneg(lr[v]), gv, t]) if g.fused
                 else b.fsub(t, b.fmul(lr[v], gv)))
            if cond is None:
                g.store(t, "T", v, row)
                return g.muladd(t, g.zero, chk)
            with b.if_then(cond):
                g.store(t, "T", v, row)
            return b.select(cond, g.muladd(t, g.zero, chk), chk)

        def back(j, chk):  # backward of unit j
            ja = b.add(v_["ia"], j)
            jb = b.add(v_["ib"], j)
            delta = [None] * (S * V)
            chk = list(chk)
            for v in range(V):
                a = g.load("T", v, ja)
                ga = start(v, ja)
                gb = start(v, jb)
                for k in range(S):
                    n = k * V + v
                    h = g.load("Hb", v, j, kk[k])
                    ga = g.muladd(r[n], h, ga)
                    ra = b.fmul(r[n], a)
                    delta[n] = _delta(g, h, ra, relu, tanh)
                    gb = b.fadd(gb, delta[n])
                chk[v] = finish(v, ja, ga, chk[v])
                chk[v] = finish(v, jb, gb, chk[v], use_b)
            jd = b.mul(j, g.d)

            def rows(i, chk):  # G_ji += delta_k x_k,i, sample by sample
                x = [g.x(k, i) for k in range(S)]
                row = b.add(jd, i)
                chk = list(chk)
                for v in range(V):
                    gv = start(v, row)
                    for k in range(S):
                        gv = g.muladd(delta[k * V + v], x[k], gv)
                    chk[v] = finish(v, row, gv, chk[v])
                return chk

            return g.loop("rows", chk, rows)

        if step:
            cz = [g.load("chk", v) for v in range(V)]
            cz = g.loop("back", cz, back, v_["m"])
            for v in range(V):
                g.store(cz[v], "chk", v)
        else:  # (the loop state is the step's chk; unused here)
            with b.if_then(b.icmp_signed("!=", v_["grad"], ir.Constant(v_["grad"].type, 0))):
                g.loop("back", [g.zero] * V, back, v_["m"])
        return context.get_dummy_value()

    return sig, codegen


#: blocks of NET_SAMPLES samples, and of one (the samples after the last whole block);
#: the per-sample SGD step on one sample
net_block = _net_block(NET_SAMPLES)
net_block1 = _net_block(1)
net_step1 = _net_block(1, step=True)
