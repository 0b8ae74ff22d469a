"""``autodiff.scipy``: SciPy functions that convert with ``np.asarray`` and so never
dispatch, given as differentiable versions under SciPy's own names."""
from . import special  # noqa: F401
