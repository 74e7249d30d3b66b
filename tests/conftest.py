import os, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('MPLBACKEND', 'Agg')
# pytest runs two workers on two cores (pytest -n 2): one thread each, inherited by the papermill kernels.
# Oversubscribed OpenMP threads spin and slow small models down by an order of magnitude.
os.environ['OMP_NUM_THREADS'] = '1'
torch.set_num_threads(1)

@pytest.fixture
def root(): return ROOT

@pytest.fixture(scope='module')
def run_experiment_tiny(tmp_path_factory):
    "run(name, **parameters): execute nbs/experiments/<name>.ipynb at tiny scale into a fresh folder; its (csv table, json record)."
    import json, pandas as pd, papermill as pm
    def run(name, **parameters):
        nb, out = ROOT/'nbs'/'experiments'/f'{name}.ipynb', tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as mp:   # the papermill kernel is a subprocess: make it import this checkout
            mp.setenv('PYTHONPATH', os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
            mp.setenv('MPLBACKEND', 'Agg')
            pm.execute_notebook(str(nb), str(out/nb.name), parameters=dict(scale='tiny', out_dir=str(out), device='cpu', **parameters),
                                kernel_name='python3', cwd=str(nb.parent), progress_bar=False)
        return pd.read_csv(out/f'{name}.csv'), json.loads((out/f'{name}.json').read_text())
    return run
