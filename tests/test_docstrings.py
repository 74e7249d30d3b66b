"Every public function, class and method of the package has a docstring (nbdev shows it in the docs)."
import importlib, inspect, pkgutil
import factorcl_nb

def public_objects():
    for m in pkgutil.walk_packages(factorcl_nb.__path__, 'factorcl_nb.'):
        mod = importlib.import_module(m.name)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, '__module__', '') != mod.__name__: continue
            yield f'{m.name}.{name}', obj
            if inspect.isclass(obj):
                for k, v in vars(obj).items():
                    if inspect.isfunction(v) and not k.startswith('_'): yield f'{m.name}.{name}.{k}', getattr(obj, k)

def test_every_public_object_has_a_docstring():
    objects = dict(public_objects())
    assert len(objects) > 100          # the walk found the package
    missing = [name for name, obj in objects.items() if not inspect.getdoc(obj)]
    assert not missing, f"no docstring: {missing}"
