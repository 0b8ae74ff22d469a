"""The seam fuzzer (tests/seams.py) under hypothesis: random programs across the registry
and the engine's seams, every transform against the others, central differences and NumPy.

Budget: ``AUTODIFF_SEAMS=N`` programs (default 3000, about a minute on a loaded two-core machine), or
``AUTODIFF_SEAMS_SECONDS=S`` (stop drawing after S seconds). Deterministic by default
(hypothesis derandomised); ``AUTODIFF_SEAMS_SEED=K`` draws a different, reproducible set.
The long run with grouped failures and shrunk reproducers: ``python tests/run_seams.py``.
"""
import os
import time

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings

import seams

N = int(os.environ.get("AUTODIFF_SEAMS", "3000"))
SECONDS = float(os.environ.get("AUTODIFF_SEAMS_SECONDS", "0"))
SEED = os.environ.get("AUTODIFF_SEAMS_SEED")
_START = []


def _budget(test):
    # Hypothesis's own shrinking is replaced by seams.shrink (bounded): a failing program
    # costs ~10 ms, and hypothesis may spend minutes shrinking one.
    test = settings(max_examples=N, deadline=None, derandomize=SEED is None,
                    suppress_health_check=list(HealthCheck), database=None,
                    phases=(Phase.explicit, Phase.generate), report_multiple_bugs=False)(test)
    return seed(int(SEED))(test) if SEED is not None else test


@_budget
@given(seams.spec_strategy())
def test_random_seam_programs(spec):
    if SECONDS:
        _START[:] = _START or [time.time()]
        if time.time() - _START[0] > SECONDS:
            return
    failure = None
    try:
        seams.check(spec)
    except seams.SeamFailure as e:
        failure = e
    if failure is not None:
        seams.check(seams.shrink(spec, failure.kind, budget=150))   # raises the shrunk one
        raise failure


def test_every_seam_block_is_reached():
    """Each registered seam block applies to some input (its build is not dead code)."""
    rng = np.random.default_rng(0)
    reached = set()
    for _ in range(400):
        reached |= {s.block.name for s in seams.Program(seams.random_spec(rng)).steps}
    missing = {b.name for b in seams.SEAM_BLOCKS} - reached
    assert not missing, f"seam blocks never drawn: {sorted(missing)}"


def _kind_of_failure(name, tangent):
    """The failure kind the seam checks report for one block: a custom_jvp of ``sin`` whose
    rule's tangent is ``tangent(x, t)`` (None if the program passes)."""
    import autodiff as ad

    def build(rng, shapes, dtype):
        @ad.custom_jvp
        def f(x):
            return np.sin(ad.stop_gradient(x))

        @f.defjvp
        def f_jvp(primals, tangents):
            return np.sin(primals[0]), tangent(primals[0], tangents[0])
        return (lambda env: f(env[-1])), (lambda env: np.sin(env[-1]))

    block = seams.register_block(name, build, table=[])
    seams.SEAM_BLOCKS.append(block)
    try:
        seams.check((0, (2, 2), False, False, 1, ((0, len(seams.SEAM_BLOCKS) - 1, 0),), 0))
    except seams.SeamFailure as e:
        return e.kind
    finally:
        seams.SEAM_BLOCKS.remove(block)
    return None


def test_the_checker_catches_a_wrong_rule():
    """A custom_jvp block with a wrong rule must fail the check (the fuzzer has teeth)."""
    kind = _kind_of_failure("wrong_rule", lambda x, t: 1.01 * np.cos(x) * t)
    assert kind == "jvp vs central difference", kind


def test_the_checker_catches_a_wrong_second_derivative():
    """A rule right at first order but wrong at second (its tangent does not carry the
    derivative of cos) must fail the Hessian checks: the convention-point allowance only
    forgives a point where a step away agrees with the central difference."""
    import autodiff as ad
    kind = _kind_of_failure("wrong_second_order",
                            lambda x, t: np.cos(ad.stop_gradient(x)) * t)
    assert kind is not None and ("central difference of grad" in kind or "hessian" in kind), \
        kind


def _kind_with_blocks(builds, spec_of):
    """The failure kind of the program ``spec_of(first index)`` whose seam steps are the
    temporary blocks ``builds`` (None if it passes)."""
    blocks = [seams.register_block(f"temporary_{i}", b, table=[]) for i, b in
              enumerate(builds)]
    first = len(seams.SEAM_BLOCKS)
    seams.SEAM_BLOCKS.extend(blocks)
    try:
        seams.check(spec_of(first))
    except seams.SeamFailure as e:
        return e.kind
    finally:
        del seams.SEAM_BLOCKS[first:]
    return None


def test_the_checker_compares_shapes():
    """A result with NumPy's values in another shape fails (values are compared flat)."""
    def build(rng, shapes, dtype):
        return (lambda env: np.sin(env[-1])[..., None]), (lambda env: np.sin(env[-1]))
    kind = _kind_with_blocks([build], lambda i: (0, (3, 3), False, False, 1, ((0, i, 0),), 0))
    assert kind == "primal shape", kind


def test_a_convention_point_is_allowed_but_a_wrong_rule_next_to_a_kink_is_not():
    """``max + min`` at a tie is linear along every line but not differentiable: the
    engine's convention (ties share) is allowed there. A wrong rule in a program with a
    block at a kink is still reported: a step away, it still misses the differences."""
    seams.check((3, (3, 3), False, True, 2802,
                 ((1, 190, 931), (1, 15415, 6), (0, 3099, 16145)), 0))
    import autodiff as ad

    def kink(rng, shapes, dtype):           # |y| at the input's exact zeros (a kink) ...
        return (lambda env: np.abs(env[-1]),) * 2

    def square(rng, shapes, dtype):         # ... squared: the program is smooth there
        return (lambda env: env[-1] ** 2,) * 2

    def wrong(rng, shapes, dtype):
        @ad.custom_jvp
        def f(x):
            return np.sin(ad.stop_gradient(x))

        @f.defjvp
        def f_jvp(primals, tangents):
            return np.sin(primals[0]), 1.01 * np.cos(primals[0]) * tangents[0]
        return (lambda env: f(env[-1])), (lambda env: np.sin(env[-1]))
    seed = next(s for s in range(100) if np.any(seams.Program(
        (0, (3, 3), False, True, s, (), 0)).leaves[0] == 0))
    kind = _kind_with_blocks([kink, square, wrong], lambda i: (
        0, (3, 3), False, True, seed, ((0, i, 0), (0, i + 1, 0), (0, i + 2, 0)), 0))
    assert kind == "jvp vs central difference", kind
