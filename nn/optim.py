"""``nn.optim``: SGD, Adam, AdamW, RMSprop, Adagrad with PyTorch's update formulas, the
learning-rate schedulers, ``clip_grad_norm_`` and ``clip_grad_value_``. Updates run off the
tape, in place on the parameters' values, from their ``.grad``."""
import math

import numpy as np

from autodiff.boxes import box_types

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler",
           "clip_grad_norm_", "clip_grad_value_"]


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


class Optimizer:
    """Parameter groups (a list of parameters, or of dicts with per-group options) and the
    per-parameter state; subclasses define ``_update(p, g, state, group)``."""

    def __init__(self, params, defaults):
        what = type(self).__name__
        if isinstance(params, dict):
            raise TypeError(f"{what}: parameter groups are a list of dicts, got one dict; "
                            "wrap it in a list")
        if _is_param(params):
            # PyTorch refuses it too: pass [p] (a group's "params" may be one parameter).
            raise TypeError(f"{what}: params must be an iterable of parameters or of group "
                            "dicts, got a single parameter; pass [p]")
        params = _param_list(params, what)       # a generator is read once, here
        if not params:
            raise ValueError(f"{what} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        seen = set()
        for g in groups:
            if not isinstance(g, dict):
                raise TypeError(f"{what}: mix of parameter groups (dicts) and parameters")
            group = dict(defaults)
            group.update(g)
            group["params"] = _param_list(group["params"], what)
            for p in group["params"]:
                if not _is_param(p):
                    raise TypeError(f"{what} can only optimize leaf parameters "
                                    f"(nn.Parameter), got {type(p).__name__}")
                if id(p) in seen:
                    # A parameter listed twice would be stepped twice per step.
                    raise ValueError(f"{what}: a parameter appears more than once in the "
                                     "parameter list (or in two groups)")
                seen.add(id(p))
            group.setdefault("initial_lr", group["lr"])
            self.param_groups.append(group)
        self.state = {}

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        states = self.state
        for group in self.param_groups:
            maximize = group.get("maximize")
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                v = p.value
                if type(g) is not type(v) or g.dtype != v.dtype:
                    # (a device array's gradient stays a device array)
                    g = np.asarray(g, dtype=v.dtype) if type(v) is np.ndarray else \
                        g.astype(v.dtype)
                if maximize:
                    g = -g
                state = states.get(id(p))
                if state is None:
                    state = states[id(p)] = {"step": 0}
                state["step"] += 1
                self._update(v, g, state, group)


class SGD(Optimizer):
    """``p -= lr·(g + wd·p)``, with momentum ``b = μb + (1-τ)g`` and Nesterov ``g + μb``."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= mu
                b += (1.0 - group["dampening"]) * g
            b = state["momentum_buffer"]
            g = g + mu * b if group["nesterov"] else b
        p -= group["lr"] * g


class Adam(Optimizer):
    """m = β₁m + (1-β₁)g, v = β₂v + (1-β₂)g², p -= lr·m̂/(√v̂ + ε) (bias-corrected)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    _decoupled = False

    def _update(self, p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd:
            if self._decoupled:
                p *= 1.0 - lr * wd
            else:
                g = g + wd * p
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        p -= (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr·wd`` before the Adam step."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    """v = αv + (1-α)g², p -= lr·g/(√v + ε); ``centered`` subtracts the mean gradient²."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, p, g, state, group):
        a, eps = group["alpha"], group["eps"]
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
            state["grad_avg"] = np.zeros_like(p)
            state["momentum_buffer"] = np.zeros_like(p)
        v = state["square_avg"]
        v *= a
        v += (1.0 - a) * g * g
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= a
            ga += (1.0 - a) * g
            avg = np.sqrt(v - ga * ga) + eps
        else:
            avg = np.sqrt(v) + eps
        if group["momentum"] > 0:
            b = state["momentum_buffer"]
            b *= group["momentum"]
            b += g / avg
            p -= group["lr"] * b
        else:
            p -= group["lr"] * g / avg


class Adagrad(Optimizer):
    """s += g², p -= lr/(1 + (t-1)·decay) · g/(√s + ε)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if "sum" not in state:
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        s = state["sum"]
        s += g * g
        clr = group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"])
        p -= clr * g / (np.sqrt(s) + group["eps"])


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale all gradients together so their joint norm is at most ``max_norm``; returns
    the total norm before clipping, as PyTorch's ``clip_grad_norm_``.

    ``parameters``: one parameter or any iterable (a generator such as
    ``model.parameters()`` is read once). The total is the ``norm_type``-norm of the
    per-parameter norms (``inf``: the largest |g|); every gradient is multiplied by
    ``min(max_norm / (total + 1e-6), 1)``. A non-finite total raises when
    ``error_if_nonfinite``, else scales by it (NaN gradients stay visible). ``foreach`` is
    accepted and ignored.
    """
    params = _param_list(parameters, "clip_grad_norm_")
    max_norm, norm_type = float(max_norm), float(norm_type)
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    norms = np.array([np.linalg.norm(np.ravel(np.asarray(p.grad)), ord=norm_type)
                      for p in with_grad])
    total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"non-finite ({total}), so it cannot be clipped; set error_if_nonfinite=False to "
            "scale the gradients by it anyway")
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    if coef != 1.0:
        for p in with_grad:
            p.grad = p.grad * coef           # a Python float keeps float32 gradients float32
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient elementwise into ``[-clip_value, clip_value]`` (PyTorch's
    ``clip_grad_value_``; one parameter or any iterable, a generator read once)."""
    clip_value = float(clip_value)
    for p in _param_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            p.grad = np.clip(p.grad, -clip_value, clip_value)


class _Scheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def step(self):
        self.last_epoch += 1
        self._apply()

    def _apply(self):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._lr(base, self.last_epoch)

    def get_last_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]


class StepLR(_Scheduler):
    """lr = base · γ^⌊epoch / step_size⌋."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def _lr(self, base, epoch):
        return base * self.gamma ** (epoch // self.step_size)


class ExponentialLR(_Scheduler):
    """lr = base · γ^epoch."""

    def __init__(self, optimizer, gamma):
        self.gamma = gamma
        super().__init__(optimizer)

    def _lr(self, base, epoch):
        return base * self.gamma ** epoch


class CosineAnnealingLR(_Scheduler):
    """lr = η_min + (base - η_min)(1 + cos(π·epoch/T_max))/2."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def _lr(self, base, epoch):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class lr_scheduler:  # noqa: N801 - the namespace PyTorch users import from
    """``nn.optim.lr_scheduler.StepLR`` etc."""
    StepLR = StepLR
    ExponentialLR = ExponentialLR
    CosineAnnealingLR = CosineAnnealingLR
