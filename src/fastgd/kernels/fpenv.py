"""Flush-to-zero for the duration of a chunk (x86-64).

Converging runs drive errors towards zero; once a component reaches the subnormal
range (|x| < 2.2e-308) every operation on it takes a slow microcode path on x86, many
times the cost of a normal one.  Each linear-unit chunk kernel therefore sets the FTZ
and DAZ bits of its own thread's MXCSR on entry and restores the caller's value on
exit.  Results differ from strict IEEE arithmetic only for values below 2.2e-308
(flushed to 0).  Elsewhere (other CPUs, ``NUMBA_DISABLE_JIT=1``) these are no-ops.

The chain and network kernels do not use it: their status is checked on a loss that
can pass through the subnormal range on its way to 0 (zero targets, ``tol = 0``), where
a flushed loss would end a run at a different step than the one-run-per-thread CPU and
GPU kernels, which run without it.
"""

import platform

import numba
import numpy as np

from fastgd.kernels.jit import jit

_X86 = platform.machine().lower() in ("x86_64", "amd64", "x64")

if _X86 and not numba.config.DISABLE_JIT:
    from llvmlite import ir
    from numba import types
    from numba.core.extending import intrinsic

    def _mxcsr_fns(builder):
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
        st = builder.module.declare_intrinsic("llvm.x86.sse.stmxcsr", fnty=fnty)
        ld = builder.module.declare_intrinsic("llvm.x86.sse.ldmxcsr", fnty=fnty)
        return st, ld

    @intrinsic
    def _ftz_on(typingctx):
        sig = types.uint32()

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            ptr = builder.alloca(i32)
            vp = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            st, ld = _mxcsr_fns(builder)
            builder.call(st, [vp])
            old = builder.load(ptr)
            builder.store(builder.or_(old, ir.Constant(i32, 0x8040)), ptr)  # FTZ | DAZ
            builder.call(ld, [vp])
            return old

        return sig, codegen

    @intrinsic
    def _fpenv_restore(typingctx, old):
        sig = types.void(types.uint32)

        def codegen(context, builder, signature, args):
            ptr = builder.alloca(ir.IntType(32))
            builder.store(args[0], ptr)
            vp = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            _, ld = _mxcsr_fns(builder)
            builder.call(ld, [vp])
            return context.get_dummy_value()

        return sig, codegen

    @jit
    def ftz_on():
        """Set FTZ|DAZ on this thread; return the previous MXCSR."""
        return _ftz_on()

    @jit
    def fpenv_restore(old):
        """Restore the MXCSR returned by :func:`ftz_on`."""
        _fpenv_restore(old)

else:

    @jit
    def ftz_on():
        return np.uint32(0)

    @jit
    def fpenv_restore(old):
        return None
