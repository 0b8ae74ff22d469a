"""The long run of the seam fuzzer (tests/seams.py).

    python tests/run_seams.py --programs 50000 --workers 2 [--seed 0] [--seconds S]

Programs are drawn from a NumPy generator (``seams.random_spec``), checked in worker
processes, and the failures grouped by kind; each kind's smallest failing program is shrunk
(steps dropped, inputs simplified) and printed as a reproducer. Exit status 1 if anything
failed.
"""
import argparse
import collections
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import numpy as np  # noqa: E402

import seams  # noqa: E402

PROGRAM_SECONDS = 30


def _exclude(words):
    """Leave out the blocks whose names contain one of ``words`` (to see past a defect
    that would otherwise mask the others)."""
    for table in (seams.SEAM_BLOCKS, seams.CASE_BLOCKS):
        table[:] = [b for b in table if not any(w in b.name for w in words)]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _work(job):
    seed, count, deadline, exclude, structures = job
    _exclude(exclude)
    if structures:
        seams.STRUCTURES[:] = structures
    signal.signal(signal.SIGALRM, _alarm)
    rng = np.random.default_rng(seed)
    ok, refused, fails, t0 = 0, 0, [], time.time()
    done, t_ok = 0, 0.0
    for _ in range(count):
        if deadline and time.time() > deadline:
            break
        spec = seams.random_spec(rng)
        done += 1
        t1 = time.time()
        signal.alarm(PROGRAM_SECONDS)
        try:
            stats = seams.check(spec)
            t_ok += time.time() - t1
            ok += 1
            refused += stats.get("refused", 0) > 0
        except _Timeout:
            fails.append((f"TIMEOUT (a program ran over {PROGRAM_SECONDS} s)", spec, ""))
        except seams.SeamFailure as e:
            fails.append((e.kind, spec, e.detail))
        except Exception as e:                                   # noqa: BLE001
            tb = traceback.format_exc().strip().splitlines()[-3:]
            fails.append((f"FUZZER CRASH {type(e).__name__}", spec, " | ".join(tb)))
        finally:
            signal.alarm(0)
    return done, ok, refused, fails, time.time() - t0, t_ok


def _bounded_check(check):
    def bounded(*args, **kw):
        signal.alarm(PROGRAM_SECONDS)
        try:
            return check(*args, **kw)
        finally:
            signal.alarm(0)
    return bounded


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long")
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--exclude", default="", help="comma-separated block-name fragments")
    ap.add_argument("--structures", default="", help="e.g. array,dict (default: all)")
    ap.add_argument("--log", default="", help="append every failure to this file (JSON lines)")
    a = ap.parse_args(argv)
    deadline = time.time() + a.seconds if a.seconds else 0
    exclude = [w for w in a.exclude.split(",") if w]
    structures = [w for w in a.structures.split(",") if w]
    _exclude(exclude)
    if structures:
        seams.STRUCTURES[:] = structures
    jobs, left, k = [], a.programs, 0
    while left > 0:
        n = min(a.chunk, left)
        jobs.append((a.seed * 1_000_003 + k, n, deadline, exclude, structures))
        left -= n
        k += 1
    t0 = time.time()
    done = ok = refused = 0
    cpu = cpu_ok = 0.0
    groups = collections.defaultdict(list)
    with mp.Pool(a.workers) as pool:
        for d, o, r, fails, dt, dt_ok in pool.imap_unordered(_work, jobs):
            done, ok, refused, cpu = done + d, ok + o, refused + r, cpu + dt
            cpu_ok += dt_ok
            for kind, spec, detail in fails:
                groups[kind].append((spec, detail))
            if a.log:
                with open(a.log, "a") as log:
                    for kind, spec, detail in fails:
                        log.write(json.dumps([kind, spec, detail]) + "\n")
            print(f"  {done} programs, {done - ok} failing, {time.time() - t0:.0f} s",
                  file=sys.stderr, flush=True)
    wall = time.time() - t0
    signal.signal(signal.SIGALRM, _alarm)        # shrinking runs programs here too
    seams.check = _bounded_check(seams.check)
    print(f"programs: {done}  passed: {ok} (of which with a clean refusal: {refused})  "
          f"failed: {done - ok}")
    print(f"time: {wall:.1f} s wall, {1000 * cpu / max(done, 1):.1f} ms per program "
          f"(per worker); {1000 * cpu_ok / max(ok, 1):.1f} ms per passing program")
    print(f"distinct failure kinds: {len(groups)}", flush=True)
    for kind, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        spec, detail = min(items, key=lambda sd: (len(sd[0][5]), repr(sd[0])))
        if not a.no_shrink and not kind.startswith("FUZZER"):
            spec = seams.shrink(spec, kind)
            try:
                seams.check(spec)
            except seams.SeamFailure as e:
                detail = f"{e.detail}\n      {e.program!r}"
            except Exception as e:                               # noqa: BLE001
                detail = f"{type(e).__name__}: {e}"
        print(f"\n[{len(items)}x] {kind}\n      {detail}\n      reproduce: "
              f"seams.check({spec!r})", flush=True)
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
