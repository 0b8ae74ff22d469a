"""The AD Jacobian for SciPy's stiff solvers: ``solve_ivp(..., method="BDF", jac=...)``.

``solve_ivp`` calls ``jac(t, y, *args)`` with a different ``t`` at every step, so
``ad.sparse_jacobian(lambda y: fun(t, y))`` cannot be written once. ``ivp_jacobian(fun)``
adapts the signature: it differentiates ``fun(t, y, *args)`` in ``y`` with
``ad.sparse_jacobian`` (pattern and colouring found on the first call and reused, ``t`` and
``args`` held fixed), returning a ``scipy.sparse`` matrix in CSC form, which BDF and Radau
factorise directly. With ``sparse=False`` it is the dense ``ad.jacobian`` (LSODA needs a
dense Jacobian). Also exported as ``autodiff.scipy.integrate.ivp_jacobian``.

>>> from scipy.integrate import solve_ivp
>>> fun = lambda t, y: -np.array([1.0, 1e3]) * y                 # stiff, diagonal
>>> sol = solve_ivp(fun, (0.0, 1.0), [1.0, 1.0], method="BDF", jac=ivp_jacobian(fun),
...                 rtol=1e-8, atol=1e-10)
>>> bool(sol.success), round(float(sol.y[0, -1]), 3)
(True, 0.368)
"""
from ..api import jacobian
from ..compressed import sparse_jacobian

__all__ = ["ivp_jacobian"]


def ivp_jacobian(fun, sparse=True, sparsity=None, mode="auto", format="csc"):
    """``jac(t, y, *args) = ∂fun(t, y, *args)/∂y`` for ``solve_ivp``'s ``jac=`` argument.

    ``sparse=True``: a ``scipy.sparse`` matrix by compressed evaluation (see
    ``ad.sparse_jacobian``; ``sparsity=`` gives the pattern instead of detecting it,
    ``mode`` and ``format`` as there). ``sparse=False``: the dense Jacobian, an ndarray.
    The returned function exposes ``.sparsity``, ``.colours`` and ``.n_colours`` after a
    call (sparse only)."""
    def in_y(y, t, *args):
        return fun(t, y, *args)

    if not sparse:
        dense = jacobian(in_y)

        def jac(t, y, *args):
            return dense(y, t, *args)
        jac.__name__ = f"ivp_jacobian({getattr(fun, '__name__', 'fun')})"
        return jac

    sj = sparse_jacobian(in_y, sparsity=sparsity, mode=mode, format=format)

    def jac(t, y, *args):
        J = sj(y, t, *args)
        jac.sparsity, jac.colours, jac.n_colours = sj.sparsity, sj.colours, sj.n_colours
        jac.colors, jac.n_colors = sj.colors, sj.n_colors
        return J

    jac.sparsity = sj.sparsity
    jac.colours = jac.colors = jac.n_colours = jac.n_colors = None
    jac.__name__ = f"ivp_jacobian({getattr(fun, '__name__', 'fun')})"
    return jac
