"""The solver blocks of the seam fuzzer (tests/seams_solvers.py) placed among random
others: a brentq root, a fixed point and a custom_root, under every check of seams.check."""
import numpy as np
import pytest

import seams
from seams_solvers import BLOCKS


@pytest.mark.parametrize("which", range(len(BLOCKS)))
@pytest.mark.parametrize("seed", range(16))
def test_seam_programs_through_a_solver_block(which, seed):
    rng = np.random.default_rng(100 * which + seed)
    seams.check(seams.program_through(BLOCKS[which], rng, seed))
