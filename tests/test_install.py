"""The install is robust to a clone named ``autodiff`` beside the user's script.

Python looks in the script's folder first: there it finds the clone, a folder named
``autodiff``, and would import it instead of the package inside it (``module 'autodiff' has
no attribute 'grad'``). The repository's own ``__init__.py`` loads the real package instead.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import numpy as np
    import autodiff as ad
    import autodiff.numpy as anp
    from autodiff import nn
    assert ad.grad(lambda x: np.sum(anp.stack([x, x * x])))(3.0) == 7.0
    assert nn.Linear(2, 3).weight.shape == (3, 2)
    print("OK", ad.__file__)
""")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_script_beside_a_clone_named_autodiff(tmp_path):
    (tmp_path / "autodiff").symlink_to(ROOT, target_is_directory=True)
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "script.py"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("OK")
    # The clone's own package ran, not an installed copy elsewhere.
    assert str(tmp_path / "autodiff" / "autodiff") in p.stdout
