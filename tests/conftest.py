"""Suite-wide settings.

``AUTODIFF_REQUIRE=torch,ase`` (set by ``.ci/run``) turns a test skipped because one of those
modules is missing into a failure: CI installs the comparison extras, so a comparison that
does not run there is a broken install, not a skip.
"""
import os

import pytest

# autodiff.gpu's tests (tests/gpu/) run on Numba's CUDA simulator; numba reads the variable
# when it is first imported, which another test module may do before tests/gpu/ is reached.
# NUMBA_ENABLE_CUDASIM=0 in the environment runs them on a real GPU instead.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

REQUIRED = tuple(m.strip() for m in os.environ.get("AUTODIFF_REQUIRE", "").split(",")
                 if m.strip())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRED and report.skipped:
        reason = str(report.longrepr)
        missing = [m for m in REQUIRED if f"could not import '{m}'" in reason]
        if missing:
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid}: skipped for want of {missing[0]}, which "
                               f"AUTODIFF_REQUIRE says must be installed ({reason})")
