#!/usr/bin/env python
"""Core benchmark: autodiff beside HIPS autograd, PyTorch (CPU) and JAX, on one core.

Run from the repository root:

    python benchmarks/bench_core.py            # full run, a few minutes
    python benchmarks/bench_core.py --quick    # under a minute, noisier
    python benchmarks/bench_core.py --out benchmarks/results.md

Every derivative is timed as a RATIO to the plain NumPy function of the same workload,
measured in the same round: each round times the NumPy function, then every contender in
turn; the figure reported is the median over rounds of (contender time / NumPy time).
The scalar chain is the exception: there the unit is microseconds per scalar operation.

Every library is pinned to one thread (environment variables set by harness.py before
NumPy, PyTorch or JAX are imported) and the process is pinned to one core. Everything is float64.
A peer that is not installed is skipped with a note; an error raised by any contender,
ours included, is recorded in the table instead of stopping the run.
"""
import harness  # first: one thread everywhere, before numpy / torch / jax are imported

import importlib
import math
import statistics
import time
import traceback
import warnings

from harness import PROBLEMS, fmt_time, note, short_exc

ARGS, CFG = harness.parse_args(
    __doc__, "results.md",
    quick="fewer rounds and shorter timings (under a minute)",
    repeats=("rounds per workload", 11, 3),
    min_time=("minimum seconds per timing; sets the inner loop count", 0.05, 0.01),
    budget=("seconds one contender may spend timing one workload; slower ones "
            "get fewer rounds", 12.0, 1.0),
    only="comma-separated workloads to run: chain,lj,rosen,bratu,hessian")
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)   # before the libraries start their pools

import numpy as np  # noqa: E402


# --- the contenders' libraries, each optional ----------------------------------------
def _import_peers():
    libs = {}
    try:
        import autodiff as ad
        if not hasattr(ad, "grad"):
            raise ImportError("autodiff has no attribute 'grad' (engine not ready)")
        libs["ad"] = ad
    except Exception as exc:  # noqa: BLE001 - any failure means "skip, with a note"
        note(f"autodiff not usable, our columns are empty: {type(exc).__name__}: {exc}")
    try:
        import autograd
        import autograd.numpy as anp
        libs["autograd"] = autograd
        libs["anp"] = anp
    except Exception as exc:  # noqa: BLE001
        note(f"autograd skipped (not importable: {exc}); pip install autograd")
    try:
        import torch
        import torch.func  # noqa: F401
        harness.torch_one_thread(torch)
        torch.set_default_dtype(torch.float64)
        libs["torch"] = torch
    except Exception as exc:  # noqa: BLE001
        note(f"PyTorch skipped (not importable: {exc}); pip install torch==2.13.0")
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp
        libs["jax"] = jax
        libs["jnp"] = jnp
    except Exception as exc:  # noqa: BLE001
        note(f"JAX skipped (not importable: {exc}); pip install jax jaxlib")
    return libs


LIBS = _import_peers()
ad = LIBS.get("ad")
autograd = LIBS.get("autograd")
anp = LIBS.get("anp")
torch = LIBS.get("torch")
jax = LIBS.get("jax")
jnp = LIBS.get("jnp")


# =====================================================================================
# Workload functions, written once and run with each library's namespace ``m``.
# =====================================================================================
CHAIN_ITERS = 100
CHAIN_OPS_PER_ITER = 10
CHAIN_OPS = CHAIN_ITERS * CHAIN_OPS_PER_ITER     # 1000 scalar operations, counted below


def chain(x, m):
    """1000 scalar operations: per iteration 4 mul, 1 add, 1 reflected add, 1 sub, 1 div,
    1 sin, 1 exp."""
    for _ in range(CHAIN_ITERS):
        x = x * 1.0001 + m.sin(x) * 0.001 - 0.0005     # mul, sin, mul, add, sub  (5)
        x = x / (1.0 + m.exp(x * 0.01) * 1e-4)         # mul, exp, mul, radd, div (5)
    return x


def lj_energy(x, eye):
    """Lennard-Jones energy of all pairs, by broadcasting; the diagonal of r2 is set to 1
    by adding the identity, where the pair term 4(r^-12 - r^-6) is exactly zero."""
    diff = x[:, None, :] - x[None, :, :]
    r2 = (diff * diff).sum(-1) + eye
    inv6 = (1.0 / r2) ** 3
    return 2.0 * (inv6 * inv6 - inv6).sum()      # 4 * sum over i<j = 2 * sum over i!=j


