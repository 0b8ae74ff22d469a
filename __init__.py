"""The repository folder, imported as a package: a script run beside a clone named
``autodiff`` finds this folder before the installed package (an editable install is looked
up after the script's own folder, and a folder is importable as a namespace package), and
would otherwise get an empty ``autodiff`` with no ``grad``. Load the real package,
``autodiff/`` inside this folder, in this module's place, so the clone works as installed.
"""
import os as _os

_inner = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "autodiff")
__path__ = [_inner]                     # submodules (autodiff.api, …) come from the package
__file__ = _os.path.join(_inner, "__init__.py")
if __spec__ is not None:
    __spec__.submodule_search_locations = __path__
with open(__file__, encoding="utf-8") as _src:
    exec(compile(_src.read(), __file__, "exec"))
del _src
