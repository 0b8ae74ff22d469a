"""Layering: `autodiff/` never imports `nn/`, `gpu/` or Numba (shared/DESIGN.md, "Layers").

`autodiff.nn` and `autodiff.gpu` may be reached lazily (a module-level `__getattr__`), so an
import of them is allowed inside a module-level `__getattr__` only; Numba never.
"""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "autodiff"

CHECK_MODULES = textwrap.dedent("""
    import sys
    import numpy as np
    {imports}
    def bad():
        out = []
        for m in list(sys.modules):
            if m == "numba" or m.startswith("numba."):
                out.append(m)
            elif m in ("nn", "gpu") or m.startswith(("nn.", "gpu.")):
                out.append(m)
            elif m.startswith(("autodiff.nn", "autodiff.gpu")):
                out.append(m)
        return out
    b = bad()
    assert not b, "imported: %r" % b
    {work}
    b = bad()
    assert not b, "imported after use: %r" % b
    print("OK")
""")


def _run(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=60)


def test_import_autodiff_does_not_import_numba_nn_gpu():
    code = CHECK_MODULES.format(
        imports="import autodiff\nimport autodiff as ad",
        work="ad.grad(lambda x: np.sum(np.sin(x) * x))(np.ones(3)); "
             "ad.jacfwd(lambda x: np.exp(x))(np.ones(2)); "
             "ad.hessian(lambda x: np.sum(x ** 3))(np.ones(2))")
    p = _run(code)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "OK" in p.stdout


def _engine_submodules():
    names = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_import_every_engine_module_does_not_import_numba_nn_gpu():
    mods = _engine_submodules()
    assert "autodiff" in mods
    imports = "\n".join("import %s" % m for m in mods if "-" not in m)
    p = _run(CHECK_MODULES.format(imports=imports, work="pass"))
    assert p.returncode == 0, p.stdout + p.stderr


def _forbidden(modname):
    if not modname:
        return False
    m = modname.lstrip(".")
    top = m.split(".")[0]
    if top == "numba":
        return True
    if top in ("nn", "gpu"):
        return True
    if m.startswith(("autodiff.nn", "autodiff.gpu")):
        return m.split(".")[1] in ("nn", "gpu")
    return False


def _is_numba(modname):
    return bool(modname) and modname.lstrip(".").split(".")[0] == "numba"


# The lazy Numba imports the engine may hold: ad.jit's scalar backend compiles its
# interpreter the first time a scalar program is lowered, and the fused backend its loops
# the first time an array program is (never at import time, which the tests above check
# by running code).
LAZY_NUMBA = {("compiled.py", "_numba_interpreter"), ("fusion.py", "_numba")}


class _ImportScan(ast.NodeVisitor):
    def __init__(self, filename=""):
        self.stack = []       # names of enclosing functions
        self.bad = []
        self.filename = filename

    def _lazy_ok(self):
        # inside a module-level __getattr__ (PEP 562) lazy reach to nn/gpu is allowed
        return bool(self.stack) and self.stack[0] == "__getattr__"

    def visit_FunctionDef(self, node):
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.stack.append("<class %s>" % node.name)
        self.generic_visit(node)
        self.stack.pop()

    def _check(self, node, mod):
        if _is_numba(mod) and self.stack and (self.filename, self.stack[0]) in LAZY_NUMBA:
            return
        if _is_numba(mod) or (_forbidden(mod) and not self._lazy_ok()):
            self.bad.append((node.lineno, mod))

    def visit_Import(self, node):
        for a in node.names:
            self._check(node, a.name)

    def visit_ImportFrom(self, node):
        base = "." * node.level + (node.module or "")
        self._check(node, base)
        # `from . import nn`, `from autodiff import gpu`
        if node.module in (None, "autodiff") or (node.level and not node.module):
            for a in node.names:
                self._check(node, a.name)

    def visit_Call(self, node):
        # importlib.import_module("autodiff.nn") / __import__("numba")
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        if name in ("import_module", "__import__") and node.args:
            a = node.args[0]
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                self._check(node, a.value)
        self.generic_visit(node)


def test_engine_source_has_no_forbidden_imports():
    files = sorted(PKG.rglob("*.py"))
    assert files, "no engine source found"
    problems = []
    for path in files:
        src = path.read_text(encoding="utf-8")
        tree = ast.parse(src, filename=str(path))
        scan = _ImportScan(path.name if path.parent == PKG else "")
        scan.visit(tree)
        problems += ["%s:%d imports %s" % (path.relative_to(ROOT), ln, m) for ln, m in scan.bad]
    assert not problems, "\n".join(problems)


def test_engine_source_text_never_mentions_numba_import():
    problems = []
    for path in sorted(PKG.rglob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            s = line.strip()
            if s.startswith("#"):
                continue
            if s.startswith(("import numba", "from numba")) and not (
                    path.parent == PKG and path.name in {f for f, _ in LAZY_NUMBA}
                    and line.startswith("        ")):     # inside the lazy function
                problems.append("%s:%d %s" % (path.relative_to(ROOT), i, s))
            for pat in ("import nn", "from nn ", "from nn.", "import gpu", "from gpu ", "from gpu."):
                if s.startswith(pat):
                    problems.append("%s:%d %s" % (path.relative_to(ROOT), i, s))
    assert not problems, "\n".join(problems)


# ----- The engine's own import graph: a floor plan with no circles -----

def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _internal_imports(path, modules):
    """The autodiff modules ``path`` imports anywhere (inside functions too: a lazy import
    is still an edge of the floor plan)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in modules:
                out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names
                       if f"{target}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
    out.discard(name)
    return out


def test_engine_import_graph_has_no_cycles():
    """No module of autodiff imports, directly or through others, a module that imports it
    (DESIGN.md, "More modes": the shared helpers sit on the bottom floor). The package
    ``__init__`` files only gather names, so edges into them are left out."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    packages = {_module_name(p) for p in PKG.rglob("__init__.py")}
    graph = {m: _internal_imports(p, files) - packages for m, p in files.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_bottom_floor_imports_nothing_of_autodiff():
    """``autodiff/arrays.py`` (sum_to, broadcast, zeros-like, the batch axis) is below every
    mode and the registry."""
    path = PKG / "arrays.py"
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    assert _internal_imports(path, files) == set()
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported <= {"numpy", "operator"}, imported
    assert not any(isinstance(node, ast.ImportFrom) and node.level
                   for node in ast.walk(ast.parse(path.read_text())))
