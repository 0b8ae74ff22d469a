"""check_grads must fail on a planted wrong rule, at first and at second order."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.core import Primitive, bind


def _sin_with(jvp, vjp):
    p = Primitive("planted_sin", np.sin, jvp=(jvp,), vjp=(vjp,))
    return lambda x: bind(p, x)


def right(t, ans, x):
    return t * np.cos(x)


def wrong_first_order(t, ans, x):
    return t * np.cos(x) * 1.001


def wrong_second_order(t, ans, x):
    # Right value, but the rule hides its dependence on x: its own derivative is zero.
    return t * ad.stop_gradient(np.cos(x))


X = np.array([0.3, -0.7, 1.1])


def test_correct_rule_passes():
    ad.check_grads(_sin_with(right, right), (X,), order=2)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_wrong_first_order_rule_fails(mode):
    f = _sin_with(wrong_first_order, right) if mode == "fwd" else \
        _sin_with(right, wrong_first_order)
    with pytest.raises(AssertionError, match=f"{mode} mode at order 1"):
        ad.check_grads(f, (X,), order=1, modes=(mode,))


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_wrong_second_order_rule_fails_only_at_order_2(mode):
    f = _sin_with(wrong_second_order, right) if mode == "fwd" else \
        _sin_with(right, wrong_second_order)
    ad.check_grads(f, (X,), order=1, modes=(mode,))          # first order is right
    with pytest.raises(AssertionError, match="order 2"):
        ad.check_grads(f, (X,), order=2, modes=(mode,))


def test_dot_product_identity_is_checked():
    f = _sin_with(right, wrong_first_order)
    with pytest.raises(AssertionError):
        ad.check_grads(f, (X,), order=1, modes=("fwd", "rev"))


def test_message_names_worst_error():
    with pytest.raises(AssertionError, match="worst error"):
        ad.check_grads(_sin_with(wrong_first_order, right), (X,), order=1, modes=("fwd",))
