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
