"""SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, RAdam, Adadelta, Rprop and ASGD:
PyTorch's update formulas, run in place.

Each update writes into the parameter's array, its state buffers (allocated once) and two
shared work arrays, through NumPy ufuncs with ``out=``: a step allocates no temporaries.
The operations are the same, in the same order, as the expressions they replace
(``p -= (lr / bc1) * m / d``), so the numbers are bitwise those of the allocating form.
The first five also have that allocating form as a pure function of arrays
(``_fused_plan``, ``_fused_hyper``, ``_fused_update``), which ``nn.compile_step`` records
into its program; for the others ``nn.compile_step`` runs the eager update.
"""
import math

import numpy as np

from .optimizer import Optimizer, required

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
           "Adadelta", "Rprop", "ASGD"]


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


def _moments(p, g, state, group, work, decoupled, lerp=False):
    """Adam's first steps, in place: the weight decay (``wd·p`` added to g, or with
    ``decoupled`` p scaled by ``1 - lr·wd``), then m = β₁m + (1-β₁)g (as PyTorch's
    ``lerp_`` where ``lerp``: NAdam's and RAdam's form) and v = β₂v + (1-β₂)g², the
    buffers made on the first step. Returns (g, m, v); g may then live in ``work[1]``."""
    w1, w2 = work
    lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
    if wd:
        if decoupled:
            p *= 1.0 - lr * wd
        else:
            g = _weight_decay(p, g, wd, w2)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    if lerp:
        _lerp_(m, g, 1.0 - b1, w1)
    else:
        m *= b1
        np.multiply(g, 1.0 - b1, out=w1)
        m += w1
    v *= b2
    np.multiply(g, 1.0 - b2, out=w1)
    w1 *= g
    v += w1
    return g, m, v


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
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        t = state["step"] = state.get("step", 0) + 1
        g, m, v = _moments(p, g, state, group, work,
                           group.get("decoupled_weight_decay", self._decoupled))
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


def _lerp_(m, g, w, out):
    """``m += w·(g - m)`` in place, as PyTorch's ``lerp_`` (which, for ``w ≥ 0.5``,
    computes ``g - (g - m)·(1 - w)`` instead, to stay exact at ``w = 1``)."""
    np.subtract(g, m, out=out)
    if abs(w) < 0.5:
        out *= w
        m += out
    else:
        out *= 1.0 - w
        np.subtract(g, out, out=m)


def _check_betas(lr, eps, betas, weight_decay):
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adamax(Optimizer):
    """Adam with the infinity norm: m = β₁m + (1-β₁)g, u = max(β₂u, |g| + ε),
    p -= lr/(1-β₁ᵗ) · m/u; ``weight_decay`` adds ``wd·p`` to g."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_betas(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      **_torch_flags("Adamax", differentiable,
                                                     foreach=foreach,
                                                     capturable=capturable)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        b1, b2 = group["betas"]
        t = state["step"] = state.get("step", 0) + 1
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w2)
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros_like(p)
            state["exp_inf"] = np.zeros_like(p)
        m, u = state["exp_avg"], state["exp_inf"]
        _lerp_(m, g, 1.0 - b1, w1)
        u *= b2
        np.abs(g, out=w1)
        w1 += group["eps"]
        np.maximum(u, w1, out=u)
        clr = group["lr"] / (1.0 - b1 ** t)
        np.multiply(m, clr, out=w1)                  # PyTorch's addcdiv: (c·m)/u
        w1 /= u
        p -= w1


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat) and its momentum schedule
    μₜ = β₁(1 - ½·0.96^(t·ψ)), ψ = ``momentum_decay``: with v̂ = v/(1-β₂ᵗ),
    p -= lr(1-μₜ)/(1-Πμ) · g/(√v̂ + ε) + lr·μₜ₊₁/(1-Πμ·μₜ₊₁) · m/(√v̂ + ε).
    ``weight_decay`` adds ``wd·p`` to g, or with ``decoupled_weight_decay=True`` scales p
    by ``1 - lr·wd`` first (NAdamW). The state keeps the product Πμ as ``mu_product``."""

    _scalar_state = ("mu_product",)

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_betas(lr, eps, betas, weight_decay)
        if momentum_decay < 0.0:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=bool(decoupled_weight_decay),
                                      maximize=maximize, **_torch_flags(
                                          "NAdam", differentiable, foreach=foreach,
                                          capturable=capturable)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        lr, (b1, b2) = group["lr"], group["betas"]
        psi = group["momentum_decay"]
        t = state["step"] = state.get("step", 0) + 1
        bc2 = 1.0 - b2 ** t
        mu = b1 * (1.0 - 0.5 * (0.96 ** (t * psi)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi)))
        mu_product = state["mu_product"] = float(state.get("mu_product", 1.0)) * mu
        g, m, v = _moments(p, g, state, group, work, group["decoupled_weight_decay"],
                           lerp=True)
        np.divide(v, bc2, out=w1)
        np.sqrt(w1, out=w1)
        w1 += group["eps"]                           # the denominator
        # Two addcdiv's, as PyTorch: (c·g)/d, then (c'·m)/d (g may live in w2: last use).
        np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=w2)
        w2 /= w1
        p += w2
        np.multiply(m, (-lr * mu_next) / (1.0 - mu_product * mu_next), out=w2)
        w2 /= w1
        p += w2


