"""The linear unit: runs, sweeps, the boundary, datasets, figures."""
from fastgd.linear import executors as _executors  # noqa: F401  (registers the linear launchers in fastgd.engine.table)
