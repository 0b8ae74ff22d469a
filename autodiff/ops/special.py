"""``scipy.special``: erf, gammaln and the polygamma family their derivatives need.

``d erf/dx = 2/√π · exp(-x²)``; ``d ln Γ/dx = ψ(x)``; ``d ψ⁽ⁿ⁾/dx = ψ⁽ⁿ⁺¹⁾``. SciPy's
``polygamma`` converts its input with ``np.asarray``, so ours is a primitive of its own,
reached as ``autodiff.scipy.special.polygamma``.
"""
import math

import numpy as np
import scipy.special as sp

from .define import elementwise

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def polygamma(n, x):
    """ψ⁽ⁿ⁾(x) for an integer order ``n`` (no derivative in ``n``)."""
    return polygamma_p(n, x)


polygamma_p = elementwise("polygamma", lambda n, x: sp.polygamma(n, x),
                          None, lambda ans, n, x: polygamma_p(n + 1, x), flops=50)
digamma_p = elementwise("digamma", sp.digamma, lambda ans, x: polygamma_p(1, x),
                        ufuncs=(sp.digamma,), flops=50)
gammaln_p = elementwise("gammaln", sp.gammaln, lambda ans, x: digamma_p(x),
                        ufuncs=(sp.gammaln,), flops=50)
erf_p = elementwise("erf", sp.erf, lambda ans, x: _TWO_OVER_SQRT_PI * np.exp(-(x * x)),
                    ufuncs=(sp.erf,), flops=20)
