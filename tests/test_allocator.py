"""autodiff.allocator: glibc's thresholds raised at import, so that a sweep's arrays,
freed together, are not handed back to the system and faulted in again by the next one."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a sweep's pattern: 40 arrays of 96 KB alive together (below glibc's default mmap
# threshold, above its trim threshold together), freed together, again and again
FAULTS = """
import resource, numpy as np, autodiff
def faults():
    for _ in range(3):
        [np.ones(12000) for _ in range(40)]
    a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        [np.ones(12000) for _ in range(40)]
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - a
print(autodiff.allocator.tuned(), faults())
"""


def _run(**env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    e.pop("AUTODIFF_MALLOC", None)
    e.update(env)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                       env=e, timeout=120)
    assert p.returncode == 0, p.stderr
    state, faults = p.stdout.split()
    return state, int(faults)


glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")


@glibc
def test_thresholds_set_at_import_stop_the_page_faults():
    state, faults = _run()
    off_state, off_faults = _run(AUTODIFF_MALLOC="0")
    assert (state, off_state) == ("set", "off")
    assert off_faults > 2000                    # glibc's defaults: faulted in every round
    assert faults < off_faults / 20


@glibc
def test_a_process_that_sets_its_own_thresholds_keeps_them():
    state, _ = _run(MALLOC_TRIM_THRESHOLD_="131072")
    assert state == "environment"
