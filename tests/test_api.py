"""Every public name of the package is a real object: each module's `__all__` lists names it defines, and no public
module-level name is None (a function decorated in a way that returns None would leave such a name behind)."""
import importlib, pkgutil
import pytest
import factorcl_nb

MODULES = sorted(m.name for m in pkgutil.walk_packages(factorcl_nb.__path__, 'factorcl_nb.'))


def test_the_package_has_its_modules():
    assert {'factorcl_nb.models', 'factorcl_nb.train', 'factorcl_nb.repro'} <= set(MODULES)


@pytest.mark.parametrize('name', MODULES)
def test_public_names_exist_and_are_not_none(name):
    mod = importlib.import_module(name)
    listed = getattr(mod, '__all__', [])
    missing = [n for n in listed if not hasattr(mod, n)]
    assert not missing, f"{name}.__all__ lists names the module does not define: {missing}"
    none = [n for n in listed if getattr(mod, n) is None]
    none += [n for n, v in vars(mod).items() if v is None and not n.startswith('_') and n not in none]
    assert not none, f"public names of {name} evaluate to None: {none}"