def rosenbrock(x):
    a = x[:-1]
    return (100.0 * (x[1:] - a ** 2) ** 2 + (1.0 - a) ** 2).sum()


BRATU_LAMBDA = 1.0


def bratu(u, m, zero, h):
    """Residual of -u'' = lam exp(u) (sign as in the issue), zero boundary values."""
    up = m.concatenate([u[1:], zero])
    um = m.concatenate([zero, u[:-1]])
    return (um - 2.0 * u + up) / (h * h) + BRATU_LAMBDA * m.exp(u)


def hess_fun(x, m):
    return m.log(1.0 + x ** 2).sum() + rosenbrock(x)


class _Math:
    """math module under the names the chain uses (plain Python floats)."""
    sin = staticmethod(math.sin)
    exp = staticmethod(math.exp)


# =====================================================================================
# Verification and timing (the timing itself, shared with bench_nn.py: harness.py)
# =====================================================================================
def to_numpy(r):
    if torch is not None and isinstance(r, torch.Tensor):
        return r.detach().cpu().numpy()
    if isinstance(r, (float, int, np.ndarray, np.generic)):
        return np.asarray(r, dtype=float)
    return np.asarray(r)        # jax arrays; for ours: raises if a tracked value leaked


class Contender:
    def __init__(self, cid, col, label, make, verify=True):
        self.cid, self.col, self.label, self.make = cid, col, label, make
        self.verify = verify
        self.fn = None
        self.error = None
        self.result = None
        self.n = None
        self.rounds = None
        self.ratios = []
        self.times = []
        self.agrees = None      # True / False / None (not compared)
        self.setup_time = None  # make() + first call (tracing, jit compilation)
        self.maxerr = None

    @property
    def ours(self):
        return self.col == "ours"

    def median_ratio(self):
        return statistics.median(self.ratios) if self.ratios else None

    def median_time(self):
        return statistics.median(self.times) if self.times else None


def _compare(a, b):
    if a.shape != b.shape:
        if a.size != b.size:
            return False, float("nan")
        a, b = a.reshape(-1), b.reshape(-1)
    if a.size == 0:
        return True, 0.0
    scale = max(1.0, float(np.max(np.abs(b))))
    err = float(np.max(np.abs(a - b)))
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale)), err


