"""The ``Optimizer`` base: parameter groups with their own hyper-parameters, the
per-parameter state, ``add_param_group`` and PyTorch's state-dict format.

``state_dict()`` is ``{'state': {index: {...}}, 'param_groups': [{..., 'params':
[indices]}]}``: parameters are numbered across the groups in order, as in PyTorch, so a
checkpoint maps onto a fresh optimizer built the same way. Its arrays are copies.
"""
import copy

import numpy as np

from autodiff.boxes import box_types

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()        # PyTorch's marker for a hyper-parameter with no default


def _is_param(p):
    """A leaf Variable (what ``nn.Parameter`` makes): the only thing an update can write."""
    return type(p) in box_types and getattr(p, "prim", 0) is None and hasattr(p, "grad")


def _param_list(params, what):
    """``params`` (one parameter or any iterable of them, a generator included, read
    once) as a list; refuses what the updates could not write into."""
    if _is_param(params):
        return [params]
    if type(params) in box_types:
        raise TypeError(f"{what}: got a computed value (not a leaf parameter); pass the "
                        "parameters, e.g. model.parameters()")
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{what}: parameters must be an ordered collection (a list or "
                        "model.parameters()), not a set, whose order changes between runs")
    if isinstance(params, np.ndarray):
        raise TypeError(f"{what}: got a NumPy array; pass nn.Parameter values (they carry "
                        ".grad), e.g. model.parameters()")
    try:
        return list(params)
    except TypeError:
        raise TypeError(f"{what}: parameters must be an iterable of nn.Parameter, got "
                        f"{type(params).__name__}") from None


class _ParamState(dict):
    """``optimizer.state``: per-parameter dicts, looked up by the parameter itself
    (``opt.state[p]['exp_avg']``, PyTorch's habit). Keys are ``id(p)``: Variables
    compare elementwise, so they cannot be dict keys themselves."""

    def _key(self, p):
        return p if isinstance(p, int) else id(p)

    def __getitem__(self, p):
        return dict.__getitem__(self, self._key(p))

    def __contains__(self, p):
        return dict.__contains__(self, self._key(p))

    def get(self, p, default=None):
        return dict.get(self, self._key(p), default)


