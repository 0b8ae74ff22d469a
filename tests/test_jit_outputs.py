"""``ad.jit`` of the derivative transforms: recorded once per signature (no guard on an
input's numbers where the eager code reads none), and outputs of the eager transform's
types, shapes and dtypes (0-d arrays stay 0-d ndarrays, float32 stays float32)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.program import NUMBA_AFTER


def rosen(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def mixed(x):
    A = np.outer(x, x) + 3 * np.eye(x.size)
    return np.linalg.solve(A, x).sum() + np.log(np.sum(x ** 2)) + np.prod(np.cos(x))


def masked(x):
    # a mask and a sort are instructions of the program, not guards
    return np.sum(np.where(x > 0, x ** 3, -x)) + np.sum(np.sort(x) * np.arange(x.size))


def shifted(x):
    y = np.zeros_like(x)
    y[1:] = x[:-1] * x[1:]
    return np.sum(y ** 2) + np.max(x) ** 2


V = np.array([0.3, -1.0, 0.5, 2.0])

TRANSFORMS = {
    "grad": ad.grad,
    "hessian": ad.hessian,
    "jacfwd": lambda f: ad.jacfwd(ad.grad(f)),
    "jacrev": lambda f: ad.jacrev(ad.grad(f)),
    "jacfwd_chunked": lambda f: ad.jacfwd(ad.grad(f), chunk_size=3),
    "jacrev_chunked": lambda f: ad.jacrev(ad.grad(f), chunk_size=3),
    "jacobian": lambda f: ad.jacobian(ad.grad(f)),
    "hvp": lambda f: (lambda x: ad.hvp(f, x, V)),
    "jvp": lambda f: (lambda x: ad.jvp(f, (x,), (V,))),
    "vjp": lambda f: (lambda x: ad.vjp(ad.grad(f), x)[1](V)),
}


def _same(a, b, scalar_float=False):
    """``a`` (jitted) is ``b`` (eager) in type, shape, dtype and value. ``scalar_float``:
    a program on Python floats computes with ``math`` where eager NumPy gives its
    ``np.float64`` (a float subclass), so there a float stands for an ``np.float64``."""
    la, ta = ad.tree.flatten(a)
    lb, tb = ad.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        if scalar_float and type(y) is np.float64 and type(x) is float:
            y = float(y)
        assert type(x) is type(y), (type(x), type(y))
        assert np.shape(x) == np.shape(y)
        assert np.result_type(x) == np.result_type(y)
        # past the tier the fused backend sums in another order: round-off of the dtype
        f32 = np.result_type(y) == np.float32
        np.testing.assert_allclose(x, y, rtol=1e-6 if f32 else 1e-10, atol=1e-7 if f32 else 1e-12)


@pytest.mark.parametrize("f", [rosen, mixed, masked, shifted], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_recorded_once_for_fresh_inputs(name, f):
    t = TRANSFORMS[name](f)
    jt = ad.jit(t)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.uniform(0.2, 1.5, 4) * rng.choice([-1.0, 1.0], 4)
        _same(jt(x), t(x))
    assert jt.recordings == 1
    prog = jt.program(x)
    assert not [g for g in prog.guards if g[2] == "value"], str(prog)


def test_jit_hessian_of_rosen_has_no_guard():
    jh = ad.jit(ad.hessian(rosen))
    x = np.array([1.2, 0.7, -0.3, 2.0])
    assert jh.program(x).guards == []
    for k in range(5):
        _same(jh(x + k), ad.hessian(rosen)(x + k))
    assert jh.recordings == 1


def test_max_pool_weights_recorded_not_guarded():
    # the pooling rule's tap weights are one recorded call: fresh inputs replay
    from autodiff.nn import functional as F
    f = lambda x: np.sum(np.sin(F.max_pool2d(x, 2, 2)) * np.cos(x[..., :2, :2]))
    rng = np.random.default_rng(2)
    for name in ("grad", "hessian"):
        t = getattr(ad, name)(f)
        jt = ad.jit(t)
        for _ in range(5):
            x = rng.normal(size=(1, 1, 4, 4))
            _same(jt(x), t(x))
        assert jt.recordings == 1


def test_eig_refusal_is_a_recorded_check():
    # eig's "no derivative at a repeated eigenvalue" test is one recorded call guarded by
    # its outcome, and so is whether the spectrum is real (NumPy's eig then returns real
    # arrays): fresh matrices replay, one program per kind, and a defective one raises
    f = lambda a: np.sum(np.real(np.linalg.eigvals(a)) ** 2)
    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    rng = np.random.default_rng(3)
    kinds = set()
    for _ in range(8):
        a = rng.normal(size=(3, 3))
        kinds.add(np.iscomplexobj(np.linalg.eigvals(a)))
        _same(jf(a), f(a))
        _same(jg(a), ad.grad(f)(a))
    assert kinds == {False, True}
    assert jf.recordings == jg.recordings == 2
    with pytest.raises(np.linalg.LinAlgError, match="repeated eigenvalue"):
        jg(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))


def test_value_branch_still_guarded():
    # a genuine Python branch on values keeps its guard, and each branch is right
    def f(x):
        return np.sum(x ** 3) if np.sum(x) > 0 else np.sum(np.sin(x))
    jh = ad.jit(ad.hessian(f))
    for x in (V, -V, 2 * V, -3 * V):
        _same(jh(x), ad.hessian(f)(x))
    assert jh.recordings == 2


def sq(x):
    return np.sum(np.sin(x) * x ** 2)


def vec(x):
    return np.stack([x ** 2, np.sin(x)]) if np.ndim(x) == 0 else np.concatenate([x ** 2, x])


OUT_TRANSFORMS = {
    "plain": lambda: sq,
    "plain_elementwise": lambda: (lambda x: np.sin(x) * 2.0),
    "grad": lambda: ad.grad(sq),
    "value_and_grad": lambda: ad.value_and_grad(sq),
    "grad_argnums": lambda: (lambda x: ad.grad(lambda a, b: sq(a) * sq(b), argnums=(0, 1))(x, x)),
    "grad_constant": lambda: ad.grad(lambda x: np.sum(np.ones(3))),
    "jacfwd": lambda: ad.jacfwd(vec),
    "jacrev": lambda: ad.jacrev(vec),
    "hessian": lambda: ad.hessian(sq),
}

INPUTS = {
    "0d": np.array(0.7),
    "0d_f32": np.array(0.7, np.float32),
    "1d": np.array([0.7, -1.2, 2.0]),
    "1d_f32": np.array([0.7, -1.2, 2.0], np.float32),
    "np_float64": np.float64(0.7),
    "python_float": 0.7,
}


@pytest.mark.parametrize("xname", sorted(INPUTS))
@pytest.mark.parametrize("name", sorted(OUT_TRANSFORMS))
def test_output_types_match_eager(name, xname):
    t, x = OUT_TRANSFORMS[name](), INPUTS[xname]
    eager = t(x)
    jt = ad.jit(t)
    loose = type(x) is float
    _same(jt(x), eager, loose)                  # the recording's own outputs
    for _ in range(NUMBA_AFTER + 2):            # replays, past the move to Numba
        _same(jt(x), eager, loose)
    assert jt.recordings == 1


def test_zero_d_grad_is_ndarray():
    g = ad.jit(ad.grad(sq))(np.array(0.7))
    assert type(g) is np.ndarray and g.shape == () and g.dtype == np.float64
    g32 = ad.jit(ad.grad(sq))(np.array(0.7, np.float32))
    assert type(g32) is np.ndarray and g32.dtype == np.float32


@pytest.mark.parametrize("xname", ["0d", "0d_f32", "np_float64"])
def test_transforms_of_jitted_zero_d_grad(xname):
    # the cast that keeps the 0-d array is differentiable: outer transforms see through it
    x = INPUTS[xname]
    jg = ad.jit(ad.grad(sq))
    want = ad.grad(ad.grad(sq))(x)
    rtol = 1e-5 if np.result_type(x) == np.float32 else 1e-10
    for got in (ad.grad(jg)(x), ad.jacfwd(jg)(x), ad.jit(ad.grad(jg))(x)):
        assert type(got) is type(want) and np.result_type(got) == np.result_type(want)
        np.testing.assert_allclose(got, want, rtol=rtol)