def run_workload(wid, title, baseline, contenders, cfg, reproducer=None, ref_id=None,
                 nops=None):
    """Verify, calibrate and time ``contenders`` against ``baseline`` (the NumPy f).

    ``contenders`` is a list of Contender; ``make()`` returns a zero-argument callable that
    computes the derivative and returns it. Returns the list, filled in.
    """
    print(f"\n== {title}")
    t_w = time.perf_counter()
    # setup + first call (compiles jit functions, checks results)
    for c in contenders:
        try:
            t_s = time.perf_counter()
            c.fn = c.make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c.result = to_numpy(c.fn())
            if not np.all(np.isfinite(c.result)):
                raise FloatingPointError("result contains nan/inf")
            c.setup_time = time.perf_counter() - t_s
        except Exception as exc:  # noqa: BLE001
            c.error = short_exc(exc)
            c.fn = None
            print(f"   {c.label}: ERROR {c.error}")
            if c.ours:
                PROBLEMS.append((title, c.label, c.error,
                                 traceback.format_exc(limit=-6), reproducer))
    # agreement with ours (or with the first working peer when ours failed)
    ok = [c for c in contenders if c.fn is not None]
    checked = [c for c in ok if c.verify]
    ref = next((c for c in checked if c.ours and c.cid == ref_id), None) if ref_id else None
    ref = ref or next((c for c in checked if c.ours), None)
    ref_is_ours = ref is not None
    if ref is None and checked:
        ref = checked[0]
    for c in checked:
        if c is ref:
            continue
        c.agrees, c.maxerr = _compare(c.result, ref.result)
        if not c.agrees:
            print(f"   MISMATCH {c.label} vs {ref.label}: max |diff| = {c.maxerr:.3e}")
    if ref_is_ours:
        peers = [c for c in checked if not c.ours]
        ours_others = [c for c in checked if c.ours and c is not ref]
        if peers and all(p.agrees is False for p in peers):
            # ours is the odd one out when the peers agree among themselves
            agree_peers, _ = _compare(peers[0].result, peers[-1].result)
            ref.agrees = False
            ref.maxerr = min(p.maxerr for p in peers)
            msg = (f"our result disagrees with every peer "
                   f"({'which agree among themselves' if agree_peers else 'peers disagree too'}); "
                   f"max |diff| to the nearest = {ref.maxerr:.3e}")
            print("   " + msg)
            PROBLEMS.append((title, ref.label, "wrong derivative: " + msg, "", reproducer))
            for p in peers:
                p.agrees = None
            for c in ours_others:    # judge our other modes against the peers instead
                c.agrees, c.maxerr = _compare(c.result, peers[0].result)
        elif peers:
            ref.agrees = True
        for c in ours_others:
            if c.agrees is False:
                PROBLEMS.append((title, c.label, f"wrong derivative: max |diff| = "
                                 f"{c.maxerr:.3e} vs {ref.label}", "", reproducer))
    # calibrate, then interleaved rounds; a contender whose calibration raises is left out
    n_f, baseline_times, ok = harness.time_interleaved(baseline, [(c, c.fn) for c in ok], cfg)
    tf_med = statistics.median(baseline_times)
    for c in ok:
        extra = "" if c.rounds == cfg.repeats else f"  ({c.rounds} rounds)"
        fig = (f"{c.median_time() / nops * 1e6:10.4g} us/op" if nops else
               f"{c.median_ratio():10.2f} x    ")
        print(f"   {c.label:<42s} {fig}  {c.median_time() * 1e3:10.3f} ms/call  n={c.n}"
              f"  first call {c.setup_time:.2f} s{extra}")
    fig = f"{tf_med / nops * 1e6:10.4g} us/op" if nops else f"{'1.00':>10s} x    "
    print(f"   {'baseline (no AD)':<42s} {fig}  {tf_med * 1e3:10.3f} ms/call  n={n_f}")
    print(f"   ({time.perf_counter() - t_w:.1f} s)")
    return {"id": wid, "title": title, "baseline_time": tf_med, "n_f": n_f,
            "ref": ref.cid if ref is not None else None, "baseline_times": baseline_times,
            "contenders": {c.cid: c for c in contenders}}


# =====================================================================================
# Contender builders
# =====================================================================================
def _torch_backward(f, x0):
    """PyTorch eager: fresh leaf tensor, f(x).backward(), x.grad."""
    def make():
        def run():
            x = torch.tensor(x0, requires_grad=True) if np.ndim(x0) == 0 else \
                torch.from_numpy(x0).requires_grad_(True)
            f(x).backward()
            return x.grad
        return run
    return make


def _ours_variable(f, x0):
    """Ours, PyTorch style: a fresh leaf ad.Variable, f(x).backward(), x.grad."""
    def make():
        def run():
            x = ad.Variable(x0)
            f(x).backward()
            return x.grad
        return run
    return make


def _jax_call(fn, *args):
    """Zero-arg callable running ``fn(*args)`` and waiting for the result."""
    def run():
        return jax.block_until_ready(fn(*args))
    return run


def _add(lst, cid, col, label, lib, make):
    if lib is None:
        return
    lst.append(Contender(cid, col, label, make))


