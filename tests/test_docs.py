"""Every snippet a user reads runs: the README's code blocks and the docstring examples.
And the README's two commands are exactly what CI runs."""
import doctest
import importlib
import pathlib
import pkgutil
import re

import numpy as np
import pytest

import autodiff

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("k", range(len(_blocks("python"))))
def test_readme_python_blocks_run(k):
    exec(compile(_blocks("python")[k], f"README.md block {k}", "exec"), {})


def test_readme_commands_are_what_ci_runs():
    commands = [b.strip() for b in _blocks("bash")]
    assert len(commands) >= 2
    ci = (ROOT / ".ci" / "run").read_text()
    for c in commands[:2]:
        assert c in ci, f"README command not run by CI: {c}"
    assert "python -m autodiff" in commands[0] and "pytest" in commands[1]


def _modules():
    for m in pkgutil.walk_packages(autodiff.__path__, "autodiff."):
        if m.name != "autodiff.__main__":
            yield m.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={"np": np, "ad": autodiff, **vars(module)}):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"


def test_tour_runs_clean(capsys):
    from autodiff.tour import main
    main()
    out = capsys.readouterr().out
    assert "0.980785280403230" in out                 # d/dx sin at π/16 = cos(π/16)
    assert "Traceback" not in out
