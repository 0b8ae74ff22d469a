"""The NumPy and nn blocks of the seam fuzzer (tests/seams_numpy.py) placed among random
others (fmax/fmin with NaN, median, ufunc.outer/at, wide qr, cholesky(upper=True), np.put,
binary cross-entropy, mapping pytrees, torch's scatter methods, F.pad's modes, embedding_bag,
ctc_loss, local_response_norm), under every check of seams.check."""
import numpy as np
import pytest

import seams
from seams_numpy import BLOCKS


@pytest.mark.parametrize("which", range(len(BLOCKS)))
@pytest.mark.parametrize("seed", range(16))
def test_seam_programs_through_a_numpy_block(which, seed):
    block = BLOCKS[which]
    index = seams.SEAM_BLOCKS.index(block)
    rng = np.random.default_rng(7000 + 100 * which + seed)
    for _ in range(50):         # programs whose shapes the block applies to
        spec = seams.random_spec(rng, max_steps=3)
        structure, shapes, f32, zeros, pseed, steps, inject = spec
        at = int(rng.integers(len(steps)))      # the block among the others
        steps = steps[:at] + ((0, index, seed),) + steps[at + 1:]
        program = seams.Program((structure, shapes, f32, zeros, pseed, steps, inject))
        if any(s.block is block for s in program.steps):
            break
    else:
        raise AssertionError("no program drawn took the block")
    seams.check(program)