# ---- 1. scalar chain -----------------------------------------------------------------
def workload_chain(cfg):
    x0 = 0.5
    cs = []
    # Ours runs the chain with autodiff.numpy, as autograd runs it with autograd.numpy and
    # torch with torch; the *_np rows run the same chain with plain numpy (NumPy's
    # __array_ufunc__ override protocol adds ~0.3 µs to each np.sin/np.exp call).
    adnp = importlib.import_module("autodiff.numpy") if ad is not None else None
    _add(cs, "ours_rev", "ours", "ours ad.grad (reverse), autodiff.numpy", ad,
         lambda: (lambda g: (lambda: g(x0)))(ad.grad(lambda x: chain(x, adnp))))
    _add(cs, "ours_fwd", "ours", "ours ad.Dual(x, 1.0) (forward), autodiff.numpy", ad,
         lambda: (lambda: chain(ad.Dual(x0, 1.0), adnp).tangent))
    _add(cs, "ours_var", "ours", "ours ad.Variable + .backward(), autodiff.numpy", ad,
         _ours_variable(lambda x: chain(x, adnp), x0))
    _add(cs, "ours_rev_np", "ours", "ours ad.grad (reverse), plain numpy", ad,
         lambda: (lambda g: (lambda: g(x0)))(ad.grad(lambda x: chain(x, np))))
    _add(cs, "ours_fwd_np", "ours", "ours ad.Dual(x, 1.0) (forward), plain numpy", ad,
         lambda: (lambda: chain(ad.Dual(x0, 1.0), np).tangent))
    _add(cs, "autograd_rev", "autograd", "autograd.grad", autograd,
         lambda: (lambda g: (lambda: g(x0)))(autograd.grad(lambda x: chain(x, anp))))
    _add(cs, "torch_rev", "torch", "torch eager .backward() (0-d double)", torch,
         _torch_backward(lambda x: chain(x, torch), x0))

    def torch_fwd():
        import torch.autograd.forward_ad as fwAD
        xt, one = torch.tensor(x0), torch.tensor(1.0)

        def run():
            with fwAD.dual_level():
                y = chain(fwAD.make_dual(xt, one), torch)
                return fwAD.unpack_dual(y).tangent
        return run
    _add(cs, "torch_fwd", "torch", "torch forward_ad dual (0-d double)", torch, torch_fwd)
    _add(cs, "jax_rev", "jax eager", "jax.grad eager", jax,
         lambda: _jax_call(jax.grad(lambda x: chain(x, jnp)), jnp.asarray(x0)))
    _add(cs, "jax_rev_jit", "jax jit", "jax.jit(jax.grad)", jax,
         lambda: _jax_call(jax.jit(jax.grad(lambda x: chain(x, jnp))), jnp.asarray(x0)))
    _add(cs, "jax_fwd", "jax eager", "jax.jvp eager", jax,
         lambda: _jax_call(lambda x: jax.jvp(lambda y: chain(y, jnp), (x,),
                                             (jnp.asarray(1.0),))[1], jnp.asarray(x0)))
    _add(cs, "jax_fwd_jit", "jax jit", "jax.jit(jax.jvp)", jax,
         lambda: _jax_call(jax.jit(lambda x: jax.jvp(lambda y: chain(y, jnp), (x,),
                                                     (jnp.asarray(1.0),))[1]),
                           jnp.asarray(x0)))
    # plain floats with NumPy's functions, for reference (what ours starts from)
    cs.append(Contender("np_float", "ref", "plain floats, np.sin/np.exp (no AD)",
                        lambda: (lambda: chain(x0, np)), verify=False))
    repro = ("import numpy as np, autodiff as ad\n"
             "def chain(x):\n"
             "    for _ in range(100):\n"
             "        x = x * 1.0001 + np.sin(x) * 0.001 - 0.0005\n"
             "        x = x / (1.0 + np.exp(x * 0.01) * 1e-4)\n"
             "    return x\n"
             "print(ad.grad(chain)(0.5), chain(ad.Dual(0.5, 1.0)).tangent)")
    res = run_workload("chain", f"scalar chain, {CHAIN_OPS} ops (baseline: plain Python "
                       "floats with math.sin/math.exp)",
                       lambda: chain(x0, _Math), cs, cfg, repro, nops=CHAIN_OPS)
    res["unit"] = "us/op"
    res["nops"] = CHAIN_OPS
    return res


# ---- 2..5: array workloads -------------------------------------------------------------
def lj_positions(n, seed=0):
    k = int(math.ceil(n ** (1.0 / 3.0) - 1e-9))
    grid = np.stack(np.meshgrid(*(np.arange(k, dtype=float),) * 3, indexing="ij"), -1)
    rng = np.random.default_rng(seed)
    return grid.reshape(-1, 3)[:n] * 1.12 + 0.05 * rng.standard_normal((n, 3))


