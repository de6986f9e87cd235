"""Name Numba's JIT code for ``perf``: write ``/tmp/perf-<pid>.map`` for the kernels this
process compiled, so that ``perf report`` shows ``_stream_blocks`` where it showed
``0x00007f...``.

Usage, inside the script you profile, after a warm-up call has compiled the kernels (on
a fresh ``NUMBA_CACHE_DIR``: code loaded from the cache keeps no module to read names
from)::

    import sys; sys.path.insert(0, "scripts")
    from perf_map import write_perf_map
    fg.sweep(...)            # compiles
    write_perf_map()         # names every compiled function
    fg.sweep(...)            # the run to profile

then ``NUMBA_CACHE_DIR=$(mktemp -d) perf record -F 4000 python that_script.py`` and
``perf report --sort sym``.  Sizes come from the object code (``nm -S``), so samples in
code that no symbol covers stay addresses instead of landing in the previous function.
To read a hot loop: its bytes are ``ctypes.string_at(address, size)``, disassembled by
``objdump -D -b binary -m i386:x86-64 --adjust-vma=<address>``.  (This is how session
17 found the gather/scatter copy in the SGD kernels and where the streaming layout's
epochs went.)
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile


def _sizes(blob: bytes) -> dict:
    """Symbol -> size in bytes from an object file's ``nm -S`` (empty without nm)."""
    if shutil.which("nm") is None:
        return {}
    with tempfile.NamedTemporaryFile(suffix=".o", delete=False) as fh:
        fh.write(blob)
    try:
        out = subprocess.run(["nm", "-S", "--defined-only", fh.name], capture_output=True,
                             text=True, check=False).stdout
    finally:
        os.unlink(fh.name)
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def symbols() -> dict:
    """{address: (size, name)} of every function in the compiled overloads of the
    Numba dispatchers alive in this process (sizes 16 where nm did not give one)."""
    from numba.core.registry import CPUDispatcher

    out = {}
    for obj in gc.get_objects():
        # (type(), not isinstance: an isinstance on a weak proxy whose object is gone
        # raises ReferenceError)
        if not issubclass(type(obj), CPUDispatcher):
            continue
        for cres in list(obj.overloads.values()):
            lib = cres.library
            try:
                module = lib._final_module
                sizes = _sizes(lib._get_compiled_object())
            except Exception:  # loaded from the cache: nothing to name
                continue
            for f in module.functions:
                if f.is_declaration:
                    continue
                try:
                    address = lib.get_pointer_to_function(f.name)
                except Exception:
                    continue
                if address:
                    out[address] = (sizes.get(f.name, 16), f.name)
    return out


def write_perf_map(path: str | None = None) -> str:
    """Write the perf map of this process (``/tmp/perf-<pid>.map`` by default, where
    perf looks) and return its path.

    Examples
    --------
    >>> import numba, sys
    >>> sys.path.insert(0, "scripts")
    >>> from perf_map import write_perf_map
    >>> twice = numba.njit(cache=False)(lambda x: 2 * x)
    >>> twice(1)
    2
    >>> path = write_perf_map(path=tempfile.mktemp())
    >>> any("lambda" in line for line in open(path))
    True
    """
    path = path or f"/tmp/perf-{os.getpid()}.map"
    syms = symbols()
    with open(path, "w") as fh:
        for address in sorted(syms):
            size, name = syms[address]
            fh.write(f"{address:x} {size:x} {name}\n")
    return path


if __name__ == "__main__":
    print(write_perf_map())
