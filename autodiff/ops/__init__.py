"""The primitive registry, one module per family; importing it fills the registry."""
from ..boxes import _LIKE, P, install_operators
from ..core import registry
from . import elementwise, linalg, nondiff, reductions, shape, softmax, special  # noqa: F401
from . import conv, normalization, pooling, recurrent  # noqa: F401
from . import assembly, assign, decomp, fft, products, scans, ufuncs  # noqa: F401
from . import functional, polynomial  # noqa: F401
from . import sparse  # noqa: F401  (after linalg and products: it wraps their matmul/dot)

P.update(registry)
P["index"] = shape.index
P["assign"], P["at"], P["like"] = assign.assign, assign.At, assign.like_constructor
_LIKE.update(assign.LIKE_CONSTRUCTORS)
install_operators(registry)
