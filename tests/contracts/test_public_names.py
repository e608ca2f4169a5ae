"""Each package's ``__all__`` is written out (type checkers read it; ``flowroute`` re-exports
``actors`` and ``protocols`` with ``import *``): every public name the package imports is listed,
and nothing else."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


@pytest.mark.parametrize("package", ["actors", "protocols", "config"])
def test_all_lists_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    public = {name for name, value in vars(module).items() if not name.startswith("_") and not isinstance(value, ModuleType)}
    listed = set(module.__all__)
    assert sorted(public - listed) == [], f"{package}/__init__.py imports these but __all__ does not list them"
    assert sorted(listed - public) == [], f"{package}.__all__ lists names the package does not have"
    assert len(module.__all__) == len(listed), f"{package}.__all__ lists a name twice"
