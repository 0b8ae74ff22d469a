import numpy as np, autodiff as ad, scipy.optimize as so
rng=np.random.default_rng(0)
n=5
M=rng.standard_normal((n,n))*0.3+np.eye(n)*3
def F(x, p, q):
    return M@x + np.sin(x)*p[0] - q["b"] + x**3*p[1]
for solve in ["dense","krylov"]:
    @ad.custom_root(F, solve=solve)
    def solver(x0, p, q):
        return so.fsolve(lambda x: F(x,p,q), x0, xtol=1e-14)
    def g(p, b):
        return solver(np.zeros(n), p, {"b": b})
    p=np.array([0.5,0.2]); b=rng.standard_normal(n)
    ad.check_grads(g,(p,b),order=2, rtol=1e-5, atol=1e-6)
    print(solve, "ok")
# pytree x
def F2(x, a):
    u,v = x
    return (u**2 + v - a, v - u*a)
@ad.custom_root(F2)
def s2(x0, a):
    sol = so.fsolve(lambda w: np.array(F2((w[0],w[1]),a)), [1.,1.], xtol=1e-14)
    return (sol[0], sol[1])
print(ad.jacfwd(lambda a: s2(None, a))(2.0), ad.jacrev(lambda a: s2(None,a))(2.0))
ad.check_grads(lambda a: s2(None, a), (2.0,), order=2)
# singular
@ad.custom_root(lambda x, a: (x-a)**2)
def bad(x0, a): return a
try: ad.grad(lambda a: bad(0., a))(1.0)
except np.linalg.LinAlgError as e: print("LinAlgError", e)
@ad.custom_root(lambda x, a: (x-a)**2, solve="krylov")
def bad2(x0, a): return np.full(3, a)
try: ad.grad(lambda a: bad2(0., a).sum())(1.0)
except RuntimeError as e: print("RuntimeError", e)
