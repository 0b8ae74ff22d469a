"""The one named list of functions with a zero derivative.

Comparisons, rounding, signs, arg-extrema, predicates and constructors from a shape return
plain values: their derivative is zero almost everywhere, so nothing flows through them.
A function belongs here only if every float output is locally constant in every float
input; those whose outputs are elements of the inputs (``unique``, the set operations,
``sort_complex``, ``nextafter``, histogram bin edges) have rules elsewhere.
Any other NumPy function without a rule raises ``NotImplementedError`` naming it.
"""
import numpy as np
import scipy.special

from ..boxes import data, opaque_types, unbox
from ..core import box_types
from .define import defprim, handles

NONDIFF_UFUNCS = (
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.floor, np.ceil, np.rint, np.trunc, np.sign, np.signbit, np.floor_divide,
    np.isfinite, np.isinf, np.isnan, np.spacing,
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift, np.right_shift,
    np.gcd, np.lcm, np.isnat, np.bitwise_count, scipy.special.gammasgn,
)

NONDIFF_FUNCTIONS = (
    np.round, np.around, np.fix, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.searchsorted, np.isclose, np.allclose,
    np.array_equal, np.all, np.any, np.isreal, np.iscomplex, np.isrealobj, np.iscomplexobj,
    np.isneginf, np.isposinf, np.nanargmax, np.nanargmin, np.digitize, np.argpartition,
    np.lexsort, np.array_equiv, np.isin, np.packbits, np.unpackbits, np.diag_indices_from,
    np.tril_indices_from, np.triu_indices_from, np.linalg.matrix_rank, np.array2string, np.array_repr, np.array_str,
)

# Writing to files keeps only numbers: refused, so a derivative is not dropped unseen.
REFUSED = (np.save, np.savez, np.savez_compressed, np.savetxt)

for _u in NONDIFF_UFUNCS:
    defprim(_u.__name__, _u, ufuncs=(_u,), flops=1)


def plain_call(f):
    """``f`` called on the plain values of its arguments, its result carrying no
    derivative; under ``ad.jit`` recorded as a call (replayed on the new values)."""
    def handler(*args, **kw):
        for a in (*args, *kw.values()):
            o = _opaque(a)
            if o is not None:       # computed from values: ad.jit records, sparsity marks
                return o.nondiff(f, args, kw)
        return f(*[_unbox_tree(a) for a in args], **{k: _unbox_tree(v) for k, v in kw.items()})
    return handler


def _opaque(a):
    if isinstance(a, (list, tuple)):
        return next((o for o in map(_opaque, a) if o is not None), None)
    if type(a) in box_types:
        a = data(a)
        return a if type(a) in opaque_types else None
    return None


def _unbox_tree(a):
    if isinstance(a, (list, tuple)):
        return type(a)(_unbox_tree(x) for x in a)
    return unbox(a)


for _f in NONDIFF_FUNCTIONS:
    handles(_f)(plain_call(_f))


def _refuse(f):
    def handler(*args, **kw):
        raise TypeError(f"np.{f.__name__} of a tracked value would drop its derivative; "
                        "save the primal values (x.value) explicitly.")
    return handler


for _f in REFUSED:
    handles(_f)(_refuse(_f))

# ``stop_gradient(x)``: the identity, with no rule, so every level passes on the bare value.
stop_gradient_p = defprim("stop_gradient", lambda x: x, flops=0)
