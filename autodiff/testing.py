"""``check_grads``: derivatives of both modes against numerical ones, to any order.

Along a random direction ``v`` the forward mode must give ``J v`` and the reverse mode
``Jᵀ u`` with ``<Jᵀu, v> = <u, J v>``; both are compared with a central difference refined
by Richardson extrapolation (error O(h⁴)). A batch of directions takes other paths through
the rules (a leading axis on every tangent and cotangent), so the full Jacobians of
``jacfwd`` and ``jacrev``, each from one batched sweep, must agree too: ``J v`` with the
numerical derivative and with the single-direction JVP, ``uᵀJ`` with the VJP (for functions
with at most ``_BATCH_CAP`` Jacobian entries). Order ``k`` checks the derivative functions
of order ``k-1`` — forward and reverse, so every pairing of the modes is exercised — the
same way; their batched Jacobians are taken in the mode opposite to the derivative's own
(``jacfwd`` of the reverse-mode derivative, as ``hessian`` does, and ``jacrev`` of the
forward-mode one).
"""
import numpy as np

from .api import _flat_args, _jacrev_from, _pull, jacfwd, jvp, vjp
from .boxes import meta, unbox
from .core import is_complex
from .tree import flatten, unflatten

__all__ = ["check_grads", "numerical_jvp", "split_complex"]


def _flat(out):
    leaves = flatten(out)[0]
    return np.concatenate([np.ravel(np.asarray(unbox(x), dtype=float)) for x in leaves]) \
        if leaves else np.zeros(0)


def _shift(args, v, h):
    return tuple(x + h * d if type(x) is not float else float(x + h * d)
                 for x, d in zip(args, v))


def numerical_jvp(f, args, v, h=1e-3):
    """``J v`` by central differences with one Richardson step."""
    def central(h):
        return (_flat(f(*_shift(args, v, h))) - _flat(f(*_shift(args, v, -h)))) / (2 * h)
    return (4 * central(h / 2) - central(h)) / 3


def _direction(x, rng):
    if type(x) is float or np.ndim(x) == 0:
        return float(rng.standard_normal())
    return rng.standard_normal(np.shape(x))


def check_grads(f, args, order=2, modes=("fwd", "rev"), rtol=1e-6, atol=1e-6, h=1e-3,
                seed=0):
    """Check ``f``'s derivatives in ``modes`` up to ``order`` against numerical ones.

    Complex inputs and outputs are checked through their real and imaginary parts
    (``split_complex``), so every rule is held to finite differences of real functions.
    Raises ``AssertionError`` naming the modes, the order and the worst error.

    >>> check_grads(np.sin, (0.3,), order=2)
    >>> check_grads(lambda z: np.abs(np.exp(z)) * z, (0.3 + 0.2j,), order=2)
    """
    if not isinstance(args, tuple):
        args = (args,)
    f, args = split_complex(f, args)
    rng = np.random.default_rng(seed)
    _check(f, args, order, tuple(modes), "", rng, rtol, atol, h)


def _real_array(a):
    if type(a) is float:
        return a
    a = np.asarray(a)
    return a if a.dtype.kind == "c" else np.asarray(a, dtype=float)


def split_complex(f, args):
    """``(f_r, real_args)``: ``f`` as a function of real arrays only. Each complex argument
    becomes two (its real and imaginary parts) and each complex output leaf ``w`` becomes
    ``stack([w.real, w.imag])``; real functions of real arguments come back unchanged.

    The derivatives of ``f_r`` are those of ``f`` read as a map of R²: checking them against
    finite differences checks the complex rules, whatever convention they follow.
    """
    args = tuple(_real_array(a) for a in args)
    kinds = [type(a) is not float and a.dtype.kind == "c" for a in args]
    out_complex = any(is_complex(meta(o)) for o in flatten(f(*args))[0])
    if not any(kinds) and not out_complex:
        return f, args

    def split(out):
        leaves, tree = flatten(out)
        return unflatten(tree, [np.stack([np.real(o), np.imag(o)]) if is_complex(meta(o))
                                else o for o in leaves])

    def f_r(*xs):
        it = iter(xs)
        zs = [next(it) + 1j * next(it) if c else next(it) for c in kinds]
        return split(f(*zs))

    f_r.__name__ = f"split_complex({getattr(f, '__name__', 'f')})"
    real_args = []
    for a, c in zip(args, kinds):
        real_args += [a.real.copy(), a.imag.copy()] if c else [a]
    return f_r, tuple(real_args)


