"""float32 inputs keep float32 derivatives (JAX's rule, API.md): the rules below multiplied a
float32 tangent or cotangent by something float64 (a float64 constant array, SciPy's
``polygamma``, an ``np.float64`` scalar from a Python-float parameter, ``np.eye``/``np.zeros``
without a dtype) and so returned float64 tangents, gradients and Hessians, or even a float64
primal where NumPy gives float32. Found by the seam fuzzer ("jvp dtype", "hessian dtype").
Each case failed before its fix.

For each function: the primal has NumPy's dtype (float32 here: NumPy keeps float32 for all of
them), and the JVP tangent, the VJP cotangent, the gradient and the Hessian of
``Σ sin(f)`` are float32, and agree with the same derivatives computed in float64."""
import numpy as np
import pytest
import scipy.special as sp

import autodiff as ad
from autodiff.scipy import stats

F32 = np.dtype(np.float32)

CASES = {
    # scipy.special: digamma's partial is SciPy's polygamma (float64 for float32 input).
    "digamma": (sp.digamma, "pos"),
    "gammaln": (sp.gammaln, "pos"),          # Hessian through digamma
    "gamma": (sp.gamma, "pos"),
    "rgamma": (sp.rgamma, "pos"),
    # Python-float parameters: gammaln(0.5·(df + 1)) is an np.float64 scalar.
    "stdtr": (lambda x: sp.stdtr(3.5, x), "real"),
    "t.logcdf-logsf": (lambda x: stats.t.logcdf(x, 3.5) + stats.t.logsf(x, 5.0), "real"),
    "betainc": (lambda x: sp.betainc(2.0, 3.0, x), "unit01"),
    # ldexp's partial np.ldexp(1.0, i); copysign's np.where(..., 1.0, -1.0).
    "ldexp": (lambda x: np.ldexp(x, np.array([[1], [-1]])), "real"),
    "copysign": (lambda x: np.copysign(x, np.array([1.0, -1.0, -2.0], np.float32)), "nonzero"),
    # rfft/irfft reverse rules divided by float64 Hermitian weights.
    "rfft": (lambda x: np.abs(np.fft.rfft(x)) ** 2, "real"),
    "rfftn-s": (lambda x: np.real(np.fft.rfftn(x.reshape(3, 2), s=(4, 3), axes=(-1, 0))),
                "real6"),
    "irfft": (lambda x: np.fft.irfft(x * (1 + 0.5j), n=4), "real"),
    "hfft": (lambda x: np.fft.hfft(x * (1 - 0.5j)), "real"),
    # norm(x, 0) counted in float64.
    "norm-ord-0": (lambda x: np.linalg.norm(x, 0) * x + np.linalg.norm(x, 3), "nonzero"),
    # pad(reflect_type='odd') multiplied by a float64 np.eye.
    "pad-reflect-odd": (lambda x: np.pad(x, (2, 1), mode="reflect", reflect_type="odd"), "real"),
    # insert of a Python float: NumPy casts the values to arr's dtype.
    "insert": (lambda x: np.insert(x, [1, 3], 7.0) ** 2, "real"),
    # polydiv's long division padded with float64 zeros.
    # (a power-of-two divisor: exact remainders, so NumPy and autodiff trim alike)
    "polydiv": (lambda x: np.concatenate(np.polydiv(x, np.float32([2.0]))), "pos"),
    # gradient with float64 coordinates: NumPy writes into an array of f's dtype.
    "gradient-coords": (lambda x: np.gradient(x, np.array([0.0, 0.4, 1.5]), edge_order=2),
                        "real"),
}


def _input(dom, dtype):
    rng = np.random.default_rng(0)
    if dom == "real6":
        x = rng.uniform(-2.0, 2.0, 6)
    else:
        x = rng.uniform(-2.0, 2.0, 3)
        if dom == "pos":
            x = 1.25 + 0.375 * x
        elif dom == "nonzero":
            x = np.where(x < 0, x - 0.5, x + 0.5)
        elif dom == "unit01":
            x = 0.5 + 0.2 * x
    return x.astype(dtype)


def _leaves(tree):
    return ad.tree.flatten(tree)[0]


@pytest.mark.parametrize("name", CASES)
def test_float32_in_float32_out(name):
    fn, dom = CASES[name]
    x32, x64 = _input(dom, np.float32), _input(dom, np.float64)
    with np.errstate(all="ignore"):
        want = np.asarray(fn(x32))
    assert want.dtype == F32                          # NumPy's own rule: float32 stays
    # primal and forward mode
    out, t = ad.jvp(fn, (x32,), (np.ones_like(x32),))
    assert np.asarray(out).dtype == F32
    assert np.asarray(t).dtype == F32, f"jvp tangent {np.asarray(t).dtype}"
    # reverse mode: the cotangent of the float32 input
    out, pull = ad.vjp(fn, x32)
    (ct,) = pull(np.ones_like(want))
    assert np.asarray(ct).dtype == F32, f"vjp cotangent {np.asarray(ct).dtype}"

    def G(x):
        return np.sum(np.sin(fn(x)))
    g32, g64 = ad.grad(G)(x32), ad.grad(G)(x64)
    assert np.asarray(g32).dtype == F32, f"grad {np.asarray(g32).dtype}"
    H32, H64 = ad.hessian(G)(x32), ad.hessian(G)(x64)
    assert np.asarray(H32).dtype == F32, f"hessian {np.asarray(H32).dtype}"
    Hr = ad.jacrev(ad.grad(G))(x32)
    assert np.asarray(Hr).dtype == F32, f"jacrev(grad) {np.asarray(Hr).dtype}"
    # the float32 derivatives are the float64 ones, rounded (not values cast from nonsense)
    scale = 1.0 + np.max(np.abs(H64))
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3 * (1.0 + np.max(np.abs(g64))))
    np.testing.assert_allclose(H32, H64, rtol=1e-2, atol=1e-2 * scale)
    np.testing.assert_allclose(Hr, H64, rtol=1e-2, atol=1e-2 * scale)


@pytest.mark.parametrize("name", ["digamma", "t.logcdf-logsf", "ldexp", "copysign", "rfft",
                                  "polydiv", "gradient-coords"])
def test_float64_derivatives_unchanged(name):
    """The fixes keep float64 derivatives exact: second order against central differences."""
    fn, dom = CASES[name]
    ad.check_grads(fn, (_input(dom, np.float64),), order=2)


def test_polygamma_keeps_scipys_dtype():
    """SciPy's polygamma gives float64 for float32 input (NumPy's side of the rule): the
    primal follows SciPy; digamma's float32 derivative is still float32."""
    x = np.float32([1.5, 2.0])
    assert sp.polygamma(1, x).dtype == np.float64
    assert np.asarray(ad.scipy.special.polygamma(1, x)).dtype == np.float64
    assert ad.grad(lambda x: np.sum(sp.digamma(x)))(x).dtype == F32


def test_polydiv_by_a_constant_has_numpys_remainder():
    """A length-1 divisor: NumPy's remainder is [0.]; autodiff's was empty (found here)."""
    u, v = np.array([1.5, 1.2, 0.8]), np.array([2.0])
    q, r = np.polydiv(u, v)
    (tq, tr), _ = ad.jvp(lambda u: np.polydiv(u, v), (u,), (np.ones(3),))
    np.testing.assert_array_equal(tq, q)
    np.testing.assert_array_equal(tr, r)
