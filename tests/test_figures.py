"""The committed figures match the code that produces them, and a run is reproducible.

Every result json records a fingerprint of what produced it (see `factorcl_nb.core.run_fingerprint`): digests of
the `factorcl_nb` modules the experiment imported (comments and docstrings ignored), of the experiment notebook's
code cells, and of its parameters. `stale_results` compares those with the current sources. Results of skipped
runs (MultiBench or IRFL without their data) record why they were skipped, not numbers: they are exempt.
"""
import json, os, shutil
from pathlib import Path

import pandas as pd
import pytest

from factorcl_nb.core import save_results
from factorcl_nb.repro import find_experiments, run_experiment
from factorcl_nb.report import save_skipped, stale_results, write_report

ROOT = Path(__file__).resolve().parents[1]
# gaussian_mi is the cheapest experiment that produces numbers; its own override parameters shrink it further
TINY = dict(scale='tiny', out_dir='.', device='cpu', seed=0, dims=[2], steps_per_level=5)


def staleness_message(stale:dict, folder:Path) -> str:
    lines = [f"  {name}: {'; '.join(changes)}" for name, changes in sorted(stale.items())]
    return (f"results in {folder} no longer match the sources that produce them:\n" + '\n'.join(lines) +
            f"\nRegenerate them and commit the new files: factorcl-repro {' '.join(sorted(stale))}")


def test_committed_figures_are_current():
    "A library or notebook change is not done until the figures it affects are regenerated."
    stale = stale_results(ROOT/'figures')
    assert not stale, staleness_message(stale, ROOT/'figures')


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
    """A copy of the sources (package and gaussian_mi notebook) with gaussian_mi run twice into two folders of it.

    The kernel imports the package from this checkout; the copy lets a test edit "the current sources"."""
    root = tmp_path_factory.mktemp('clone')
    shutil.copytree(ROOT/'factorcl_nb', root/'factorcl_nb', ignore=shutil.ignore_patterns('__pycache__'))
    (root/'nbs'/'experiments').mkdir(parents=True)
    shutil.copy(ROOT/'nbs'/'experiments'/'gaussian_mi.ipynb', root/'nbs'/'experiments')
    exp = find_experiments(root/'nbs'/'experiments')['gaussian_mi']
    old = os.environ.get('PYTHONPATH')
    os.environ['PYTHONPATH'] = os.pathsep.join(p for p in [str(ROOT), old] if p)
    try: outs = [run_experiment(exp, root/d, TINY, timeout=600)['result'].parent for d in ('figures', 'again')]
    finally:
        if old is None: del os.environ['PYTHONPATH']
        else: os.environ['PYTHONPATH'] = old
    return root, outs


