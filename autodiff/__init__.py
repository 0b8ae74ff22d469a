"""autodiff: forward mode on dual numbers, reverse mode on an adjoint tape, one API.

>>> import autodiff as ad
>>> ad.grad(lambda x: x ** 2)(3.0)
6.0
"""
from . import allocator  # noqa: F401  (the C allocator's thresholds for tapes)
from . import ops  # noqa: F401  (fills the primitive registry)
from .api import (derivative, elementwise_grad, grad, hessian, hvp, jacfwd, jacobian, jacrev,
                  jvp, linear_operator, linearize, stop_gradient, value_and_grad, vjp)
from .compressed import sparse_hessian, sparse_jacobian
from .custom import checkpoint, custom_jvp, custom_vjp
from .forward import Dual
from .implicit import custom_fixed_point, custom_root
from .tracing import jit
from .reverse import Tape, Variable
from .sparsity import sparsity
from .testing import check_grads

__version__ = "0.1.0"


def _map_source_checkout():
    """In a source checkout, ``nn/`` (and later ``gpu/``) sit beside ``autodiff/``, as
    pyproject's package-dir lays them out; an install copies them inside. Map the names the
    same way here, so ``import autodiff.nn`` works from a checkout too. Nothing is imported
    until it is asked for."""
    import importlib.abc
    import importlib.util
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    mapped = {f"{__name__}.{sub}": os.path.join(root, sub) for sub in ("nn", "gpu")
              if not os.path.isdir(os.path.join(here, sub))
              and os.path.isfile(os.path.join(root, sub, "__init__.py"))}
    if not mapped:
        return

    class _SourceFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            src = mapped.get(fullname)
            if src is None:
                return None
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(src, "__init__.py"), submodule_search_locations=[src])

    sys.meta_path.append(_SourceFinder())


_map_source_checkout()


def __getattr__(name):
    # ``autodiff.nn`` and ``autodiff.gpu`` load on first use: ``import autodiff`` stays the
    # engine alone (and never imports Numba).
    if name in ("nn", "gpu"):
        import importlib
        return importlib.import_module(f"autodiff.{name}")
    raise AttributeError(f"module 'autodiff' has no attribute {name!r}")

__all__ = ["grad", "value_and_grad", "jacobian", "jacfwd", "jacrev", "hessian", "jvp", "vjp",
           "hvp", "linearize", "linear_operator", "derivative", "elementwise_grad", "check_grads",
           "stop_gradient", "jit", "sparsity", "sparse_jacobian", "sparse_hessian",
           "checkpoint", "custom_jvp", "custom_vjp", "custom_root", "custom_fixed_point",
           "Dual", "Variable", "Tape"]
