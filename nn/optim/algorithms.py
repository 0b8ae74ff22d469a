"""SGD, Adam, AdamW, RMSprop and Adagrad: PyTorch's update formulas, run in place.

Each update writes into the parameter's array, its state buffers (allocated once) and two
shared work arrays, through NumPy ufuncs with ``out=``: a step allocates no temporaries.
The operations are the same, in the same order, as the expressions they replace
(``p -= (lr / bc1) * m / d``), so the numbers are bitwise those of the allocating form.
Each also has that allocating form as a pure function of arrays (``_fused_plan``,
``_fused_hyper``, ``_fused_update``), which ``nn.compile_step`` records into its program.
"""
import math

import numpy as np

from .optimizer import Optimizer, required

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _torch_flags(what, differentiable, **flags):
    """PyTorch's implementation switches: ``foreach``, ``fused`` and ``capturable`` choose
    among implementations of the same numbers (here one: in place, fused ufuncs), so they
    are accepted and kept in the groups as PyTorch keeps them; ``differentiable=True``
    asks for an update recorded on the tape, which these updates are not."""
    if differentiable:
        raise NotImplementedError(f"{what}(differentiable=True): the update runs off the "
                                  "tape, in place; differentiate through an update by "
                                  "writing it as a function of the parameters (ad.grad)")
    return dict(flags, differentiable=False)


def _weight_decay(p, g, wd, out):
    """``g + wd·p`` (L2 regularisation folded into the gradient) into ``out``."""
    np.multiply(p, wd, out=out)
    out += g
    return out


