"Every library notebook runs top to bottom (its own small tests included), and the package equals its export."
import filecmp, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB_NBS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))

@pytest.mark.parametrize('nb', LIB_NBS, ids=[p.name for p in LIB_NBS])
def test_library_notebook_runs(nb):
    from nbdev.test import test_nb
    ok, _ = test_nb(nb, skip_flags=['slow'], basepath=str(ROOT))
    assert ok, f"{nb.name} failed: see the traceback above"

def test_exported_package_equals_notebooks(tmp_path):
    "What nbdev-export writes from nbs/ is byte-for-byte the committed factorcl_nb/."
    work = tmp_path/'proj'
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns('.git', '__pycache__', '*.egg-info', 'figures', '.venv'))
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=work, check=True)
    cmp = filecmp.dircmp(ROOT/'factorcl_nb', work/'factorcl_nb', ignore=['__pycache__'])
    def diffs(c, prefix=''):
        out = [prefix + f for f in c.diff_files + c.left_only + c.right_only]
        for name, sub in c.subdirs.items(): out += diffs(sub, f'{prefix}{name}/')
        return out
    assert not diffs(cmp), f"factorcl_nb/ differs from what the notebooks export: {diffs(cmp)}"
