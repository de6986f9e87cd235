"""Helper processes that compile a kernel into Numba's disk cache while this process
compiles another (a cold cache, two or more CPUs): Numba compiles one function at a
time in a process (its compiler lock), so a second kernel compiles in parallel only in
another process.  The process that needs the kernel then waits for its helper and loads
the same machine code from the cache instead of compiling it.

Used by a first network sweep (its training kernel while this process compiles the
Lanczos kernels, :func:`fastgd.net.launch._precompile`) and by a first linear sweep
(the final check's kernel while this process compiles the chunk kernel,
:func:`fastgd.linear.checks.precompile_check`).  ``FASTGD_PRECOMPILE=0`` turns helpers
off.
"""

from __future__ import annotations

import os
import sys
import threading

_HELPERS = {}  # key -> the process compiling that kernel
_IDLE = []  # work for this process while it waits for a helper (:func:`when_idle`)
_LOCK = threading.Lock()
#: seconds a caller waits for a helper before it compiles the kernel itself
WAIT = 300.0


def allowed(threads) -> bool:
    """Whether a helper may run beside a call on ``threads`` threads of this process:
    two or more of them and of this process's CPUs (``taskset -c 0`` has one), a normal
    Python (not a frozen application) and ``FASTGD_PRECOMPILE`` not 0."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return not (threads < 2 or cpus < 2 or getattr(sys, "frozen", False)
                or not sys.executable
                or os.environ.get("FASTGD_PRECOMPILE", "1") in ("0", "false", "False", "no"))


def start(key, module, function, *args):
    """Run ``module.function(*args, source)`` (strings; ``source``: the path of
    ``module``'s file here, so that a helper which imports another fastgd stops at once)
    in a new Python process with this fastgd's sources first on its path (the same
    cache folders), its output discarded; remember it under ``key``.  Returns the
    process, or None where it could not start."""
    import importlib
    import site
    import subprocess
    from pathlib import Path

    source = str(Path(importlib.import_module(module).__file__).resolve())
    env = dict(os.environ)
    # the same fastgd sources: a source tree goes first on the helper's path (never a
    # site-packages folder, whose modules would come before the standard library's)
    root = str(Path(__file__).resolve().parents[2])
    if root not in site.getsitepackages() + [site.getusersitepackages()]:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    code = f"import sys; from {module} import {function} as f; f(*sys.argv[1:])"
    try:
        proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args), source],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None
    with _LOCK:
        _HELPERS[key] = proc
    return proc


def same_source(module_file, source) -> bool:
    """In a helper: whether this process imported the fastgd that started it."""
    try:
        return os.path.samefile(module_file, source)
    except OSError:
        return False


def wait(key):
    """Wait for the helper compiling ``key`` (:func:`start`), if any (at most
    :data:`WAIT` seconds: then the caller compiles, and the helper finishes on its
    own)."""
    with _LOCK:
        proc = _HELPERS.pop(key, None) if _HELPERS else None
    if proc is not None:
        import subprocess

        if proc.poll() is None:
            _run_idle()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            pass


def when_idle(fn):
    """Run ``fn()`` (once) the next time this process waits for a helper that is still
    compiling, in the waiting thread, instead of sleeping through the wait; a process
    that never waits never runs it.  E.g. the network commands import matplotlib there
    (about 0.4 s): on a cold cache the main process, done with its own kernels, waits
    seconds for the training kernel's helper.

    Examples
    --------
    >>> from fastgd.engine import helper
    >>> helper.when_idle(lambda: None)
    >>> helper.wait("no such helper")  # no helper to wait for: nothing runs
    """
    with _LOCK:
        if fn not in _IDLE:  # (a command run again in one process: once)
            _IDLE.append(fn)


def _run_idle():
    with _LOCK:
        work = list(_IDLE)
        _IDLE.clear()
    for fn in work:
        try:
            fn()
        except Exception:  # noqa: BLE001 - only a head start: the real use raises it again
            pass
