"""``fastgd info``: what fastgd runs on (versions, threads, vector width, the kernel
cache).  NumPy and Numba are imported inside the command."""

from __future__ import annotations

import os
from pathlib import Path


def cmd_info(args):
    import platform

    import numpy as np

    import fastgd as fg

    def version(mod):
        try:
            m = __import__(mod)
            return getattr(m, "__version__", "?")
        except ImportError:
            return "not installed"

    import numba

    print(f"fastgd        {fg.__version__}")
    print(f"python        {platform.python_version()} ({platform.python_implementation()})")
    for mod in ("numpy", "numba", "llvmlite", "scipy", "matplotlib", "tqdm"):
        print(f"{mod:<13} {version(mod)}")
    print(f"platform      {platform.platform()}")
    print(f"cpu count     {os.cpu_count()}")
    env_threads = os.environ.get("NUMBA_NUM_THREADS")
    print(f"numba threads {numba.config.NUMBA_NUM_THREADS} (max; NUMBA_NUM_THREADS="
          f"{env_threads or 'unset'}), using {numba.get_num_threads()}")
    print("threading     every kernel: nogil chunk kernels on Python worker threads "
          "(no numba threading layer)")
    from fastgd.kernels import jit as _jit

    print(f"FMA contract  {'on' if _jit.contract() else 'off'} (FASTGD_CONTRACT="
          f"{os.environ.get('FASTGD_CONTRACT', 'unset')})")
    try:
        import llvmlite.binding as ll

        cpu = ll.get_host_cpu_name()
        feats = ll.get_host_cpu_features()
        has = {k for k, v in feats.items() if v}
    except Exception:  # pragma: no cover
        cpu, has = "unknown", set()
    cfg_cpu = numba.config.CPU_NAME or cpu
    cfg_feat = numba.config.CPU_FEATURES or ""
    width = 512 if "avx512f" in has else 256 if "avx2" in has or "avx" in has else 128
    simd = [f for f in ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512vl", "neon", "sve")
            if f in has]
    print(f"cpu           {cfg_cpu} (host {cpu}); SIMD: {' '.join(simd) or 'none found'}")
    lanes = width // 64
    note = ""
    if width == 512 and "-prefer-256-bit" not in cfg_feat:
        note = ("; Numba's loops use 256-bit vectors by default: FASTGD_AVX512=1 (set "
                "before numba is imported) enables 512 (see README, Performance)")
    print(f"vector width  {width} bit = {lanes} float64 lanes available{note}")
    from fastgd.kernels.simd_stream import VECTOR_BYTES

    print(f"streaming     {VECTOR_BYTES * 8}-bit hand-written vector code (d > 8 and the "
          f"final check; FASTGD_VECTOR_BITS={os.environ.get('FASTGD_VECTOR_BITS', 'unset')})")
    print(f"NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'unset')} "
          f"NUMBA_CPU_FEATURES={'set' if cfg_feat else 'unset'}")
    cache, n_cached = _kernel_cache(Path(fg.__file__).parent, numba.config.CACHE_DIR)
    print(f"kernel cache  {cache} ({n_cached} index files; NUMBA_CACHE_DIR="
          f"{os.environ.get('NUMBA_CACHE_DIR', 'unset')})")
    print(f"numpy BLAS    {_blas(np)}")
    return 0


def _kernel_cache(package, cache_dir):
    """(where, number of index files) of Numba's kernel cache: NUMBA_CACHE_DIR when set,
    else the ``__pycache__`` folders next to the kernel modules (kernels/, linear/,
    chain/, net/).  Files are counted by name in lists (no Python call per file: the
    command makes as many calls whatever the cache holds, which the signal fuzz's plans
    rely on)."""
    if cache_dir:
        dirs = [root for root, _, _ in os.walk(cache_dir)]
        where = cache_dir
    else:
        dirs = [os.path.join(package, p, "__pycache__") for p in sorted(os.listdir(package))]
        where = str(package / "*" / "__pycache__")
    n = 0
    for d in dirs:
        try:
            n += len([f for f in os.listdir(d) if f.endswith(".nbi")])
        except OSError:  # not a folder, or gone
            pass
    return where, n


def _blas(np):
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:  # pragma: no cover - older numpy
        return "?"
