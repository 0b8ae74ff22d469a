"""``autodiff.scipy``: SciPy functions that convert with ``np.asarray`` and so never
dispatch, given as differentiable versions under SciPy's own names: ``special``
(``logsumexp``, ``polygamma``, …), ``linalg``, ``stats`` distributions, ``integrate``,
``signal`` and ``optimize`` (SciPy's solvers, differentiable in ``args``)."""
from . import integrate, linalg, optimize, signal, special, stats  # noqa: F401