def _close(what, got, want, rtol, atol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    err = np.abs(got - want)
    bound = atol + rtol * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    worst = float(np.max(err, initial=0.0))
    if not worst <= bound:     # also catches NaN
        raise AssertionError(f"check_grads: {what}: worst error {worst:.3g} exceeds "
                             f"{bound:.3g} (numerical {np.ravel(want)[:4]}…, "
                             f"got {np.ravel(got)[:4]}…)")


#: The largest Jacobian (entries) the batched check forms at each order.
_BATCH_CAP = 1024


def _jacobian_matrix(jac, sizes):
    """A ``jacfwd``/``jacrev`` pytree (argnums a tuple) as one (m, n) matrix, the rows and
    columns in ``_flat`` order."""
    blocks = flatten(jac)[0]
    k = len(sizes)
    rows = [np.concatenate([np.reshape(np.asarray(unbox(b), dtype=float), (-1, n))
                            for b, n in zip(blocks[i:i + k], sizes)], axis=1)
            for i in range(0, len(blocks), k)]
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, sum(sizes)))


def _check_batched(f, args, modes, v, numeric, jv, u, ct, rev, path, order, rtol, atol):
    """The Jacobians of one batched sweep each (``rev``: the reverse recording the single
    direction was pulled through, swept again with every basis cotangent at once)."""
    sizes = [int(np.size(x)) for x in args]
    n, m = sum(sizes), numeric.size
    if not 0 < n * m <= _BATCH_CAP or 0 in sizes:
        return
    vf = np.concatenate([np.ravel(d) for d in v])
    for mode in modes:
        if mode == "fwd":
            name = f"batched jacfwd (all directions in one sweep){path} at order {order}"
            jac = jacfwd(f, tuple(range(len(args))))(*args)
        else:
            name = f"batched jacrev (all directions in one sweep){path} at order {order}"
            jac = _jacrev_from(f, rev)
        J = _jacobian_matrix(jac, sizes)
        if J.shape != (m, n):
            raise AssertionError(f"check_grads: {name}: a Jacobian of shape {J.shape} for "
                                 f"{m} outputs and {n} inputs")
        _close(f"{name}: J v against the numerical derivative", J @ vf, numeric, rtol, atol)
        if mode == "fwd":
            _close(f"{name}: J v against the single-direction jvp", J @ vf, jv, rtol, atol)
        else:
            _close(f"{name}: uᵀJ against the single-direction vjp", u @ J, ct, rtol, atol)


def _check(f, args, order, modes, path, rng, rtol, atol, h):
    v = tuple(_direction(x, rng) for x in args)
    numeric = numerical_jvp(f, args, v, h)
    label = lambda mode: f"{mode}{path} mode at order {len(path.split('-over-'))}"  # noqa: E731
    derivs = []
    jv = u = ct = rev = None
    if "fwd" in modes:
        jv = _flat(jvp(f, args, v)[1])
        _close(label("fwd"), jv, numeric, rtol, atol)
        derivs.append(("fwd", lambda *xs: jvp(f, xs, v)[1]))
    if "rev" in modes:
        # vjp, keeping the recording for the batched sweep
        leaves, rebuild, pack = _flat_args(f, args, tuple(range(len(args))), "check_grads")
        out, _, values, sweep = _pull(f, args, leaves, rebuild, retain=True)
        rev = (leaves, pack, out, values, sweep)
        u_leaves, out_tree = flatten(out)
        u_leaves = [_direction(o, rng) for o in u_leaves]
        u = np.concatenate([np.ravel(c) for c in u_leaves]) if u_leaves else np.zeros(0)
        cts = pack(sweep(u_leaves))
        ct = _flat(cts)
        lhs = sum(float(np.sum(np.asarray(unbox(c)) * d)) for c, d in zip(cts, v))
        _close(label("rev"), lhs, float(u @ numeric), rtol, atol)
        if "fwd" in modes:
            _close(f"dot-product identity <u, Jv> = <Jᵀu, v>{path}", lhs, float(u @ jv),
                   rtol, atol)

        def pulled(*xs, _u=u_leaves, _tree=out_tree):
            cts = vjp(f, *xs)[1](unflatten(_tree, _u))
            return cts if len(cts) > 1 else cts[0]
        derivs.append(("rev", pulled))
    # Batched: both Jacobians at order 1; above it the opposite mode of the derivative's own
    # (jacfwd over reverse is hessian's path, jacrev over forward its mirror), so every order
    # checks both batched modes at half the cost of all four pairings. One mode asked: that one.
    batched = modes if not path or len(modes) == 1 else \
        tuple(m for m in modes if m != path.split("-")[2])
    _check_batched(f, args, batched, v, numeric, jv, u, ct, rev, path,
                   len(path.split('-over-')), rtol, atol)
    if order > 1:
        for mode, df in derivs:
            _check(df, args, order - 1, modes, f"-over-{mode}{path}", rng, rtol, atol, h)
