"""CONTRIBUTING.md's diagram of which module imports which is the one the sources give, and its table of modules
names every module of the package."""
import importlib.util, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('module_map', ROOT/'tools'/'module_map.py')
module_map = importlib.util.module_from_spec(spec); spec.loader.exec_module(module_map)
CONTRIBUTING = (ROOT/'CONTRIBUTING.md').read_text()


def test_contributing_diagram_matches_the_sources():
    assert module_map.documented(CONTRIBUTING) == module_map.diagram(), \
        "CONTRIBUTING.md's module map is out of date: paste the output of `python tools/module_map.py`"


def test_contributing_table_lists_every_module():
    section = CONTRIBUTING.split('## How the package is organised', 1)[1].split(module_map.BEGIN, 1)[0]
    listed = set(re.findall(r'^\| `(\w+)` \|', section, flags=re.M))
    assert listed == set(module_map.module_graph()), f"table vs package: {listed ^ set(module_map.module_graph())}"


def test_the_map_reads_relative_and_absolute_imports(tmp_path, monkeypatch):
    pkg = tmp_path/'factorcl_nb'; (pkg/'data').mkdir(parents=True)
    (pkg/'a.py').write_text('')
    (pkg/'b.py').write_text('from .a import x\n')
    (pkg/'c.py').write_text('def f():\n    from factorcl_nb.data import load\n    import factorcl_nb.b\n')
    (pkg/'data'/'__init__.py').write_text('from ..a import y\n')
    monkeypatch.setattr(module_map, 'ROOT', tmp_path)
    assert module_map.module_graph() == {'a': [], 'b': ['a'], 'c': ['b', 'data'], 'data': ['a']}
    assert module_map.levels(module_map.module_graph()) == {'a': 0, 'b': 1, 'c': 2, 'data': 1}