def test_a_fresh_result_is_current_and_a_code_change_makes_it_stale(two_runs, tmp_path):
    root, (out, _) = two_runs
    src = tmp_path/'src'; shutil.copytree(root/'factorcl_nb', src/'factorcl_nb')
    (src/'nbs').mkdir(); shutil.copytree(root/'nbs'/'experiments', src/'nbs'/'experiments')
    fresh = tmp_path/'src'/'figures'; shutil.copytree(out, fresh)   # the notebook path is recorded relative to the folder
    fp = json.loads((fresh/'gaussian_mi.json').read_text())['fingerprint']
    assert {'factorcl_nb.core', 'factorcl_nb.estimators'} <= set(fp['modules'])
    assert fp['notebook']['path'] == '../nbs/experiments/gaussian_mi.ipynb'
    assert stale_results(fresh, root=src) == {}
    est = src/'factorcl_nb'/'estimators.py'
    est.write_text(est.read_text().replace('"""', '"""Edited docstring. ', 1) + '\n# a comment\n')
    assert stale_results(fresh, root=src) == {}          # comments and docstrings do not stale a result
    est.write_text(est.read_text() + '\nEXTRA_CONSTANT = 1\n')
    stale = stale_results(fresh, root=src)
    assert stale == {'gaussian_mi': ['module factorcl_nb.estimators changed']}
    assert 'factorcl-repro gaussian_mi' in staleness_message(stale, fresh)
    nb = src/'nbs'/'experiments'/'gaussian_mi.ipynb'
    cells = json.loads(nb.read_text())
    code = next(c for c in cells['cells'] if c['cell_type'] == 'code' and 'parameters' not in c['metadata'].get('tags', []))
    code['source'] = ['x = 1\n'] + code['source']
    nb.write_text(json.dumps(cells))
    assert stale_results(fresh, root=src)['gaussian_mi'] == ['module factorcl_nb.estimators changed', 'notebook gaussian_mi.ipynb changed']
    # REPORT.md (against this checkout's package, whose modules did not change) flags the section, naming the notebook
    report = write_report(fresh).read_text()
    assert '| gaussian_mi | tiny |' in report and '| stale |' in report
    assert '**Stale**: the sources changed since this result was produced (notebook gaussian_mi.ipynb changed)' in report
    assert 'Regenerate it with `factorcl-repro gaussian_mi`' in report
    assert '| current |' in write_report(out).read_text()   # the untouched run beside the unchanged copy is current
    (out/'REPORT.md').unlink()


def test_stale_and_exempt_results(tmp_path):
    save_skipped('needs_data', tmp_path, 'put `x.pkl` in the data folder', params=dict(scale='quick'))
    (tmp_path/'old.json').write_text(json.dumps(dict(name='old', params={}, report='numbers')))   # written before fingerprints
    save_results('fresh', tmp_path, table=pd.DataFrame(dict(a=[1])), params=dict(scale='tiny'), report='r')
    stale = stale_results(tmp_path)
    assert 'needs_data' not in stale     # a skip records no numbers: exempt
    assert stale['old'] == ['no fingerprint (written before results recorded one)']
    assert stale['fresh'] == ['the experiment notebook was not recorded']   # saved outside an experiment notebook
    report = write_report(tmp_path).read_text()
    assert '| old | unknown | ? | stale |' in report and '| needs_data | quick, skipped | ? | skipped |' in report
    assert '**Stale**' in report and 'Regenerate it with `factorcl-repro old`' in report
    msg = staleness_message(stale, tmp_path)
    assert 'factorcl-repro fresh old' in msg and 'old: no fingerprint' in msg


def test_the_same_run_twice_gives_identical_results(two_runs):
    "Same seed and parameters: identical json (apart from wall time and finish time) and identical table."
    _, (a, b) = two_runs
    ja, jb = (json.loads((d/'gaussian_mi.json').read_text()) for d in (a, b))
    for j in (ja, jb): j.pop('wall_time_s'); j.pop('finished')
    assert ja == jb
    assert (a/'gaussian_mi.csv').read_bytes() == (b/'gaussian_mi.csv').read_bytes()
    assert ja['params']['steps_per_level'] == 5 and ja['params']['dims'] == [2]


def test_executed_copies_hold_no_absolute_paths(two_runs):
    root, (out, _) = two_runs
    nb = json.loads((out/'gaussian_mi.ipynb').read_text())
    pmeta = nb['metadata']['papermill']
    assert pmeta['parameters']['out_dir'] == '.' and pmeta['input_path'] == '../nbs/experiments/gaussian_mi.ipynb'
    assert pmeta['output_path'] == 'gaussian_mi.ipynb'
    for f in ('gaussian_mi.ipynb', 'gaussian_mi.json', 'REPORT.md'):
        if (out/f).exists(): assert str(root) not in (out/f).read_text(), f"{f} holds an absolute path of this machine"
    assert sorted(p.name for p in out.iterdir()) == ['gaussian_mi.csv', 'gaussian_mi.ipynb', 'gaussian_mi.json', 'gaussian_mi.png']
