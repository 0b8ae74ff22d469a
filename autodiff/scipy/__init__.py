"""``autodiff.scipy``: SciPy functions that convert with ``np.asarray`` and so never
dispatch, given as differentiable versions under SciPy's own names: ``special``
(``logsumexp``, ``polygamma``, …), ``linalg``, ``stats`` distributions, ``integrate`` and
``signal``; ``sparse`` (a CSR matrix with tracked values, ``linalg.spsolve``)."""
from . import integrate, linalg, signal, sparse, special, stats  # noqa: F401
