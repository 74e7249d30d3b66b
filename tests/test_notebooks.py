"""Every library notebook runs top to bottom under nbval (its own tests included), the outputs of the cells marked
`# NBVAL_CHECK_OUTPUT` equal the committed ones, every notebook is committed with its outputs, and the package
equals its export."""
import filecmp, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB_NBS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
METHOD_NBS = [p for p in LIB_NBS if p.name[:2] in {'01', '02', '03', '04', '05', '06', '07'} and p.name[2] == '_']

def _code_cells(nb): return [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']


@pytest.mark.parametrize('nb', LIB_NBS, ids=[p.name for p in LIB_NBS])
def test_library_notebook_runs_and_its_checked_outputs_are_current(nb):
    "nbval re-executes the notebook in a fresh kernel; a failing cell, or a marked cell whose output changed, fails."
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}   # the kernel's inline backend shows the figures
    env = dict(env, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
               OMP_NUM_THREADS='1')   # inline figures as saved; one thread: the saved outputs were computed so, bit for bit
    # nbdev-clean blanks execution counts, and nbval skips (and refuses outputs of) cells that never ran: number the
    # code cells in a hidden copy beside the notebook (same folder, so relative paths hold; nbdev and the docs skip it)
    cells = json.loads(nb.read_text())
    for i, c in enumerate(cells['cells']):
        if c['cell_type'] == 'code': c['execution_count'] = i + 1
    copy = nb.parent/f'.nbval-{nb.name}'
    copy.write_text(json.dumps(cells))
    try:
        r = subprocess.run([sys.executable, '-m', 'pytest', '--nbval-lax', '--nbval-current-env', '-o', 'addopts=',
                            '-p', 'no:cacheprovider', '-p', 'no:xdist', '-q', '--no-header', str(copy)],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    finally: copy.unlink()
    assert r.returncode == 0, f"{nb.name} failed under nbval:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"


@pytest.mark.parametrize('nb', LIB_NBS, ids=[p.name for p in LIB_NBS])
def test_library_notebook_is_committed_executed(nb):
    "A reader on GitHub sees what each demo computes: the notebook carries outputs, and none of them is an error."
    cells = _code_cells(nb)
    shown = [c for c in cells if c.get('outputs')]
    assert shown, f"{nb.name} has no saved outputs: execute it and commit it with its outputs"
    errors = [o for c in cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, f"{nb.name} was committed with an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize('nb', METHOD_NBS, ids=[p.name for p in METHOD_NBS])
def test_method_notebook_shows_a_figure(nb):
    "Each notebook of the method (01-07) shows its idea in at least one figure."
    images = [o for c in _code_cells(nb) for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]
    assert images, f"{nb.name} shows no figure"


def test_method_notebooks_check_some_outputs():
    "Deterministic demo outputs are marked for nbval, so a notebook whose saved numbers drift from its code fails."
    unmarked = [nb.name for nb in METHOD_NBS
                if not any(''.join(c['source']).lstrip().startswith('# NBVAL_CHECK_OUTPUT') for c in _code_cells(nb))]
    assert not unmarked, f"no cell marked # NBVAL_CHECK_OUTPUT in {unmarked}"


def test_exported_package_equals_notebooks(tmp_path):
    "What nbdev-export writes from nbs/ is byte-for-byte the committed factorcl_nb/."
    work = tmp_path/'proj'
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns('.git', '__pycache__', '*.egg-info', 'figures', '.venv', '_build'))
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=work, check=True)
    cmp = filecmp.dircmp(ROOT/'factorcl_nb', work/'factorcl_nb', ignore=['__pycache__'])
    def diffs(c, prefix=''):
        out = [prefix + f for f in c.diff_files + c.left_only + c.right_only]
        for name, sub in c.subdirs.items(): out += diffs(sub, f'{prefix}{name}/')
        return out
    assert not diffs(cmp), f"factorcl_nb/ differs from what the notebooks export: {diffs(cmp)}"