class Optimizer:
    """Parameter groups (a list of parameters, or of dicts with per-group options:
    ``SGD([{'params': a}, {'params': b, 'lr': 1e-3}], lr=1e-2)``) and the per-parameter
    state. Subclasses define ``_update(p, g, state, group, work)``: ``p`` the
    parameter's array (updated in place), ``g`` its gradient (read only), ``work``
    ``_n_work`` scratch arrays of ``p``'s shape and dtype (not part of the state), so that
    an update runs as NumPy ufuncs with ``out=`` and allocates nothing. ``_scalar_state``
    names the state entries that are numbers, not arrays (``step`` always is one)."""

    _n_work = 2                 # scratch arrays an update takes
    _scalar_state = ()          # state entries (besides 'step') that are Python floats

    def __init__(self, params, defaults):
        what = type(self).__name__
        if isinstance(params, dict):
            raise TypeError(f"{what}: parameter groups are a list of dicts, got one dict; "
                            "wrap it in a list")
        if _is_param(params):
            # PyTorch refuses it too: pass [p] (a group's "params" may be one parameter).
            raise TypeError(f"{what}: params must be an iterable of parameters or of group "
                            "dicts, got a single parameter; pass [p]")
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = _ParamState()
        self._scratch = {}
        params = _param_list(params, what)       # a generator is read once, here
        if not params:
            raise ValueError(f"{what} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            if not isinstance(g, dict):
                raise TypeError(f"{what}: mix of parameter groups (dicts) and parameters")
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Add a group (``{'params': ..., 'lr': ..., ...}``); options it does not set take
        the optimizer's defaults. Used to unfreeze layers while training."""
        what = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{what}.add_param_group: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise KeyError(f"{what}.add_param_group: the group has no 'params'")
        group = dict(param_group)
        params = _param_list(group["params"], what)
        named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                 for p in params]
        if any(named):
            # model.named_parameters(): PyTorch keeps the names as 'param_names'.
            if not all(named):
                raise ValueError(f"{what}: all parameters in a group must be named (as "
                                 "from named_parameters()) or none")
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{what}: parameter group didn't specify a value of "
                                 f"required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        mine = set()
        for p in group["params"]:
            if not _is_param(p):
                raise TypeError(f"{what} can only optimize leaf parameters "
                                f"(nn.Parameter), got {type(p).__name__}")
            if id(p) in seen or id(p) in mine:
                # A parameter listed twice would be stepped twice per step.
                raise ValueError(f"{what}: a parameter appears more than once in the "
                                 "parameter list (or in two groups)")
            mine.add(id(p))
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.grad)

    def step(self, closure=None):
        """One update of every parameter that has a ``.grad``; ``closure`` (re-evaluates
        the loss, PyTorch's form) is called first and its value returned."""
        loss = closure() if closure is not None else None
        states = self.state
        for group in self.param_groups:
            maximize = group.get("maximize")
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                v = p.value
                if type(v) is not np.ndarray:       # a device array: its gradient stays there
                    if g.dtype != v.dtype:
                        g = g.astype(v.dtype)
                elif type(g) is not np.ndarray or g.dtype != v.dtype or g.shape != v.shape:
                    g = np.broadcast_to(np.asarray(g, dtype=v.dtype), v.shape)
                work = self._work(v)
                if maximize:
                    g = np.negative(g, out=work[-1])
                key = id(p)
                state = dict.get(states, key)
                if state is None:
                    state = states[key] = {}
                self._update(v, g, state, group, work[:-1])
        return loss

    # ----- the update as a function of arrays (nn.compile_step records it) -----
    def _fused_ok(self, group):
        """Whether ``_fused_plan``/``_fused_update`` can replace ``_update`` for this group:
        an optimizer without a functional form (or a subclass with its own ``_update``)
        runs its eager update after ``nn.compile_step``'s replay."""
        return False

    def _fused_plan(self, v, state, group):
        """The next update of the parameter whose array is ``v``, as a pure function: a dict
        with ``static`` (hashable: what steers the update's Python, part of the program's
        signature), ``reads`` (the state buffers it takes, in order; zeros of ``v``'s shape
        where the eager update would create them), ``writes`` (the names of the buffers it
        returns, in order: the i-th goes into the i-th of ``reads`` where there is one),
        ``n_hyper`` (how many numbers ``_fused_hyper`` gives) and ``set`` (state entries to
        store once the step is taken, such as the step count). It changes nothing."""
        raise NotImplementedError

    def _fused_hyper(self, group, plan):
        """The numbers of the update that change between steps (learning rate, bias
        corrections, …) for a ``plan`` of this group: inputs of the recorded program,
        never constants, so a scheduler's new rate needs no new recording."""
        raise NotImplementedError

    def _fused_update(self, static, p, g, bufs, hyper):
        """``(new p, new buffers)`` from ``p``, its gradient ``g``, the ``reads`` buffers
        and the ``_fused_hyper`` numbers: the operations of ``_update`` in the same order,
        so the numbers are the eager update's."""
        raise NotImplementedError

    # ----- PyTorch's state-dict format -----
    def _work(self, v):
        """``_n_work + 1`` work arrays of ``v``'s shape and dtype (the update's, and one
        for a negated gradient under ``maximize``), views of one buffer per dtype that
        every parameter reuses: the scratch costs a few times the largest parameter, and
        the updates allocate nothing."""
        k = self._n_work + 1
        if type(v) is not np.ndarray:       # a device array: work arrays on the device (pooled)
            return tuple(np.empty_like(v) for _ in range(k))
        n = v.size
        pool = self._scratch.get(v.dtype)
        if pool is None or pool.size < k * n:
            pool = self._scratch[v.dtype] = np.empty(k * n, dtype=v.dtype)
        return tuple(pool[i * n:(i + 1) * n].reshape(v.shape) for i in range(k))

    def _index(self):
        """(parameter, index) in group order, and each group's indices."""
        pairs, groups, i = [], [], 0
        for group in self.param_groups:
            idx = []
            for p in group["params"]:
                pairs.append((p, i))
                idx.append(i)
                i += 1
            groups.append(idx)
        return pairs, groups

    def state_dict(self):
        """``{'state': {index: {name: value}}, 'param_groups': [{option: value, ...,
        'params': [index, ...]}]}`` as PyTorch's; arrays are copies, so the dict is a
        snapshot that later steps do not change. ``nn.save`` writes it as it is."""
        pairs, indices = self._index()
        state = {}
        for p, i in pairs:
            s = dict.get(self.state, id(p))
            if s:
                state[i] = {k: (np.array(v) if isinstance(v, np.ndarray) else copy.copy(v))
                            for k, v in s.items()}
        groups = []
        for group, idx in zip(self.param_groups, indices):
            g = {k: copy.copy(v) for k, v in group.items() if k != "params"}
            g["params"] = idx
            groups.append(g)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore the state and the groups' options from ``state_dict()`` (or from its
        copy read back by ``nn.load``). The optimizer must have been built on the same
        parameters in the same groups; arrays are copied into its parameters' dtype."""
        what = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{what}.load_state_dict: expected a dict with keys 'state' and "
                             "'param_groups' (from optimizer.state_dict())")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for g, sg in zip(self.param_groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group ({len(sg['params'])} "
                                 f"saved, {len(g['params'])} here)")
        by_index = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for p, i in zip(g["params"], sg["params"]):
                by_index[int(i)] = p
        new_state = _ParamState()
        for i, s in dict(state_dict["state"]).items():
            i = int(i)
            if i not in by_index:
                raise ValueError(f"{what}.load_state_dict: state for parameter {i}, which "
                                 "no group lists")
            p = by_index[i]
            shape, dtype = np.shape(p.value), np.result_type(p.value)
            entry = {}
            for k, v in s.items():
                if k == "step":
                    entry[k] = int(np.asarray(v))
                elif k in self._scalar_state:     # a 0-d array from torch or a file
                    entry[k] = float(np.asarray(v))
                elif isinstance(v, np.ndarray) or hasattr(v, "shape"):
                    a = np.asarray(v)
                    if a.shape != shape:
                        raise ValueError(f"{what}.load_state_dict: state {k!r} of parameter "
                                         f"{i} has shape {a.shape}, the parameter {shape}")
                    entry[k] = a.astype(dtype if a.dtype.kind == "f" else a.dtype, copy=True)
                else:
                    entry[k] = copy.deepcopy(v)
            new_state[id(p)] = entry
        groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: _plain(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            groups.append(ng)
        self.param_groups = groups
        self.state = new_state
        self._scratch = {}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params")
        return "\n".join(lines) + "\n)"


def _plain(v):
    """A hyper-parameter read back from a file as a 0-d array is a Python number again."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    return copy.deepcopy(v)