class SGD(Optimizer):
    """``p -= lr·(g + wd·p)``, with momentum ``b = μb + (1-τ)g`` and Nesterov ``g + μb``.

    >>> import numpy as np
    >>> from autodiff import nn
    >>> w = nn.Parameter(np.array([1.0])); w.grad = np.array([2.0])
    >>> nn.optim.SGD([w], lr=0.1).step(); w.value
    array([0.8])
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, **_torch_flags(
                                          "SGD", differentiable, foreach=foreach,
                                          fused=fused)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w2)
        mu = group["momentum"]
        if mu:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.copy()      # (a device array copies on the device)
            else:
                b *= mu
                damp = group["dampening"]
                if damp:
                    np.multiply(g, 1.0 - damp, out=w1)
                    b += w1
                else:
                    b += g
            if group["nesterov"]:
                np.multiply(b, mu, out=w1)
                w1 += g                              # g + μ·b
                g = w1
            else:
                g = b
        np.multiply(g, group["lr"], out=w1)
        p -= w1

    def _fused_ok(self, group):
        return type(self)._update is SGD._update and _numbers(
            group["lr"], group["weight_decay"], group["momentum"], group["dampening"])

    def _fused_plan(self, v, state, group):
        wd, mu, damp = group["weight_decay"], group["momentum"], group["dampening"]
        b = state.get("momentum_buffer") if mu else None
        static = ("SGD", bool(wd), bool(mu), b is not None, bool(damp),
                  bool(group["nesterov"]), bool(group.get("maximize")))
        return dict(static=static, reads=() if b is None else (b,),
                    writes=("momentum_buffer",) if mu else (), set={}, n_hyper=4)

    def _fused_hyper(self, group, plan):
        return (group["lr"], group["weight_decay"], group["momentum"],
                1.0 - group["dampening"])

    def _fused_update(self, static, p, g, bufs, hyper):
        _, has_wd, has_mu, has_buf, has_damp, nesterov, maximize = static
        lr, wd, mu, undamped = hyper
        if maximize:
            g = -g
        if has_wd:
            g = p * wd + g
        new = ()
        if has_mu:
            if has_buf:
                b = bufs[0] * mu
                b = b + g * undamped if has_damp else b + g
            else:
                b = g                           # the first step's buffer is the gradient
            new = (b,)
            g = b * mu + g if nesterov else b
        return p - g * lr, new


def _numbers(*values):
    """Hyper-parameters a recorded update can take as inputs: Python or NumPy numbers."""
    return all(type(v) in (float, int) or isinstance(v, np.floating) for v in values)


class Adam(Optimizer):
    """m = β₁m + (1-β₁)g, v = β₂v + (1-β₂)g², p -= lr/(1-β₁ᵗ) · m/(√v/√(1-β₂ᵗ) + ε);
    ``amsgrad`` uses the running maximum of v; ``weight_decay`` adds ``wd·p`` to g (or,
    with ``decoupled_weight_decay=True``, scales p by ``1 - lr·wd`` first: AdamW)."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, **_torch_flags(
                                          type(self).__name__, differentiable,
                                          foreach=foreach, capturable=capturable,
                                          fused=fused),
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        lr, (b1, b2) = group["lr"], group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        t = state["step"] = state.get("step", 0) + 1
        if wd:
            if group.get("decoupled_weight_decay", self._decoupled):
                p *= 1.0 - lr * wd
            else:
                g = _weight_decay(p, g, wd, w2)
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        np.multiply(g, 1.0 - b1, out=w1)
        m += w1
        v *= b2
        np.multiply(g, 1.0 - b2, out=w1)
        w1 *= g
        v += w1
        if group["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            if vmax is None:
                vmax = state["max_exp_avg_sq"] = np.zeros_like(p)
            np.maximum(vmax, v, out=vmax)
            v = vmax
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        np.sqrt(v, out=w1)
        w1 /= math.sqrt(bc2)
        w1 += eps                                    # the denominator
        np.multiply(m, lr / bc1, out=w2)             # g is not needed any more
        np.divide(w2, w1, out=w1)
        p -= w1

    def _fused_ok(self, group):
        return type(self)._update is Adam._update and _numbers(
            group["lr"], group["eps"], group["weight_decay"], *group["betas"])

    def _fused_plan(self, v, state, group):
        wd = group["weight_decay"]
        decoupled = bool(wd) and bool(group.get("decoupled_weight_decay", self._decoupled))
        names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        reads = tuple(state[k] if k in state else np.zeros_like(v) for k in names)
        static = ("Adam", bool(wd), decoupled, bool(group["amsgrad"]),
                  bool(group.get("maximize")))
        return dict(static=static, reads=reads, writes=names,
                    set={"step": state.get("step", 0) + 1}, n_hyper=9)

    def _fused_hyper(self, group, plan):
        lr, (b1, b2) = group["lr"], group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        t = plan["set"]["step"]
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        return (1.0 - lr * wd, wd, b1, 1.0 - b1, b2, 1.0 - b2, math.sqrt(bc2), eps, lr / bc1)

    def _fused_update(self, static, p, g, bufs, hyper):
        _, has_wd, decoupled, amsgrad, maximize = static
        shrink, wd, b1, c1, b2, c2, sqrt_bc2, eps, step_size = hyper
        if maximize:
            g = -g
        if has_wd:
            if decoupled:
                p = p * shrink
            else:
                g = p * wd + g
        m = bufs[0] * b1 + g * c1
        v = bufs[1] * b2 + g * c2 * g
        new = (m, v)
        if amsgrad:
            v = np.maximum(bufs[2], v)
            new = (m, new[1], v)
        denom = np.sqrt(v) / sqrt_bc2 + eps
        return p - m * step_size / denom, new


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr·wd`` before the Adam step."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """v = αv + (1-α)g², p -= lr·g/(√v + ε); ``centered`` subtracts the squared mean
    gradient from v; ``momentum`` keeps b = μb + g/(√v + ε) and steps by lr·b."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize,
                                      **_torch_flags("RMSprop", differentiable,
                                                     capturable=capturable,
                                                     foreach=foreach)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        a, eps, mu = group["alpha"], group["eps"], group["momentum"]
        state["step"] = state.get("step", 0) + 1
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w2)
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
            if mu > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        v = state["square_avg"]
        v *= a
        np.multiply(g, 1.0 - a, out=w1)
        w1 *= g
        v += w1
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= a
            np.multiply(g, 1.0 - a, out=w1)
            ga += w1
            np.multiply(ga, ga, out=w1)
            np.subtract(v, w1, out=w1)
            np.sqrt(w1, out=w1)
        else:
            np.sqrt(v, out=w1)
        w1 += eps                                    # the denominator
        if mu > 0:
            np.divide(g, w1, out=w1)
            b = state["momentum_buffer"]
            b *= mu
            b += w1
            np.multiply(b, group["lr"], out=w1)
        else:
            np.multiply(g, group["lr"], out=w2)
            np.divide(w2, w1, out=w1)
        p -= w1

    def _fused_ok(self, group):
        return type(self)._update is RMSprop._update and _numbers(
            group["lr"], group["alpha"], group["eps"], group["weight_decay"],
            group["momentum"])

    def _fused_plan(self, v, state, group):
        mu, centered = group["momentum"], bool(group["centered"])
        names = ("square_avg",) + (("momentum_buffer",) if mu > 0 else ()) + \
            (("grad_avg",) if centered else ())
        reads = tuple(state[k] if k in state else np.zeros_like(v) for k in names)
        static = ("RMSprop", bool(group["weight_decay"]), mu > 0, centered,
                  bool(group.get("maximize")))
        return dict(static=static, reads=reads, writes=names,
                    set={"step": state.get("step", 0) + 1}, n_hyper=6)

    def _fused_hyper(self, group, plan):
        a = group["alpha"]
        return (group["lr"], group["weight_decay"], a, 1.0 - a, group["eps"],
                group["momentum"])

    def _fused_update(self, static, p, g, bufs, hyper):
        _, has_wd, has_mu, centered, maximize = static
        lr, wd, a, c, eps, mu = hyper
        if maximize:
            g = -g
        if has_wd:
            g = p * wd + g
        v = bufs[0] * a + g * c * g
        new = [v]
        if has_mu:
            b = bufs[1]
        if centered:
            ga = bufs[-1] * a + g * c
            d = np.sqrt(v - ga * ga) + eps
        else:
            d = np.sqrt(v) + eps
        if has_mu:
            b = b * mu + g / d
            new.append(b)
            step = b * lr
        else:
            step = g * lr / d
        if centered:
            new.append(ga)
        return p - step, tuple(new)


