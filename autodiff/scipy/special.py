"""``scipy.special`` with derivatives: the ufuncs dispatch by themselves (``erf``,
``gammaln``, ``digamma``); ``polygamma``, ``logsumexp``, ``softmax`` and ``log_softmax``
are Python functions in SciPy that convert with ``np.asarray``, so ours stand in."""
from scipy.special import digamma, erf, gammaln, psi  # noqa: F401

from ..ops.softmax import log_softmax, logsumexp, softmax  # noqa: F401
from ..ops.special import polygamma  # noqa: F401