def _grad_contenders(f_np, f_torch, f_jax, f_ag, x0, repro_name):
    cs = []
    _add(cs, "ours", "ours", "ours ad.grad", ad,
         lambda: (lambda g: (lambda: g(x0)))(ad.grad(f_np)))
    _add(cs, "ours_var", "ours", "ours ad.Variable + .backward()", ad,
         _ours_variable(f_np, x0))
    _add(cs, "autograd", "autograd", "autograd.grad", autograd,
         lambda: (lambda g: (lambda: g(x0)))(autograd.grad(f_ag)))
    _add(cs, "torch", "torch", "torch eager .backward()", torch, _torch_backward(f_torch, x0))
    _add(cs, "torch_func", "torch.func", "torch.func.grad", torch,
         lambda: (lambda g, xt: (lambda: g(xt)))(torch.func.grad(f_torch),
                                                 torch.from_numpy(x0)))
    _add(cs, "jax", "jax eager", "jax.grad eager", jax,
         lambda: _jax_call(jax.grad(f_jax), jnp.asarray(x0)))
    _add(cs, "jax_jit", "jax jit", "jax.jit(jax.grad)", jax,
         lambda: _jax_call(jax.jit(jax.grad(f_jax)), jnp.asarray(x0)))
    return cs


def workload_lj(cfg, n):
    x0 = lj_positions(n)
    eye_np = np.eye(n)
    eye_t = torch.eye(n) if torch is not None else None
    eye_j = jnp.eye(n) if jax is not None else None
    cs = _grad_contenders(lambda x: lj_energy(x, eye_np), lambda x: lj_energy(x, eye_t),
                          lambda x: lj_energy(x, eye_j), lambda x: lj_energy(x, eye_np),
                          x0, "lj")
    repro = (f"import numpy as np, autodiff as ad\n"
             f"n = {n}; x = np.random.default_rng(0).random((n, 3)) * {n ** (1 / 3):.1f}\n"
             f"eye = np.eye(n)\n"
             f"def E(x):\n"
             f"    d = x[:, None, :] - x[None, :, :]\n"
             f"    r2 = (d * d).sum(-1) + eye\n"
             f"    i6 = (1.0 / r2) ** 3\n"
             f"    return 2.0 * (i6 * i6 - i6).sum()\n"
             f"print(ad.grad(E)(x))")
    return run_workload(f"lj{n}", f"Lennard-Jones gradient, N = {n}",
                        lambda: lj_energy(x0, eye_np), cs, cfg, repro)


def workload_rosen(cfg, n):
    x0 = np.linspace(-1.2, 1.1, n)
    cs = _grad_contenders(rosenbrock, rosenbrock, rosenbrock, rosenbrock, x0, "rosen")
    repro = (f"import numpy as np, autodiff as ad\n"
             f"f = lambda x: (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()\n"
             f"print(ad.grad(f)(np.linspace(-1.2, 1.1, {n})))")
    return run_workload(f"rosen{n}", f"extended Rosenbrock gradient, n = {n}",
                        lambda: rosenbrock(x0), cs, cfg, repro)


def workload_bratu(cfg, n=200):
    h = 1.0 / (n + 1)
    t = np.linspace(h, 1.0 - h, n)
    u0 = 0.1 * np.sin(np.pi * t)
    z_np = np.zeros(1)
    z_t = torch.zeros(1) if torch is not None else None
    z_j = jnp.zeros(1) if jax is not None else None
    F_np = lambda u: bratu(u, np, z_np, h)            # noqa: E731
    F_ag = lambda u: bratu(u, anp, z_np, h)           # noqa: E731
    F_t = lambda u: bratu(u, torch, z_t, h)           # noqa: E731
    F_j = lambda u: bratu(u, jnp, z_j, h)             # noqa: E731
    repro = (f"import numpy as np, autodiff as ad\n"
             f"n = {n}; h = 1.0 / (n + 1); z = np.zeros(1)\n"
             f"F = lambda u: (np.concatenate([z, u[:-1]]) - 2.0 * u + "
             f"np.concatenate([u[1:], z])) / (h * h) + np.exp(u)\n"
             f"u = 0.1 * np.sin(np.pi * np.linspace(h, 1 - h, n))\n"
             f"print(ad.jacobian(F, mode='forward')(u), ad.jacobian(F, mode='reverse')(u))")
    results = []
    for mode in ("forward", "reverse"):
        cs = []
        _add(cs, "ours", "ours", f"ours ad.jacobian(mode='{mode}')", ad,
             lambda mode=mode: (lambda J: (lambda: J(u0)))(ad.jacobian(F_np, mode=mode)))
        if mode == "reverse":
            _add(cs, "autograd", "autograd", "autograd.jacobian", autograd,
                 lambda: (lambda J: (lambda: J(u0)))(autograd.jacobian(F_ag)))
        tf = "jacfwd" if mode == "forward" else "jacrev"
        _add(cs, "torch", "torch", f"torch.func.{tf}", torch,
             lambda tf=tf: (lambda J, ut: (lambda: J(ut)))(getattr(torch.func, tf)(F_t),
                                                           torch.from_numpy(u0)))
        _add(cs, "jax", "jax eager", f"jax.{tf} eager", jax,
             lambda tf=tf: _jax_call(getattr(jax, tf)(F_j), jnp.asarray(u0)))
        _add(cs, "jax_jit", "jax jit", f"jax.jit(jax.{tf})", jax,
             lambda tf=tf: _jax_call(jax.jit(getattr(jax, tf)(F_j)), jnp.asarray(u0)))
        results.append(run_workload(f"bratu_{mode}", f"Bratu Jacobian n = {n}, {mode} mode",
                                    lambda: F_np(u0), cs, cfg, repro))
    return results


