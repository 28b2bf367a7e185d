"""Every module says what it offers (``__all__``), and says it truthfully, as httpx keeps its own honest."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("bot", "handlers", "store")
MODULES = sorted(
    f"{package}.{info.name}"
    for package in PACKAGES
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__)
    if info.name != "__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_its_public_names_and_each_exists(name: str) -> None:
    """__all__ is present, has no duplicates, and names only things the module defines or re-exports."""
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{name} has no __all__"
    assert len(set(public)) == len(public), f"{name}.__all__ repeats a name"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
