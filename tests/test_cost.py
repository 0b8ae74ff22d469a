"""Tape cost accounting: records, declared flops, bytes, and the Jacobian comparison."""
import numpy as np

import autodiff as ad


def _record(f, x):
    with ad.Tape() as tape:
        v = ad.Variable(x)
        f(v)
    return tape


def test_counts_of_a_known_program():
    W = np.ones((7, 5))
    tape = _record(lambda x: np.sum(np.sin(W @ x) * 2.0), np.ones(5))
    c = tape.cost()
    assert c.inputs == 1
    assert c.by_primitive["matmul"] == (1, 2 * 7 * 5)
    assert c.by_primitive["sin"] == (1, 10 * 7)                 # sin declares 10 per element
    assert c.by_primitive["multiply"] == (1, 7)
    assert c.flops == sum(fl for _, fl in c.by_primitive.values())
    assert c.records == sum(n for n, _ in c.by_primitive.values())
    assert c.flops_jvp > c.flops and c.flops_vjp > c.flops
    assert "matmul" in str(c) and "records" in str(c)


def test_bytes_held_grow_with_the_data():
    small = _record(lambda x: np.sum(np.exp(x) * x), np.ones(100)).cost().bytes
    large = _record(lambda x: np.sum(np.exp(x) * x), np.ones(10_000)).cost().bytes
    assert 80 * small < large < 120 * small          # linear in n


def test_jacobian_cost_prefers_the_smaller_side():
    W_wide, W_tall = np.ones((3, 200)), np.ones((200, 3))
    wide = _record(lambda x: np.tanh(W_wide @ x), np.ones(200)).jacobian_cost()
    tall = _record(lambda x: np.tanh(W_tall @ x), np.ones(3)).jacobian_cost()
    assert (wide.n_in, wide.n_out, wide.cheaper) == (200, 3, "reverse")
    assert (tall.n_in, tall.n_out, tall.cheaper) == (3, 200, "forward")
    assert tall.forward_flops < tall.reverse_flops
    assert tall.reverse_bytes > tall.forward_bytes            # reverse holds the tape
    assert "cheaper" in str(wide)
