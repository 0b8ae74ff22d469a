"""The seam fuzzer's programs, jitted: every transform of a random program under ``ad.jit``
equals its eager twin, on the recording's inputs, replayed on fresh inputs of the same
signature (other values: guards decide whether the recording still applies) and on another
signature (float32, or the other leaf shapes' program); past the tier the fused backend too.

A program that the eager transform refuses must be refused jitted as well (the same
exception type), never answered; a refusable block (a custom rule closing over a value
the recording tracks) may also refuse under ``ad.jit`` alone.
"""
import numpy as np
import pytest

import autodiff as ad
from autodiff import program as program_module
from autodiff.tree import flatten

import seams

N_PROGRAMS = 60          # the Python backend: cheap
N_FUSED = 6              # past the tier (Numba kernels compile once per installation)


def _specs(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        p = seams.Program(seams.random_spec(rng, max_steps=5))
        if p.steps and p.plain:
            out.append(p)
    return out


def _scalar(p, out_shape, seed=0):
    """A real scalar of the program's output, with fixed weights (so every element counts)."""
    w = np.random.default_rng(seed).standard_normal(out_shape)
    f = p.function()

    def G(*args):
        return np.sum(f(*args) * w)
    return G


def _tol(dtype):
    return (2e-4, 2e-5) if dtype == np.float32 else (1e-9, 1e-11)


def _same(got, want, dtype):
    rtol, atol = _tol(dtype)
    gl, gt = flatten(got)
    wl, wt = flatten(want)
    assert gt == wt, f"structure {gt} != {wt}"
    assert len(gl) == len(wl)
    for a, b in zip(gl, wl):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        scale = max(1.0, float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0)))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True)


def _eager_or_error(thunk):
    try:
        with np.errstate(all="ignore"):
            return thunk(), None
    except Exception as e:                                   # noqa: BLE001
        return None, e


def _transforms(p, G, f):
    """(name, eager function, jitted function) for the program's transforms."""
    nargs = 2 if p.structure == "two_args" else 1
    argnums = tuple(range(nargs)) if nargs > 1 else 0
    ts = [("f", f), ("grad", ad.grad(G, argnums=argnums)),
          ("value_and_grad", ad.value_and_grad(G, argnums=argnums))]
    if p.forward:
        ts.append(("jacfwd", ad.jacfwd(f, argnums=argnums)))
    ts.append(("jacrev", ad.jacrev(f, argnums=argnums)))
    if p.order2 and p.forward:
        ts.append(("hessian", ad.hessian(G, argnums=argnums)))
    return [(name, fn, ad.jit(fn)) for name, fn in ts]


def _fresh(p, rng, dtype=None):
    """Leaves of the same shapes, other values (the same dtype unless given)."""
    out = []
    for x in p.leaves:
        y = x + 0.3 * rng.standard_normal(x.shape)
        out.append(np.asarray(y, dtype=dtype or x.dtype))
    return out


def _check_program(p, rng, replays=2, backends=None):
    f = p.function()
    with np.errstate(all="ignore"):
        out = f(*seams._pack(p.structure, p.leaves))
    G = _scalar(p, np.shape(out))
    inputs = [p.leaves] + [_fresh(p, rng) for _ in range(replays)]
    other = np.float32 if p.dtype == np.float64 else np.float64
    inputs.append(_fresh(p, rng, other))                    # another signature
    for name, eager, jitted in _transforms(p, G, f):
        for leaves in inputs:
            args = seams._pack(p.structure, leaves)
            want, err = _eager_or_error(lambda: eager(*args))
            if err is not None:
                with pytest.raises(type(err)):
                    with np.errstate(all="ignore"):
                        jitted(*args)
                continue
            try:
                with np.errstate(all="ignore"):
                    got = jitted(*args)
            except (TypeError, NotImplementedError):
                # A block that may refuse (a custom rule closing over a value the recording
                # tracks): refused, never answered wrongly. Any other block must not refuse.
                if p.refusable:
                    continue
                raise
            try:
                _same(got, want, leaves[0].dtype)
            except AssertionError as e:
                raise AssertionError(f"jit({name}) != eager {name} on {p!r}:\n{e}") from None
        if backends is not None:
            try:
                backends.append(jitted.program(*seams._pack(p.structure, inputs[-2])).backend)
            except Exception:                                # noqa: BLE001
                pass


@pytest.mark.parametrize("k", range(N_PROGRAMS // 10))
def test_jitted_seam_programs_equal_eager(k):
    rng = np.random.default_rng(100 + k)
    for p in _specs(10, 1000 + k):
        _check_program(p, rng)


@pytest.mark.filterwarnings("error:ad.jit. a fused loop")     # a loop left out is a defect
def test_jitted_seam_programs_past_the_tier_equal_eager(monkeypatch):
    # Past the tier the array programs run on the fused backend (when Numba is installed):
    # the same numbers, and guards still steer.
    monkeypatch.setattr(program_module, "NUMBA_AFTER", 2)
    rng = np.random.default_rng(7)
    backends = []
    for p in _specs(N_FUSED, 77):
        _check_program(p, rng, replays=4, backends=backends)
    from autodiff import compiled
    if compiled.available():
        assert "fused" in backends, backends
