"""The device tests run on Numba's CUDA simulator (CI has no GPU): the variable must be set
before numba is first imported, so it is set here, at collection of this folder."""
import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))   # tests/cases.py
