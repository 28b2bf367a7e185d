"""Every module says what it offers (``__all__``), and says it truthfully, as httpx keeps its own honest."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("bot", "offline", "handlers", "store", "prime", "core")
MODULES = sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=f"{package}.")
    if not info.name.endswith(".__main__")
)  # every module and subpackage (handlers.kinds.erasure, handlers.workers.outbox, ...)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_its_public_names_and_each_exists(name: str) -> None:
    """__all__ is present, has no duplicates, and names only things the module defines or re-exports."""
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{name} has no __all__"
    assert len(set(public)) == len(public), f"{name}.__all__ repeats a name"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"


@pytest.mark.parametrize("package", ["core", "prime", "store"])
def test_a_package_with_private_modules_offers_its_api_from_its_init(package: str) -> None:
    """``import store`` / ``import prime`` is the only way in: every module in it is private (``_name``), and
    the package's own __all__ is there, without repeats, naming only what it has."""
    module = importlib.import_module(package)
    public_modules = [info.name for info in pkgutil.iter_modules(module.__path__) if not info.name.startswith("_")]
    assert not public_modules, f"{package} has public modules besides its __init__: {public_modules}"
    public = getattr(module, "__all__", None)
    assert public, f"{package} offers nothing from its __init__"
    assert len(set(public)) == len(public), f"{package}.__all__ repeats a name"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