def workload_hessian(cfg, n=100):
    x0 = np.linspace(-1.2, 1.1, n)
    f_np = lambda x: hess_fun(x, np)          # noqa: E731
    f_ag = lambda x: hess_fun(x, anp)         # noqa: E731
    f_t = lambda x: hess_fun(x, torch)        # noqa: E731
    f_j = lambda x: hess_fun(x, jnp)          # noqa: E731
    cs = []
    _add(cs, "ours", "ours", "ours ad.hessian", ad,
         lambda: (lambda H: (lambda: H(x0)))(ad.hessian(f_np)))
    _add(cs, "autograd", "autograd", "autograd.hessian", autograd,
         lambda: (lambda H: (lambda: H(x0)))(autograd.hessian(f_ag)))
    _add(cs, "torch", "torch", "torch.func.hessian", torch,
         lambda: (lambda H, xt: (lambda: H(xt)))(torch.func.hessian(f_t), torch.from_numpy(x0)))
    _add(cs, "jax", "jax eager", "jax.hessian eager", jax,
         lambda: _jax_call(jax.hessian(f_j), jnp.asarray(x0)))
    _add(cs, "jax_jit", "jax jit", "jax.jit(jax.hessian)", jax,
         lambda: _jax_call(jax.jit(jax.hessian(f_j)), jnp.asarray(x0)))
    repro = (f"import numpy as np, autodiff as ad\n"
             f"f = lambda x: np.log(1.0 + x ** 2).sum() + "
             f"(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()\n"
             f"print(ad.hessian(f)(np.linspace(-1.2, 1.1, {n})))")
    return run_workload(f"hessian{n}", f"Hessian n = {n} (log(1+x^2) + Rosenbrock)",
                        lambda: f_np(x0), cs, cfg, repro)


# =====================================================================================
# Report
# =====================================================================================
COLS = ["ours", "autograd", "torch", "jax eager", "jax jit"]

# (label, workload id, {column: contender id}, target value, unit)
ROWS = [
    ("scalar chain, reverse (µs/op)", "chain",
     {"ours": "ours_rev", "autograd": "autograd_rev", "torch": "torch_rev",
      "jax eager": "jax_rev", "jax jit": "jax_rev_jit"}, 1.5),
    ("scalar chain, forward / Dual (µs/op)", "chain",
     {"ours": "ours_fwd", "torch": "torch_fwd", "jax eager": "jax_fwd",
      "jax jit": "jax_fwd_jit"}, 0.5),
    ("Lennard-Jones grad, N = 64", "lj64", None, 2.0),
    ("Lennard-Jones grad, N = 1024", "lj1024", None, 1.6),
    ("Rosenbrock grad, n = 10", "rosen10", None, 8.0),
    ("Rosenbrock grad, n = 100,000", "rosen100000", None, 2.5),
    ("Bratu Jacobian n = 200, forward", "bratu_forward", None, 20.0),
    ("Bratu Jacobian n = 200, reverse", "bratu_reverse", None, None),
    ("Hessian n = 100", "hessian100", None, 60.0),
]
_DEFAULT_MAP = {"ours": "ours", "autograd": "autograd", "torch": "torch",
                "jax eager": "jax", "jax jit": "jax_jit"}


def _value(res, c):
    """The reported figure: µs/op for the chain, ratio to NumPy f otherwise."""
    if res.get("unit") == "us/op":
        return c.median_time() / res["nops"] * 1e6
    return c.median_ratio()