class Adagrad(Optimizer):
    """s += g², p -= lr/(1 + (t-1)·decay) · g/(√s + ε). The state is made at
    construction (PyTorch's habit, with the constructor's ``initial_accumulator_value``
    for every group), so ``state_dict()`` holds it from the start."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize, **_torch_flags(
                                          "Adagrad", differentiable, foreach=foreach,
                                          fused=fused)))
        # PyTorch fills every sum with the constructor's value, whatever a group says.
        for group in self.param_groups:
            for p in group["params"]:
                self.state[id(p)] = {"step": 0, "sum": np.full_like(
                    p.value, initial_accumulator_value)}

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        if "sum" not in state:                       # a group added later
            state["step"] = 0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        t = state["step"] = state["step"] + 1
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w2)
        clr = group["lr"] / (1.0 + (t - 1) * group["lr_decay"])
        s = state["sum"]
        np.multiply(g, g, out=w1)
        s += w1
        np.sqrt(s, out=w1)
        w1 += group["eps"]
        np.multiply(g, clr, out=w2)
        np.divide(w2, w1, out=w1)
        p -= w1

    def _fused_ok(self, group):
        return type(self)._update is Adagrad._update and _numbers(
            group["lr"], group["lr_decay"], group["eps"], group["weight_decay"],
            group["initial_accumulator_value"])

    def _fused_plan(self, v, state, group):
        s = state.get("sum")
        if s is None:                                # a group added later
            s = np.full_like(v, group["initial_accumulator_value"])
        return dict(static=("Adagrad", bool(group["weight_decay"]),
                            bool(group.get("maximize"))), reads=(s,),
                    writes=("sum",), set={"step": state.get("step", 0) + 1}, n_hyper=3)

    def _fused_hyper(self, group, plan):
        t = plan["set"]["step"]
        return (group["weight_decay"], group["lr"] / (1.0 + (t - 1) * group["lr_decay"]),
                group["eps"])

    def _fused_update(self, static, p, g, bufs, hyper):
        wd, clr, eps = hyper
        if static[2]:
            g = -g
        if static[1]:
            g = p * wd + g
        s = bufs[0] + g * g
        return p - g * clr / (np.sqrt(s) + eps), (s,)
