"""Modules and parameters, with PyTorch's habits.

A ``Parameter`` is a leaf ``Variable`` of the eager reverse level: ``loss.backward()`` fills
its ``.grad``. A ``Module`` registers the parameters, buffers and sub-modules assigned to it
as attributes, in order, so ``parameters()``, ``state_dict()`` and ``repr`` need no
declarations. ``functional_call`` runs a module with other values in place of its
parameters, which is how ``ad.grad`` differentiates a network as a pure function.
"""
import itertools
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from autodiff.reverse import Variable

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "functional_call"]


#: Parameters made with ``requires_grad=False`` (frozen): still parameters, as in PyTorch.
#: By id: a set would compare Variables with ``==``, which is elementwise.
_frozen = weakref.WeakValueDictionary()


class _ParameterMeta(type):
    # The engine checks ``type(x) is Variable`` on its hot path, so a parameter is a plain
    # leaf Variable; ``isinstance(x, Parameter)`` recognises one.
    def __instancecheck__(cls, obj):
        return type(obj) is Variable and obj.prim is None and (
            obj.parents is not None or _frozen.get(id(obj)) is obj)


class Parameter(metaclass=_ParameterMeta):
    """``Parameter(data, requires_grad=True)``: a leaf ``Variable`` that a Module registers
    (also when frozen, ``requires_grad=False``, as PyTorch's)."""

    def __new__(cls, data, requires_grad=True):
        data = np.array(data, copy=True)
        if data.dtype.kind != "f":
            data = data.astype(np.float64)
        p = Variable(data, requires_grad=requires_grad)
        if not requires_grad:
            _frozen[id(p)] = p
        return p


def _host_copy(v):
    """A NumPy copy of a host or device array."""
    return v.to_host() if hasattr(v, "to_host") else np.array(v)


def _mover(device, dtype):
    """``v -> v`` on ``device`` (and in ``dtype`` when floating point). A dtype in the
    device's place (``m.to(np.float32)``, PyTorch's ``m.to(torch.float32)``) is the dtype."""
    if device is not None and not isinstance(device, str) and dtype is None:
        try:
            dtype, device = np.dtype(device), None
        except TypeError:
            pass
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


