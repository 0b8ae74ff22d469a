"""``autodiff.scipy``: SciPy functions that convert with ``np.asarray`` and so never
dispatch, given as differentiable versions under SciPy's own names: ``special``
(``logsumexp``, ``polygamma``, …), ``linalg``, ``stats`` distributions, ``integrate``,
``signal``, ``optimize`` (SciPy's solvers, differentiable in ``args``) and ``sparse`` (a
CSR matrix with tracked values, ``linalg.spsolve``)."""
from . import integrate, linalg, optimize, signal, sparse, special, stats  # noqa: F401
