import numpy as np, autodiff as ad, time
from autodiff.scipy import optimize as aso
from autodiff.scipy.optimize import _implicit
rng = np.random.default_rng(0)
L=20000
e = np.sort(rng.standard_normal(L)); T, N = 0.05, 0.45*L
def occ(mu, e, T): return np.sum(1.0 / (1.0 + np.exp((e - mu) / T))) - N
x = aso.brentq(occ, -10.0, 10.0, args=(e, T))
def tm(f, n=40):
    f(); best=1e9
    for r in range(3):
        t=time.process_time(); [f() for _ in range(n)]; best=min(best,(time.process_time()-t)/n*1e3)
    return best
print("F", tm(lambda: occ(x, e, T)))
print("solve", tm(lambda: aso.brentq(occ, -10.0, 10.0, args=(e, T))))
print("attach only grad", tm(lambda: ad.grad(lambda e, T: _implicit("b", occ, x, (e, T)), argnums=(0,1))(e, T)))
print("gradF", tm(lambda: ad.grad(occ, argnums=(0,1,2))(x, e, T)))
print("jvpF", tm(lambda: ad.jvp(occ, (x, e, T), (1.0, e, 1.0))))
print("attach only jvp", tm(lambda: ad.jvp(lambda T: _implicit("b", occ, x, (e, T)), (T,), (1.0,))))
import cProfile, pstats
pr=cProfile.Profile(time.process_time); pr.enable()
for _ in range(40): ad.jvp(lambda T: _implicit("b", occ, x, (e, T)), (T,), (1.0,))
pr.disable(); pr.dump_stats("/tmp/p2.out")
pstats.Stats("/tmp/p2.out").sort_stats("tottime").print_stats(12)
