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


# ----- batched directions: jacfwd / jacrev against single directions ---------------------
# A rule sees a batch of directions as a leading axis on its tangent or cotangent. These
# planted rules are right for one direction (a 1-D tangent, where axis 0 is the data axis)
# and wrong for a batch (they act on the batch axis): only the batched check can see it.

def _cumsum_with(jvp, vjp):
    p = Primitive("planted_cumsum", lambda x: np.cumsum(x, axis=-1), jvp=(jvp,), vjp=(vjp,))
    return lambda x: bind(p, x) * 1.5


def cumsum_right(t, ans, x):
    return np.cumsum(t, axis=-1)


def cumsum_batch_wrong(t, ans, x):
    return np.cumsum(t, axis=0)


def rcumsum_right(g, ans, x):
    return np.flip(np.cumsum(np.flip(g, -1), axis=-1), -1)


def rcumsum_batch_wrong(g, ans, x):
    return np.flip(np.cumsum(np.flip(g, 0), axis=0), 0)


def test_batch_correct_rules_pass():
    ad.check_grads(_cumsum_with(cumsum_right, rcumsum_right), (X,), order=2)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_rule_wrong_only_for_a_batch_fails(mode):
    f = _cumsum_with(cumsum_batch_wrong, rcumsum_right) if mode == "fwd" else \
        _cumsum_with(cumsum_right, rcumsum_batch_wrong)
    # One direction at a time the rule is right:
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(ad.jvp(f, (X,), (v,))[1], 1.5 * np.cumsum(v))
    np.testing.assert_allclose(ad.vjp(f, X)[1](v)[0], 1.5 * np.cumsum(v[::-1])[::-1])
    batched = "jacfwd" if mode == "fwd" else "jacrev"
    with pytest.raises(AssertionError, match=f"batched {batched} .*order 1"):
        ad.check_grads(f, (X,), order=1, modes=(mode,))


def _sin_with_planted_cos(cos_jvp, cos_vjp):
    """sin whose rules call a planted cos: the cos rules run only at second order."""
    cos_p = Primitive("planted_cos", np.cos, jvp=(cos_jvp,), vjp=(cos_vjp,))
    sin_p = Primitive("planted_sin2", np.sin, jvp=(lambda t, ans, x: t * bind(cos_p, x),),
                      vjp=(lambda g, ans, x: g * bind(cos_p, x),))
    return lambda x: bind(sin_p, x)


def dcos_right(t, ans, x):
    return -np.sin(x) * t


def dcos_batch_wrong(t, ans, x):
    # Axis 0 and the last axis are the same axis of one 1-D direction only: there the
    # correction term is zero; on a batch (even the identity basis) it is not.
    return -np.sin(x) * (t + np.cumsum(t, axis=0) - np.cumsum(t, axis=-1))


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_second_order_rule_wrong_only_for_a_batch_fails_at_order_2(mode):
    f = _sin_with_planted_cos(dcos_batch_wrong, dcos_right) if mode == "fwd" else \
        _sin_with_planted_cos(dcos_right, dcos_batch_wrong)
    ad.check_grads(f, (X,), order=1, modes=(mode,))        # first order never sees it
    batched = "jacfwd" if mode == "fwd" else "jacrev"
    with pytest.raises(AssertionError, match=f"batched {batched} .*order 2"):
        ad.check_grads(f, (X,), order=2, modes=(mode,))
    with pytest.raises(AssertionError, match="batched .*order 2"):
        ad.check_grads(f, (X,), order=2, modes=("fwd", "rev"))
    ad.check_grads(_sin_with_planted_cos(dcos_right, dcos_right), (X,), order=2)


def test_batched_check_covers_several_arguments_and_outputs():
    p = Primitive("planted_cumsum2", lambda x: np.cumsum(x, axis=-1),
                  jvp=(cumsum_batch_wrong,), vjp=(rcumsum_right,))

    def f(x, y):
        return {"a": bind(p, x) * y, "b": np.sum(x) * y}

    with pytest.raises(AssertionError, match="batched jacfwd"):
        ad.check_grads(f, (X, 0.7), order=1, modes=("fwd",))
    ad.check_grads(lambda x, y: {"a": np.cumsum(x) * y, "b": np.sum(x) * y}, (X, 0.7), order=2)