def _fmt(v, unit):
    if v is None:
        return "—"
    if unit == "us/op":
        return f"{v:.3g}" if v < 100 else f"{v:.0f}"
    return f"{v:.2f}×" if v < 100 else f"{v:.0f}×"


def _cell(res, cid):
    if res is None or cid is None or cid not in res["contenders"]:
        return "—", None
    c = res["contenders"][cid]
    if c.error:
        return "ERROR", None
    if not c.times:
        return "—", None
    v = _value(res, c)
    s = _fmt(v, res.get("unit"))
    if c.agrees is False:
        s += " (WRONG)"
    return s, v


def build_table(results):
    lines = ["| workload | " + " | ".join(COLS) + " | target | met? |",
             "|---|" + "---:|" * len(COLS) + "---:|:---:|"]
    verdicts = []
    for label, wid, cmap, target in ROWS:
        res = results.get(wid)
        if res is None:
            continue
        cmap = cmap or _DEFAULT_MAP
        cells = []
        ours_val, ours_cell = None, None
        for col in COLS:
            s, v = _cell(res, cmap.get(col))
            cells.append(s)
            if col == "ours":
                ours_val, ours_cell = v, s
        unit = res.get("unit")
        if target is None:
            tgt, met = "—", "—"
        else:
            tgt = f"≤ {target:g} µs/op" if unit == "us/op" else f"≤ {target:g}×"
            if ours_cell == "ERROR":
                met = "ERROR"
            elif ours_val is None:
                met = "—"
            elif "WRONG" in ours_cell:
                met = "WRONG"
            else:
                met = "PASS" if ours_val <= target else "MISS"
            verdicts.append((label, _fmt(ours_val, unit) if ours_val is not None else ours_cell,
                             tgt, met))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {tgt} | {met} |")
    return "\n".join(lines), verdicts


def build_detail(results):
    lines = ["| workload | contender | figure | time per call | inner loops × rounds "
             "| first call | agrees with the reference (ours when it works) |",
             "|---|---|---:|---:|---:|---:|:---:|"]
    for res in results.values():
        unit = res.get("unit")
        base = res["baseline_time"]
        base_label = "plain floats, math.sin/math.exp" if unit == "us/op" else "NumPy f"
        base_fig = (f"{base / res['nops'] * 1e6:.3g} µs/op" if unit == "us/op" else "1.00×")
        lines.append(f"| {res['title']} | {base_label} | {base_fig} | "
                     f"{fmt_time(base)} | {res['n_f']} × {len(res['baseline_times'])} | — | — |")
        for c in res["contenders"].values():
            if c.error:
                lines.append(f"| | {c.label} | ERROR | — | — | — | `{c.error}` |")
                continue
            if not c.times:
                continue
            fig = _fmt(_value(res, c), unit) + (" µs/op" if unit == "us/op" else "")
            if c.agrees is True:
                agr = "(reference)" if c.cid == res.get("ref") else "yes"
            elif c.agrees is False:
                agr = f"NO (max diff {c.maxerr:.2e})"
            else:
                agr = "(reference)" if c.cid == res.get("ref") else "—"
            lines.append(f"| | {c.label} | {fig} | {fmt_time(c.median_time())} | "
                         f"{c.n} × {c.rounds} | {fmt_time(c.setup_time)} | {agr} |")
    return "\n".join(lines)


def versions():
    import importlib.metadata as md
    scipy_v = None
    try:
        import scipy
        scipy_v = scipy.__version__
    except ImportError:
        pass
    ad_v = "not usable"
    try:
        import autodiff
        ad_v = getattr(autodiff, "__version__", None) or md.version("autodiff")
    except Exception:  # noqa: BLE001
        ad_v = ad_v if ad is None else "unknown"
    out = harness.versions([("scipy", scipy_v or "not installed")], ad_v, ["autodiff"],
                           "autodiff/", (("autograd", autograd), ("torch", torch), ("jax", jax)))
    if jax is not None:
        import jaxlib
        out.append(("jaxlib", jaxlib.__version__))
    return out


LOAD_START = harness.loadavg()



# The compiled-tape and sparse rows come from their own scripts (each compares its peers in
# its own run); their latest reports are kept here too, headings one level down.
COMPANIONS = (("results_jit.md", "python benchmarks/bench_jit.py"),
              ("results_sparse.md", "python benchmarks/bench_sparse.py"))


