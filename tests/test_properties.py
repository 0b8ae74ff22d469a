"""Hypothesis composes random programs from the registry's primitives; forward and reverse
Jacobians must agree, and <u, J v> = <Jᵀ u, v> must hold."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import autodiff as ad

# Total functions on the reals (safe anywhere a random program may take them).
UNARY = [np.sin, np.cos, np.tanh, np.arctan, lambda x: np.exp(-x * x), np.square,
         lambda x: np.sqrt(1.0 + x * x), lambda x: np.log1p(x * x), np.negative,
         lambda x: x[::-1], lambda x: x * 2.0,
         lambda x: np.concatenate([x[1:], x[:1]]), lambda x: np.abs(x) + 1.0]
BINARY = [np.add, np.subtract, np.multiply, lambda x, y: x / (1.0 + y * y),
          lambda x, y: np.hypot(x, y + 3.0), np.maximum, lambda x, y: np.where(x > y, x, y * y),
          lambda x, y: np.arctan2(x, y * y + 1.0)]
REDUCE = [lambda x: np.sum(x), lambda x: np.prod(np.tanh(x) + 2.0), lambda x: np.max(x),
          lambda x: np.mean(x * x), lambda x: x @ x, lambda x: np.linalg.norm(x + 3.0)]

program = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 100), st.integers(0, 100)),
                   min_size=1, max_size=8)


def build(steps, n_out):
    """A program: a list of values, each step appends unary(v_i), binary(v_i, v_j) or a
    reduction broadcast back; the output stacks the last few values."""
    def f(x):
        vals = [x]
        for kind, i, j in steps:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            if kind == 0:
                vals.append(UNARY[(i + j) % len(UNARY)](a))
            elif kind == 1:
                vals.append(BINARY[(i + j) % len(BINARY)](a, b))
            else:
                vals.append(a * REDUCE[(i + j) % len(REDUCE)](b))
        return np.concatenate([v for v in vals[-n_out:]])
    return f


@settings(max_examples=60, deadline=None)
@given(program, st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_forward_and_reverse_jacobians_agree(steps, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, 4)
    f = build(steps, n_out)
    jf = ad.jacobian(f, mode="forward")(x)
    jr = ad.jacobian(f, mode="reverse")(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(program, st.integers(0, 2**31 - 1))
def test_dot_product_identity(steps, seed):
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(-1.5, 1.5, 4), rng.standard_normal(4)
    f = build(steps, 2)
    out, jv = ad.jvp(f, (x,), (v,))
    u = rng.standard_normal(np.shape(out))
    _, pull = ad.vjp(f, x)
    (jtu,) = pull(u)
    np.testing.assert_allclose(u @ jv, jtu @ v, rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(program, st.integers(0, 2**31 - 1))
def test_random_programs_second_order(steps, seed):
    """Hessians of random programs: forward-over-reverse equals reverse-over-reverse."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, 4)
    f = build(steps, 1)
    g = lambda x: np.sum(np.sin(f(x)))  # noqa: E731
    h1 = ad.hessian(g)(x)
    h2 = ad.jacrev(ad.grad(g))(x)
    np.testing.assert_allclose(h1, h2, rtol=1e-8, atol=1e-8)
