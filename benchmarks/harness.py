"""What every benchmark here shares: one pinned thread, timing, machine description,
markdown reporting.

A benchmark script imports this module FIRST, before NumPy, PyTorch or JAX: importing it
sets the environment variables that hold every library to one thread (the libraries read
them when they start their thread pools). The script then parses its options with
:func:`parse_args`, pins the process to one core with :func:`pin_to_one_core`, and only
then imports NumPy and the libraries it compares::

    import harness  # first: one thread everywhere
    ARGS, CFG = harness.parse_args(__doc__, "results.md", ...)
    PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)
    import numpy as np

- one pinned thread: the environment variables set below, :func:`pin_to_one_core`,
  :func:`torch_one_thread`;
- timing: :class:`Cfg`, :func:`run_n`, :func:`calibrate`, :func:`time_interleaved`;
- machine description: :func:`machine_info`, :func:`announce`, :func:`versions`,
  :func:`loadavg`;
- markdown reporting: :data:`NOTES` / :func:`note`, :data:`PROBLEMS`, :func:`short_exc`,
  :func:`fmt_time`, :func:`header_md`, :func:`notes_md`, :func:`include_md`,
  :func:`problems_md`, :func:`finish`.

It imports nothing beyond the standard library at import time.
"""
import os
import sys

# --- one thread everywhere: must happen before numpy / torch / jax are imported ------
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

if REPO not in sys.path:            # the package under test, from the checkout
    sys.path.insert(0, REPO)


# =====================================================================================
# Options, and one pinned thread
# =====================================================================================
def _with_defaults(what, full, quick):
    return f"{what} (default {full:g}, quick {quick:g})"


def parse_args(doc, out, quick, repeats, min_time, budget, only, extra=(), argv=None):
    """The options every benchmark takes, parsed; returns ``(args, Cfg)``.

    ``doc``: the script's docstring (its first paragraph describes the script); ``out``: the
    default markdown file's name under benchmarks/; ``quick``, ``only``: help texts;
    ``repeats``, ``min_time``, ``budget``: (what the option does, its full-run default, its
    ``--quick`` default); ``extra``: (flag, keyword arguments) of the script's own options,
    listed before ``--no-write``.
    """
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--out", default=os.path.join("benchmarks", out),
                   help=f"markdown file to write (default: benchmarks/{out})")
    p.add_argument("--repeats", type=int, default=None, help=_with_defaults(*repeats))
    p.add_argument("--min-time", type=float, default=None, help=_with_defaults(*min_time))
    p.add_argument("--budget", type=float, default=None, help=_with_defaults(*budget))
    p.add_argument("--cpu", type=int, default=None,
                   help="core to pin the process to (default: the last allowed one)")
    p.add_argument("--only", default=None, help=only)
    for flag, kw in extra:
        p.add_argument(flag, **kw)
    p.add_argument("--no-write", action="store_true", help="print only, write no file")
    args = p.parse_args(argv)
    return args, Cfg(args, repeats[1:], min_time[1:], budget[1:])


class Cfg:
    """Which workloads to run (--only), rounds per workload, minimum seconds per timing,
    seconds one contender may spend on one workload: the options' values, or the defaults,
    each given as (full run, quick)."""

    def __init__(self, args, repeats, min_time, budget):
        self.quick = args.quick
        self.only = set(args.only.split(",")) if args.only else None
        self.repeats = args.repeats or (repeats[1] if args.quick else repeats[0])
        self.min_time = args.min_time or (min_time[1] if args.quick else min_time[0])
        self.budget = args.budget or (budget[1] if args.quick else budget[0])

    def wants(self, workload):
        """Whether --only (when given) names ``workload``."""
        return self.only is None or workload in self.only