class _HookHandle:
    """What ``register_forward_hook`` returns (PyTorch's ``RemovableHandle``)."""
    _ids = itertools.count()

    def __init__(self, module, kind, fn):
        self.id = next(self._ids)
        self._hooks = module.__dict__.setdefault("_hooks", OrderedDict())
        self._hooks[self.id] = (kind, fn)

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of layers and models: subclass it, assign parameters and sub-modules in
    ``__init__``, compute in ``forward``."""
    #: buffers ``state_dict`` leaves out (``register_buffer(..., persistent=False)``); a
    #: module's own set is made by its first such buffer
    _non_persistent_buffers_set = frozenset()

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration -----
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning to a Module")
        # A parameter frozen by requires_grad_(False) stays one when assigned back.
        is_param = isinstance(value, Parameter) or (
            name in self._parameters and type(value) is Variable and value.prim is None)
        if not (name in self._buffers and not is_param and not isinstance(value, Module)):
            for d in (self._buffers, self._modules) if is_param else \
                    (self._parameters, self._buffers, self._modules):
                d.pop(name, None)
        if is_param:
            self._parameters[name] = value      # in its old place, as PyTorch's
        elif name in self._buffers and not isinstance(value, Module):
            # ``self.count = self.count + 1`` updates the buffer (PyTorch's habit); it had
            # become a plain attribute, missing from state_dict()
            self._buffers[name] = value
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

    def register_buffer(self, name, tensor, persistent=True):
        """State that is not trained (running means of BatchNorm): saved by
        ``state_dict()`` unless ``persistent=False``; ``None`` registers the name only."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if name not in self._buffers and (name in self._parameters or name in self._modules
                                          or name in self.__dict__):
            raise KeyError(f"attribute {name!r} already exists")
        self._buffers[name] = tensor
        names = self.__dict__.setdefault("_non_persistent_buffers_set", set())
        if persistent:
            names.discard(name)
        else:
            names.add(name)

    def register_parameter(self, name, value):
        self._parameters[name] = value

    def add_module(self, name, module):
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The sub-module at the dotted path ``target`` (``""``: this module)."""
        m = self
        for part in target.split(".") if target else ():
            if part not in m._modules:
                raise AttributeError(f"{type(m).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            m = m._modules[part]
        return m

    def get_parameter(self, target):
        return self._get_entry(target, "_parameters", "parameter")

    def get_buffer(self, target):
        return self._get_entry(target, "_buffers", "buffer")

    def _get_entry(self, target, table, what):
        """The entry ``a.b.name`` of sub-module ``a.b``'s ``table``, PyTorch's error if none."""
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        entries = getattr(m, table)
        if name not in entries:
            raise AttributeError(f"{type(m).__name__} has no {what} {name!r}")
        return entries[name]

    # ----- calling -----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        for kind, fn in list(hooks.values()):          # PyTorch's forward pre-hooks first
            if kind == "pre":
                out = fn(self, args)
                if out is not None:
                    args = out if isinstance(out, tuple) else (out,)
        result = self.forward(*args, **kwargs)
        for kind, fn in list(hooks.values()):
            if kind == "post":
                out = fn(self, args, result)
                if out is not None:
                    result = out
        return result

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` before each call; a result other than ``None`` replaces
        the positional arguments. Returns a handle whose ``remove()`` unregisters it."""
        return _HookHandle(self, "pre", hook)

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` after each call; a result other than ``None``
        replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        return _HookHandle(self, "post", hook)

    # ----- traversal -----
    def named_children(self):
        """(name, child) pairs; a child held under two names comes once (PyTorch's)."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) pairs, this module first, depth first (PyTorch's
        signature): a module shared by several parents comes once unless
        ``remove_duplicate=False`` (``state_dict`` lists it under each name)."""
        if remove_duplicate:
            memo = set() if memo is None else memo
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                           remove_duplicate)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, parameter) pairs; a parameter shared by several modules comes
        once (PyTorch's default), so an optimizer never steps it twice. ``recurse=False``:
        this module's own parameters only."""
        seen = set()
        mods = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                if recurse else [(prefix, self)])
        for mname, m in mods:
            for name, p in m._parameters.items():
                if p is None:
                    continue
                if remove_duplicate:
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                yield (f"{mname}.{name}" if mname else name), p

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, buffer) pairs, persistent or not; ``None`` buffers are skipped."""
        seen = set()
        for mname, m in (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                         if recurse else [(prefix, self)]):
            for name, b in m._buffers.items():
                if b is None or remove_duplicate and id(b) in seen:
                    continue
                seen.add(id(b))
                yield (f"{mname}.{name}" if mname else name), b

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ----- modes and gradients -----
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else np.zeros_like(p.grad)

    def requires_grad_(self, requires_grad=True):
        """Mark every parameter trainable (or frozen), as PyTorch's; returns the module."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """``fn(m)`` for every sub-module, children first, then this one (PyTorch's
        ``Module.apply``, e.g. for a custom initialisation); returns the module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _cast(self, dtype):
        for p in self.parameters():
            p.value = np.asarray(p.value).astype(dtype)
            if p.grad is not None:
                p.grad = np.asarray(p.grad).astype(dtype)
        for m in self.modules():
            for name, b in m._buffers.items():
                if getattr(b, "dtype", None) is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    def double(self):
        """Parameters and floating-point buffers as float64 (PyTorch's ``Module.double``)."""
        return self._cast(np.float64)

    def float(self):
        """Parameters and floating-point buffers as float32 (PyTorch's ``Module.float``)."""
        return self._cast(np.float32)

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
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                if b is not None and hasattr(b, "dtype"):
                    m._buffers[name] = move(b)
        return self

    def cuda(self):
        return self.to("gpu")

    def cpu(self):
        return self.to("cpu")

    # ----- state -----
    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """Every parameter and persistent buffer by dotted name, as plain NumPy arrays
        (copies; the Parameters themselves with ``keep_vars=True``), in PyTorch's order:
        each module's parameters, then its buffers, then its children's. A shared
        parameter comes under each of its names, as in PyTorch. ``prefix`` starts every
        key (``prefix="enc."``: ``"enc.weight"``); ``destination`` is filled and returned."""
        out = OrderedDict() if destination is None else destination
        for mname, m in self.named_modules(remove_duplicate=False):
            dot = prefix + (f"{mname}." if mname else "")
            for name, p in m._parameters.items():
                if p is not None:
                    out[dot + name] = p if keep_vars else _host_copy(p.value)
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent_buffers_set:
                    out[dot + name] = b if keep_vars else _host_copy(b)
        return out

    def load_state_dict(self, state, strict=True, assign=False):
        """Copy arrays into the parameters and buffers; shapes must match, and with
        ``strict`` the names too. Returns PyTorch's ``(missing_keys, unexpected_keys)``
        named tuple. Its errors are PyTorch's ``RuntimeError`` (also a ``KeyError`` for
        names and a ``ValueError`` for shapes)."""
        own = dict(self.named_parameters(remove_duplicate=False))
        buffers = {n: (m, b) for n, m, b in self._buffer_owners()}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        extra = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or extra):
            raise StateDictKeyError(_load_error(self, [
                f"Missing key(s) in state_dict: {_quoted(missing)}. " if missing else "",
                f"Unexpected key(s) in state_dict: {_quoted(extra)}. " if extra else ""]))
        mismatched = []
        for k, v in state.items():
            if k in own or k in buffers:
                old = own[k].value if k in own else buffers[k][0]._buffers[buffers[k][1]]
                if np.shape(v) != np.shape(old):
                    mismatched.append(
                        f"size mismatch for {k}: copying a param with shape {np.shape(v)} "
                        f"from checkpoint, the shape in current model is {np.shape(old)}.")
        if mismatched:              # (before any copy: a failed load changes nothing)
            raise ShapeError(_load_error(self, mismatched))
        for k, v in state.items():
            v = np.asarray(v)
            if k in own:
                p = own[k]
                p.value = v.astype(np.result_type(p.value), copy=True)
            elif k in buffers:
                m, name = buffers[k]
                m._buffers[name] = v.astype(np.result_type(m._buffers[name]), copy=True)
        return IncompatibleKeys(missing, extra)

    def _buffer_owners(self):
        """(dotted name, module, name) of the buffers ``state_dict`` saves."""
        for mname, m in self.named_modules(remove_duplicate=False):
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent_buffers_set:
                    yield (f"{mname}.{name}" if mname else name), m, name

    # ----- display -----
    def extra_repr(self):
        return ""

    def __repr__(self):
        """PyTorch's layout: ``Name(extra)``, or with sub-modules the extra text and each
        ``(name): child`` on lines of their own."""
        extra = self.extra_repr()
        lines = (extra.split("\n") if extra else []) + [
            f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        body = "".join("\n  " + line for line in lines)
        return f"{type(self).__name__}({body}\n)" if lines else f"{type(self).__name__}()"


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns (PyTorch's ``_IncompatibleKeys``)."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class StateDictKeyError(RuntimeError, KeyError):
    """Missing or unexpected names in ``load_state_dict``: PyTorch's ``RuntimeError``."""
    __str__ = RuntimeError.__str__


class ShapeError(RuntimeError, ValueError):
    """A bad argument PyTorch reports as a RuntimeError and NumPy would as a ValueError:
    ``except RuntimeError`` (PyTorch habit) and ``except ValueError`` both catch it
    (``load_state_dict``'s shape mismatches, ``F.pad``'s arguments, …)."""


def _quoted(keys):
    return ", ".join(f'"{k}"' for k in keys)


def _load_error(module, problems):
    return (f"Error(s) in loading state_dict for {type(module).__name__}:\n\t"
            + "\n\t".join(p for p in problems if p))


class _Listed(Module):
    """What Sequential and ModuleList share: modules by position, PyTorch's list methods.
    A deletion or insertion renumbers the modules 0, 1, … (PyTorch's)."""

    def _renumber(self, modules):
        self._modules.clear()
        for k, m in enumerate(modules):
            self._modules[str(k)] = m

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """``module`` before position ``index``; the later ones renumbered."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)
        return self

    def pop(self, index=-1):
        m = self[index]
        del self[index]
        return m

    def __delitem__(self, i):
        modules = list(self._modules.values())
        del modules[i]
        self._renumber(modules)

    def __setitem__(self, i, m):
        self._modules[list(self._modules)[i]] = m

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return type(self)(*list(self), *list(other)) if type(self) is Sequential else \
            type(self)(list(self) + list(other))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Listed):
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


class ModuleList(_Listed):
    """A list of modules whose parameters the parent registers."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        return list(self._modules.values())[i]

    def __repr__(self):
        """PyTorch's: runs of equal entries collapse to ``(i-j): n x Module(...)``."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return "ModuleList()"
        runs = [[0, 0, reprs[0]]]
        for k, r in enumerate(reprs[1:], 1):
            if r == runs[-1][2]:
                runs[-1][1] = k
            else:
                runs.append([k, k, r])
        lines = [(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}")
                 .replace("\n", "\n  ") for a, b, r in runs]
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """Modules by name, registered in insertion order (PyTorch's ``nn.ModuleDict``)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key): return self._modules[key]
    def __setitem__(self, key, module): self.add_module(key, module)
    def __delitem__(self, key): del self._modules[key]
    def __len__(self): return len(self._modules)
    def __iter__(self): return iter(self._modules)
    def __contains__(self, key): return key in self._modules
    def keys(self): return self._modules.keys()
    def items(self): return self._modules.items()
    def values(self): return self._modules.values()

    def pop(self, key):
        return self._modules.pop(key)

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"ModuleDict: {k!r} is a {type(m).__name__}, not a Module")
            self.add_module(k, m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(): call its modules by name")


def _as_parameter(v):
    return v if isinstance(v, Parameter) else Parameter(v)


class ParameterList(Module):
    """Parameters in a list, registered as ``"0"``, ``"1"``, … (``nn.ParameterList``);
    arrays given are made Parameters."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ParameterList(list(self._parameters.values())[i])
        return list(self._parameters.values())[i]

    def __setitem__(self, i, v):
        key = list(self._parameters)[i]
        self._parameters[key] = _as_parameter(v)

    def __len__(self): return len(self._parameters)
    def __iter__(self): return iter(self._parameters.values())

    def append(self, v):
        self.register_parameter(str(len(self._parameters)), _as_parameter(v))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return ", ".join(f"({k}): Parameter of shape {np.shape(p.value)}"
                         for k, p in self._parameters.items())


class ParameterDict(Module):
    """Parameters by name (``nn.ParameterDict``)."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key): return self._parameters[key]
    def __setitem__(self, key, v): self.register_parameter(key, _as_parameter(v))
    def __delitem__(self, key): del self._parameters[key]
    def __len__(self): return len(self._parameters)
    def __iter__(self): return iter(self._parameters)
    def __contains__(self, key): return key in self._parameters
    def keys(self): return self._parameters.keys()
    def items(self): return self._parameters.items()
    def values(self): return self._parameters.values()

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in items:
            self[k] = v


def functional_call(model, params, *args, **kwargs):
    """``model(*args)`` with the values in ``params`` (a dict name → value, as from
    ``dict(model.named_parameters())`` or a pytree of arrays) standing in for its
    parameters. The values may be tracked by any transform, so

        ad.grad(lambda p: loss(nn.functional_call(model, p, x), y))(params)

    differentiates a network as a pure function of its parameters (to any order).
    """
    owners = {}
    for mname, m in model.named_modules(remove_duplicate=False):
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