def companion_reports():
    md = []
    for name, cmd in COMPANIONS:
        text = harness.include_md(name)
        if not text:
            continue
        lines = text[0].splitlines()
        title = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else name
        md += [f"## {title} (`{cmd}`, its latest run: `benchmarks/{name}`)", ""]
        md += [("#" + ln if ln.startswith("#") else ln) for ln in lines[1:]] + [""]
    return md

def main():
    cfg = CFG
    t_start = time.perf_counter()
    machine = harness.announce(cfg, PINNED_CPU)
    results = {}
    if cfg.wants("chain"):
        results["chain"] = workload_chain(cfg)
    if cfg.wants("lj"):
        for n in (64, 1024):
            results[f"lj{n}"] = workload_lj(cfg, n)
    if cfg.wants("rosen"):
        for n in (10, 100_000):
            results[f"rosen{n}"] = workload_rosen(cfg, n)
    if cfg.wants("bratu"):
        for r in workload_bratu(cfg):
            results[r["id"]] = r
    if cfg.wants("hessian"):
        results["hessian100"] = workload_hessian(cfg)
    elapsed = time.perf_counter() - t_start

    table, verdicts = build_table(results)
    detail = build_detail(results)
    chain_res = results.get("chain")

    md = harness.header_md(
        "Core benchmark results", f"{elapsed:.0f} s", machine, PINNED_CPU,
        f"OMP/MKL/OPENBLAS_NUM_THREADS=1, XLA_FLAGS=`{harness.XLA_ONE_THREAD}`, "
        f"torch.set_num_threads(1)", versions())
    md.append(f"- **Method:** {cfg.repeats} interleaved rounds per workload (each round times "
              f"the NumPy function, then every contender); inner loops sized so each timing "
              f"lasts ≥ {cfg.min_time * 1e3:.0f} ms; figure = median over rounds of "
              f"(derivative time / NumPy f time) in the same round. All float64. "
              f"Contenders slower than {cfg.budget:g} s per workload get fewer rounds. "
              f"The first call of each contender (tracing, jit compilation) is not timed; "
              f"it is listed under *first call* below. Objects alive before timing are "
              f"moved to the permanent GC generation (`gc.freeze()`), so the garbage "
              f"collector does not walk torch's and jax's heaps while another library is "
              f"timed; automatic collections of the objects made during timing still run.")
    md.append(f"- **Load average** (1 min) at start / end: {LOAD_START} / {harness.loadavg()}; "
              f"other processes on the machine inflate and scatter the figures.")
    md.append("")
    md.append("## Summary")
    md.append("")
    md.append("Ratios are derivative time / plain NumPy function time (lower is better); the "
              "scalar chain is in µs per scalar operation. `torch` is eager `.backward()` for "
              "gradients and the scalar chain (forward_ad dual numbers for the forward row), "
              "`torch.func` for Jacobians and the Hessian. `autograd` has no forward-mode "
              "Jacobian. `met?` compares our figure with the target.")
    md.append("")
    if chain_res is not None:
        base = chain_res["baseline_time"] / CHAIN_OPS * 1e6
        npf = chain_res["contenders"].get("np_float")
        extra = ""
        if npf is not None and npf.times:
            extra = (f"; the same chain on Python floats with `np.sin`/`np.exp` takes "
                     f"{npf.median_time() / CHAIN_OPS * 1e6:.3g} µs/op")
        md.append(f"Scalar chain: {CHAIN_OPS} operations (per iteration: 4 mul, 1 add, "
                  f"1 reflected add, 1 sub, 1 div, 1 sin, 1 exp; ×{CHAIN_ITERS}). "
                  f"Plain Python floats with `math`: {base:.3g} µs/op{extra}.")
        md.append("")
    md.append(table)
    md.append("")
    md.extend(harness.notes_md())
    md.extend(harness.problems_md())
    # The hand-written reading of the misses: where the time goes, with the profiles.
    md.extend(harness.include_md("analysis.md"))
    md.extend(["## Every contender", "", detail, ""])
    md.extend(companion_reports())

    print("\n" + table)
    harness.finish(md, verdicts, elapsed, ARGS)


if __name__ == "__main__":
    main()
