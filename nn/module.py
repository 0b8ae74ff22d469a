"""Modules and parameters, with PyTorch's habits.

A ``Parameter`` is a leaf ``Variable`` of the eager reverse level: ``loss.backward()`` fills
its ``.grad``. A ``Module`` registers the parameters, buffers and sub-modules assigned to it
as attributes, in order, so ``parameters()``, ``state_dict()`` and ``repr`` need no
declarations. ``functional_call`` runs a module with other values in place of its
parameters, which is how ``ad.grad`` differentiates a network as a pure function.
"""
from collections import OrderedDict

import numpy as np

from autodiff.reverse import Variable

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "functional_call"]


class _ParameterMeta(type):
    # The engine checks ``type(x) is Variable`` on its hot path, so a parameter is a plain
    # leaf Variable; ``isinstance(x, Parameter)`` recognises one.
    def __instancecheck__(cls, obj):
        return type(obj) is Variable and obj.prim is None and obj.parents is not None


class Parameter(metaclass=_ParameterMeta):
    """``Parameter(data)``: a leaf ``Variable`` that a Module registers as trainable."""

    def __new__(cls, data, requires_grad=True):
        data = np.array(data, copy=True)
        if data.dtype.kind != "f":
            data = data.astype(np.float64)
        return Variable(data, requires_grad=requires_grad)


def _host_copy(v):
    """A NumPy copy of a host or device array."""
    return v.to_host() if hasattr(v, "to_host") else np.array(v)


def _mover(device, dtype):
    """``v -> v`` on ``device`` (and in ``dtype`` when floating point)."""
    dev = None if device is None else str(device).split(":")[0].lower()
    if dev not in (None, "cpu", "gpu", "cuda"):
        raise ValueError(f"Module.to: unknown device {device!r}; use 'gpu' or 'cpu'")

    def move(v):
        if dtype is not None and np.dtype(v.dtype).kind == "f":
            v = v.astype(dtype)
        if dev == "cpu":
            return v.to_host() if hasattr(v, "to_host") else v
        if dev in ("gpu", "cuda"):
            from autodiff import gpu
            return gpu.to_device(v)
        return v
    return move


class Module:
    """Base class of layers and models: subclass it, assign parameters and sub-modules in
    ``__init__``, compute in ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration -----
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning to a Module")
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, value):
        """State that is saved but not trained (running means of BatchNorm)."""
        self._buffers[name] = value

    def register_parameter(self, name, value):
        self._parameters[name] = value

    def add_module(self, name, module):
        self._modules[name] = module

    # ----- calling -----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----- traversal -----
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", remove_duplicate=True):
        """(dotted name, parameter) pairs; a parameter shared by several modules comes
        once (PyTorch's default), so an optimizer never steps it twice."""
        seen = set()
        for mname, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is None:
                    continue
                if remove_duplicate:
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                yield (f"{mname}.{name}" if mname else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                yield (f"{mname}.{name}" if mname else name), b

    # ----- modes and gradients -----
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # ----- devices -----
    def to(self, device=None, dtype=None):
        """Move every parameter, gradient and buffer to ``device`` in place and return the
        module (PyTorch's ``Module.to``): ``"gpu"`` (or ``"cuda"``) puts them in
        ``autodiff.gpu`` device arrays, ``"cpu"`` brings them back as NumPy arrays. The
        parameters stay the same objects, so an optimizer built on them keeps them; build
        it after the move, as in PyTorch, so its state lives on the same device.
        ``dtype`` (optional) also casts floating-point parameters and buffers.

        >>> from autodiff import nn
        >>> m = nn.Linear(3, 2).to("cpu")
        >>> type(m.weight.value).__name__
        'ndarray'
        """
        move = _mover(device, dtype)
        for p in self.parameters():
            p.value = move(p.value)
            if p.grad is not None:
                p.grad = move(p.grad)
        for _, m, name in list(self._buffer_owners()):
            b = m._buffers[name]
            if b is not None and hasattr(b, "dtype"):
                m._buffers[name] = move(b)
        return self

    def cuda(self):
        return self.to("gpu")

    def cpu(self):
        return self.to("cpu")

    # ----- state -----
    def state_dict(self):
        """Every parameter and buffer by dotted name, as plain NumPy arrays (copies)."""
        # Every name of a shared parameter, as PyTorch's state_dict.
        out = OrderedDict((n, _host_copy(p.value))
                          for n, p in self.named_parameters(remove_duplicate=False))
        out.update((n, _host_copy(b)) for n, b in self.named_buffers())
        return out

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers; names and shapes must match."""
        own = dict(self.named_parameters(remove_duplicate=False))
        buffers = {n: (m, b) for n, m, b in self._buffer_owners()}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        extra = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or extra):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {extra}")
        for k, v in state.items():
            v = np.asarray(v)
            if k in own:
                p = own[k]
                if v.shape != np.shape(p.value):
                    raise ValueError(f"load_state_dict: {k!r} has shape {v.shape}, the model "
                                     f"expects {np.shape(p.value)}")
                p.value = v.astype(np.result_type(p.value), copy=True)
            elif k in buffers:
                m, name = buffers[k]
                old = m._buffers[name]
                if v.shape != np.shape(old):
                    raise ValueError(f"load_state_dict: {k!r} has shape {v.shape}, the model "
                                     f"expects {np.shape(old)}")
                m._buffers[name] = v.astype(np.result_type(old), copy=True)
        return self

    def _buffer_owners(self):
        for mname, m in self.named_modules():
            for name in m._buffers:
                yield (f"{mname}.{name}" if mname else name), m, name

    # ----- display -----
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            lines[0] = lines[0].rstrip("(") + "("
            for name, m in self._modules.items():
                sub = repr(m).replace("\n", "\n  ")
                lines.append(f"  ({name}): {sub}")
            lines.append(")")
            return "\n".join(lines)
        return lines[0] + ")"


class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(4, 8), Tanh(), Linear(8, 1))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules whose parameters the parent registers."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m):
        self.add_module(str(len(self._modules)), m)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def functional_call(model, params, *args, **kwargs):
    """``model(*args)`` with the values in ``params`` (a dict name → value, as from
    ``dict(model.named_parameters())`` or a pytree of arrays) standing in for its
    parameters. The values may be tracked by any transform, so

        ad.grad(lambda p: loss(nn.functional_call(model, p, x), y))(params)

    differentiates a network as a pure function of its parameters (to any order).
    """
    owners = {}
    for mname, m in model.named_modules():
        for name in m._parameters:
            owners[f"{mname}.{name}" if mname else name] = (m, name)
    unknown = [k for k in params if k not in owners]
    if unknown:
        raise KeyError(f"functional_call: {model.__class__.__name__} has no parameters "
                       f"{unknown}; it has {list(owners)}")
    saved = {k: owners[k][0]._parameters[owners[k][1]] for k in params}
    try:
        for k, v in params.items():
            m, name = owners[k]
            m._parameters[name] = v
        return model(*args, **kwargs)
    finally:
        for k, v in saved.items():
            m, name = owners[k]
            m._parameters[name] = v