class RAdam(Optimizer):
    """Rectified Adam (Liu et al.): with ρ∞ = 2/(1-β₂) - 1 and ρₜ = ρ∞ - 2tβ₂ᵗ/(1-β₂ᵗ),
    p -= lr · m/(1-β₁ᵗ) · r·√(1-β₂ᵗ)/(√v + ε) where ρₜ > 5, with the rectification
    r = √((ρₜ-4)(ρₜ-2)ρ∞ / ((ρ∞-4)(ρ∞-2)ρₜ)), else p -= lr · m/(1-β₁ᵗ) (SGD with
    momentum while the variance estimate is unreliable). ``weight_decay`` as NAdam's."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        _check_betas(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      **_torch_flags("RAdam", differentiable,
                                                     foreach=foreach,
                                                     capturable=capturable),
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        lr, (b1, b2) = group["lr"], group["betas"]
        t = state["step"] = state.get("step", 0) + 1
        g, m, v = _moments(p, g, state, group, work, group["decoupled_weight_decay"],
                           lerp=True)
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * (b2 ** t) / bc2
        np.divide(m, bc1, out=w1)
        w1 *= lr
        if rho_t > 5.0:
            rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
            np.sqrt(v, out=w2)                       # g is not needed any more
            w2 += group["eps"]
            np.divide(bc2 ** 0.5, w2, out=w2)        # the adaptive rate
            w1 *= w2
            w1 *= rect
        p -= w1


class Adadelta(Optimizer):
    """v = ρv + (1-ρ)g², Δ = √(u + ε)/√(v + ε) · g, u = ρu + (1-ρ)Δ², p -= lr·Δ
    (Zeiler); ``weight_decay`` adds ``wd·p`` to g."""

    _n_work = 3                     # std, Δ and a weight-decayed gradient at once

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, foreach=None,
                 *, capturable=False, maximize=False, differentiable=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, **_torch_flags(
                                          "Adadelta", differentiable, capturable=capturable,
                                          foreach=foreach)))

    def _update(self, p, g, state, group, work):
        w1, w2, w3 = work
        rho, eps = group["rho"], group["eps"]
        state["step"] = state.get("step", 0) + 1
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w3)
        if "square_avg" not in state:
            state["square_avg"] = np.zeros_like(p)
            state["acc_delta"] = np.zeros_like(p)
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        np.multiply(g, 1.0 - rho, out=w1)
        w1 *= g
        v += w1
        np.add(v, eps, out=w1)
        np.sqrt(w1, out=w1)                          # std
        np.add(u, eps, out=w2)
        np.sqrt(w2, out=w2)
        w2 /= w1
        w2 *= g                                      # Δ
        u *= rho
        np.multiply(w2, 1.0 - rho, out=w1)
        w1 *= w2
        u += w1
        np.multiply(w2, group["lr"], out=w1)
        p -= w1


class Rprop(Optimizer):
    """Resilient backpropagation: per element, the step size grows by η₊ where the
    gradient kept its sign, shrinks by η₋ where it flipped (and that gradient counts as
    0 for the next step), clipped to ``step_sizes``; p -= sign(g)·step. Sizes start at
    ``lr``."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                                      maximize=maximize, **_torch_flags(
                                          "Rprop", differentiable, foreach=foreach,
                                          capturable=capturable)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        eta_minus, eta_plus = group["etas"]
        lo, hi = group["step_sizes"]
        state["step"] = state.get("step", 0) + 1
        if "prev" not in state:
            state["prev"] = np.zeros_like(p)
            state["step_size"] = np.full_like(p, group["lr"])
        prev, size = state["prev"], state["step_size"]
        np.multiply(g, prev, out=w1)
        kept, flipped = _two_masks(w2)
        np.greater(w1, 0.0, out=kept)
        np.less(w1, 0.0, out=flipped)
        w1.fill(1.0)
        np.copyto(w1, eta_plus, where=kept)
        np.copyto(w1, eta_minus, where=flipped)
        size *= w1
        np.clip(size, lo, hi, out=size)
        np.copyto(prev, g)
        np.copyto(prev, 0.0, where=flipped)          # no step, and no flip test next time
        np.sign(prev, out=w1)
        w1 *= size
        p -= w1


