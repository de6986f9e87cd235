"""An opt-in log of every Numba compilation in a process (what a cold start spends).

``tests/conftest.py`` installs it when ``FASTGD_COMPILE_LOG=path.json`` is set; any
script can call :func:`install` itself.  Each record: the kernel's qualified name, its
argument types, its own seconds (the compilations it triggered subtracted; wall, and CPU
of the compiling thread, which a loaded machine inflates less), its inclusive seconds and
the test running at the time (``PYTEST_CURRENT_TEST``); appended to ``path + "l"`` (JSON
lines, readable while the run goes on) and written to ``path`` as JSON at exit.
``python tests/compile_log.py path.json[l]`` prints a summary.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time


def install(path):
    """Record every compilation of this process; write them to ``path`` at exit."""
    from numba.core import event

    records, local = [], threading.local()

    class _Listener(event.Listener):
        def on_start(self, ev):
            stack = getattr(local, "stack", None)
            if stack is None:
                stack = local.stack = []
            stack.append([time.perf_counter(), 0.0, time.thread_time(), 0.0])

        def on_end(self, ev):
            t0, nested, c0, cnested = local.stack.pop()
            dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
            if local.stack:
                local.stack[-1][1] += dt
                local.stack[-1][3] += cpu
            disp = ev.data["dispatcher"]
            records.append(rec := {
                "name": f"{disp.py_func.__module__}.{disp.py_func.__qualname__}",
                "args": [str(a) for a in ev.data["args"]],
                "self_s": dt - nested, "incl_s": dt, "cpu_s": cpu - cnested,
                "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
            })
            with open(path + "l", "a") as fh:  # one JSON line per record as it happens
                fh.write(json.dumps(rec) + "\n")

    event.register("numba:compile", _Listener())

    def _write():
        with open(path, "w") as fh:
            json.dump(records, fh, indent=0)

    atexit.register(_write)
    return records


def summary(path, top=40):
    """Print compile seconds by kernel, by test and the costliest specialisations."""
    with open(path) as fh:
        recs = ([json.loads(line) for line in fh] if path.endswith(".jsonl")
                else json.load(fh))
    total = sum(r["self_s"] for r in recs)
    cpu = sum(r.get("cpu_s", 0.0) for r in recs)
    print(f"{len(recs)} compilations, {total:.1f} s wall, {cpu:.1f} s CPU (own time, "
          "nested subtracted)")
    own = "cpu_s" if all("cpu_s" in r for r in recs) else "self_s"  # CPU where logged
    print(f"(sorted by {own})")
    for key, label in (("name", "kernel"), ("test", "test")):
        agg = {}
        for r in recs:
            n, s = agg.get(r[key], (0, 0.0))
            agg[r[key]] = (n + 1, s + r[own])
        print(f"\nby {label}:")
        for k, (n, s) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"{s:8.2f} s {n:4d}  {k}")
    print("\ncostliest specialisations:")
    for r in sorted(recs, key=lambda r: -r[own])[:top]:
        print(f"{r[own]:7.2f} s  {r['name']}({', '.join(r['args'])})  [{r['test']}]")


if __name__ == "__main__":
    summary(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
