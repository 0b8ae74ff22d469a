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
    rng = np.random.default_rng(7000 + 100 * which + seed)
    seams.check(seams.program_through(BLOCKS[which], rng, seed))