def _two_masks(w):
    """Two boolean arrays of ``w``'s shape in ``w``'s own memory (a float work array holds
    at least two bytes per element), so that the sign tests allocate nothing."""
    if type(w) is not np.ndarray or not w.flags.c_contiguous or w.itemsize < 2:
        return np.empty(w.shape, bool), np.empty(w.shape, bool)
    n = w.size
    raw = w.reshape(-1).view(np.bool_)
    return raw[:n].reshape(w.shape), raw[n:2 * n].reshape(w.shape)


class ASGD(Optimizer):
    """Averaged SGD (Polyak-Juditsky): p = p(1 - λη) - η·g, and the average ax of the
    iterates from step ``t0`` on (ax = ax + μ(p - ax)); then η = lr/(1 + λ·lr·t)^α and
    μ = 1/max(1, t - t0). ``weight_decay`` adds ``wd·p`` to g. The state keeps η and μ
    as ``eta`` and ``mu`` (numbers) and the average as ``ax``."""

    _scalar_state = ("eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, maximize=maximize,
                                      **_torch_flags("ASGD", differentiable,
                                                     foreach=foreach,
                                                     capturable=capturable)))

    def _update(self, p, g, state, group, work):
        w1, w2 = work
        lr, lambd = group["lr"], group["lambd"]
        if "ax" not in state:
            state.update(step=0, eta=float(lr), mu=1.0, ax=np.zeros_like(p))
        t = state["step"] = state["step"] + 1
        if group["weight_decay"]:
            g = _weight_decay(p, g, group["weight_decay"], w2)
        eta, mu = float(state["eta"]), float(state["mu"])
        p *= 1.0 - lambd * eta                       # the decay term
        np.multiply(g, eta, out=w1)
        p -= w1
        ax = state["ax"]
        if mu != 1.0:
            np.subtract(p, ax, out=w1)
            w1 *= mu
            ax += w1
        else:
            np.copyto(ax, p)
        state["eta"] = lr / ((1.0 + lambd * lr * t) ** group["alpha"])
        state["mu"] = 1.0 / max(1, t - group["t0"])
