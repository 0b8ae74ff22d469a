"""The docstring examples of autodiff.gpu run (on the simulator here)."""
import doctest
import importlib

import numpy as np
import pytest

pytest.importorskip("numba")
import autodiff  # noqa: E402


@pytest.mark.parametrize("name", ["autodiff.gpu", "autodiff.gpu.array", "autodiff.gpu.functions",
                                  "autodiff.gpu.kernels", "autodiff.gpu.register"])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=True).find(
            module, name, globs={"np": np, "ad": autodiff, **vars(module)}):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"