def pin_to_one_core(cpu=None):
    """Pin the process to core ``cpu`` (default: the last allowed one), before the libraries
    start their thread pools. Returns the core, or None where it cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        pinned = cpu if cpu is not None else sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {pinned})
    except (OSError, ValueError) as exc:  # pragma: no cover - platform dependent
        print(f"note: could not pin to one core ({exc})")
        return None
    return pinned


def torch_one_thread(torch):
    """PyTorch's intra-op and inter-op pools to one thread each."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:            # already set, or work has started
        pass


# =====================================================================================
# Timing
# =====================================================================================
def run_n(fn, n):
    """Seconds per call of ``fn()``, over ``n`` calls in a row."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def calibrate(fn, min_time):
    """Inner loop count so that one timing lasts at least ``min_time`` seconds.

    The function has been called once already (warm). A single call's time is taken as
    the best of three when it is short, so that one slow first call (page faults, caches)
    does not leave a fast function timed with an inner loop of 1.
    """
    t = run_n(fn, 1)
    if t < min_time:
        t = min(t, run_n(fn, 1), run_n(fn, 1))
    n = 1
    while t * n < min_time:
        n = max(n + 1, int(math.ceil(min_time / max(t, 1e-9) * 1.2)))
        t = run_n(fn, n)
    return n, t


def time_interleaved(baseline, timed, cfg):
    """Calibrate, then time ``baseline`` and the contenders in interleaved rounds.

    ``timed``: (contender, zero-argument callable) pairs, all called once already. Each
    contender gets ``n`` (calls per timing), ``rounds`` (``cfg.repeats``, fewer when that
    would take longer than ``cfg.budget`` seconds) and one entry per round it takes part in
    appended to ``times`` (seconds per call) and ``ratios`` (its time / the baseline's time
    in the same round); one whose calibration raises gets ``error`` and is left out. Each
    round times the baseline, then every contender, each after ``gc.collect()``.

    Returns (calls per baseline timing, the baseline's times, the contenders timed).
    """
    # Move everything alive now (the libraries' modules, jit caches, inputs) to the
    # permanent generation: a full collection then costs microseconds instead of ~0.1 s,
    # and the automatic collections during timing do not walk torch's and jax's heaps.
    gc.collect()
    gc.freeze()
    try:
        n_f, _ = calibrate(baseline, cfg.min_time)
        kept = []
        for c, fn in timed:
            try:
                c.n, t = calibrate(fn, cfg.min_time)
            except Exception as exc:  # noqa: BLE001
                c.error = short_exc(exc)
                continue
            per_round = t * c.n
            c.rounds = cfg.repeats
            if per_round * cfg.repeats > cfg.budget:
                c.rounds = max(1, int(cfg.budget // max(per_round, 1e-9)))
            kept.append((c, fn))
        baseline_times = []
        for r in range(cfg.repeats):
            gc.collect()
            tf = run_n(baseline, n_f)
            baseline_times.append(tf)
            for c, fn in kept:
                if r >= c.rounds:
                    continue
                gc.collect()
                tc = run_n(fn, c.n)
                c.times.append(tc)
                c.ratios.append(tc / tf)
    finally:
        gc.unfreeze()
    return n_f, baseline_times, [c for c, _ in kept]


# =====================================================================================
# Machine description
# =====================================================================================
def machine_info():
    """(CPU model name, number of cores)."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    return model, os.cpu_count()


def announce(cfg, pinned_cpu):
    """Print the machine and the timing settings; returns :func:`machine_info`."""
    cpu_model, ncores = machine_info()
    print(f"machine: {cpu_model}, {ncores} cores; pinned to core {pinned_cpu}; "
          f"{cfg.repeats} rounds, ≥{cfg.min_time * 1e3:.0f} ms per timing")
    return cpu_model, ncores


def _git_suffix(paths, modified):
    """' (git SHA)' of the checkout, with ', MODIFIED modified' when ``paths`` have
    uncommitted changes; '' when git does not answer."""
    try:
        sha = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", *paths],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if sha:
            return f" (git {sha}{f', {modified} modified' if dirty else ''})"
    except Exception:  # noqa: BLE001
        pass
    return ""


def versions(others, autodiff_version, paths, modified, libs):
    """[(name, version)]: python, numpy, the (name, version) pairs ``others``, autodiff as
    ``autodiff_version`` with the git commit (and ``modified`` when ``paths`` are), then
    each of ``libs``, (name, module or None when not installed)."""
    import importlib.metadata as md

    import numpy as np
    out = [("python", platform.python_version()), ("numpy", np.__version__)]
    out.extend(others)
    out.append(("autodiff", autodiff_version + _git_suffix(paths, modified)))
    for name, mod in libs:
        v = getattr(mod, "__version__", None) if mod is not None else "not installed"
        if v is None:
            try:
                v = md.version(name)
            except Exception:  # noqa: BLE001
                v = "unknown"
        out.append((name, v))
    return out


def loadavg():
    """The 1-minute load average, formatted; 'n/a' where there is none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (OSError, AttributeError):
        return "n/a"


# =====================================================================================
# Markdown reporting
# =====================================================================================
NOTES = []      # printed as they come, and written under the tables
PROBLEMS = []   # (workload, what, error, traceback, reproducer) of our engine


def note(msg):
    """Print ``msg`` and keep it for the report (once)."""
    if msg not in NOTES:
        NOTES.append(msg)
        print("note:", msg)


def short_exc(exc):
    """'Type: first line of the message', at most 160 characters of message."""
    msg = str(exc).strip().splitlines()
    msg = msg[0] if msg else ""
    if len(msg) > 160:
        msg = msg[:157] + "..."
    return f"{type(exc).__name__}: {msg}"


def fmt_time(t):
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def header_md(title, took, machine, pinned_cpu, threads, vers):
    """The report's title and its Command, Machine and Versions lines. ``took``: how long
    the run took, as said after 'run took'; ``threads``: how every library is held to one
    thread."""
    cpu_model, ncores = machine
    cmd = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    return [f"# {title}", "",
            f"- **Command:** `{cmd}` (from the repository root), run took {took}",
            f"- **Machine:** {cpu_model}, {ncores} cores (`os.cpu_count()`), "
            f"{platform.system()} {platform.release()}; process pinned to core {pinned_cpu}; "
            f"every library on one thread ({threads})",
            "- **Versions:** " + ", ".join(f"{k} {v}" for k, v in vers)]


def notes_md():
    """The notes, as a markdown list under 'Notes:'; nothing when there are none."""
    if not NOTES:
        return []
    return ["Notes:", ""] + [f"- {n}" for n in NOTES] + [""]


def include_md(name):
    """The hand-written markdown file ``name`` beside this module, when there is one."""
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [fh.read().rstrip(), ""]


def problems_md():
    """'## Problems found in our engine', each with its reproducer; nothing when none."""
    if not PROBLEMS:
        return []
    md = ["## Problems found in our engine", ""]
    for title, what, err, tb, repro in PROBLEMS:
        md.append(f"- **{title}**, {what}: `{err}`")
        if repro:
            md.append("")
            md.append("  ```python")
            md.extend("  " + ln for ln in repro.splitlines())
            md.append("  ```")
    md.append("")
    return md


def finish(md, verdicts, elapsed, args):
    """Print the verdicts on our targets, our engine's problems (with their tracebacks) and
    the run's time; write the markdown lines ``md`` to ``args.out`` unless --no-write."""
    print()
    for label, val, tgt, met in verdicts:
        print(f"  target {label}: ours {val}  (target {tgt})  {met}")
    if PROBLEMS:
        print("\nProblems in our engine:")
        for title, what, err, tb, repro in PROBLEMS:
            print(f"  - {title} / {what}: {err}")
            if tb:
                print("    " + tb.strip().replace("\n", "\n    "))
    print(f"\ntotal time {elapsed:.0f} s")
    if not args.no_write:
        out = args.out if os.path.isabs(args.out) else os.path.join(os.getcwd(), args.out)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as fh:
            fh.write("\n".join(md))
        print(f"wrote {out}")
