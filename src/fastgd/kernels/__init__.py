"""Numba kernels: pure array-in / array-out loops (no validation, no Python objects).

Nothing here imports the API layer. Every kernel is compiled through :mod:`.jit`.
Status codes written by the kernels (mirrored by :class:`fastgd.Status`):
``BOUNDED = 0``, ``CONVERGED = 1``, ``DIVERGED = 2``.
"""

BOUNDED = 0
CONVERGED = 1
DIVERGED = 2

# sample orders (strings are mapped to these codes by the API layer)
ORDER_CYCLIC = 0
ORDER_SHUFFLE = 1
ORDER_REPLACEMENT = 2
