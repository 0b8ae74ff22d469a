"""``scipy.special`` with derivatives: the ufuncs dispatch by themselves (``erf``,
``gammaln``, ``digamma``); ``polygamma`` is a Python function in SciPy, so ours stands in."""
from scipy.special import digamma, erf, gammaln, psi  # noqa: F401

from ..ops.special import polygamma  # noqa: F401
