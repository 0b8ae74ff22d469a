"""autodiff: forward mode on dual numbers, reverse mode on an adjoint tape, one API.

>>> import autodiff as ad
>>> ad.grad(lambda x: x ** 2)(3.0)
6.0
"""
from . import ops  # noqa: F401  (fills the primitive registry)
from .api import (derivative, elementwise_grad, grad, hessian, hvp, jacfwd, jacobian, jacrev,
                  jvp, stop_gradient, value_and_grad, vjp)
from .custom import checkpoint, custom_jvp, custom_vjp
from .forward import Dual
from .reverse import Tape, Variable
from .testing import check_grads

__version__ = "0.1.0"


def __getattr__(name):
    # ``autodiff.nn`` (and later ``autodiff.gpu``) load on first use: ``import autodiff``
    # stays the engine alone.
    if name in ("nn",):
        import importlib
        return importlib.import_module(f"autodiff.{name}")
    raise AttributeError(f"module 'autodiff' has no attribute {name!r}")

__all__ = ["grad", "value_and_grad", "jacobian", "jacfwd", "jacrev", "hessian", "jvp", "vjp",
           "hvp", "derivative", "elementwise_grad", "check_grads", "stop_gradient",
           "checkpoint", "custom_jvp", "custom_vjp", "Dual", "Variable", "Tape"]
