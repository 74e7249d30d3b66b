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
        meta = json.loads((out/f'{name}.json').read_text())
        run.out_dirs[name] = out   # the last run of `name`: its <name>.claims.csv is read by `read_claims`
        return pd.read_csv(out/f'{name}.csv'), meta
    run.out_dirs = {}
    return run

CLAIM_FILE_COLUMNS = ['claim', 'p', 'p_holm', 'verdict', 'verdict_unadjusted']

def check_claims(path, report=None, alpha=0.05):
    """The experiment's saved family of claims (`<name>.claims.csv`) is Holm-corrected as one family with consistent
    verdicts, and (given its report) every claim shows in the report with its corrected and uncorrected verdicts."""
    import numpy as np, pandas as pd
    from factorcl_nb.stats import holm
    claims = pd.read_csv(path, keep_default_na=False, na_values=[''])
    assert len(claims) > 0 and set(CLAIM_FILE_COLUMNS) <= set(claims.columns), list(claims.columns)
    p, adj = claims.p.to_numpy(float), claims.p_holm.to_numpy(float)
    assert (np.isnan(p) == np.isnan(adj)).all()
    ok = ~np.isnan(p)
    assert (adj[ok] >= p[ok] - 1e-12).all() and (adj[ok] <= 1).all()
    np.testing.assert_allclose(adj, holm(p), rtol=1e-9, atol=1e-12)   # one family: every row of the file, corrected together
    decided = ok & (adj < alpha)
    d, v = claims.difference.to_numpy(float), claims.verdict.to_numpy()
    assert set(v) <= {'holds', 'does not hold', 'inconclusive'}
    assert ((v == 'holds') == (decided & (d > 0))).all()
    assert ((v == 'does not hold') == (decided & (d < 0))).all()
    # the correction only removes findings: a corrected holds / does not hold is also the uncorrected one
    assert (claims.verdict_unadjusted[v != 'inconclusive'] == claims.verdict[v != 'inconclusive']).all()
    if report is not None:
        assert f"corrected for the experiment's {len(claims)} claims by Holm's method" in report
        lines = report.splitlines()
        for c in claims.itertuples():
            shown = f'{c.verdict} (unadjusted: {c.verdict_unadjusted})'
            assert any(c.claim in line and shown in line for line in lines), f"the report does not show {c.claim!r} as {shown!r}"
    return claims

@pytest.fixture
def read_claims(run_experiment_tiny):
    "read_claims(name, report=None): the checked claims of the last tiny run of `name` (see `check_claims`)."
    return lambda name, report=None: check_claims(run_experiment_tiny.out_dirs[name]/f'{name}.claims.csv', report)

@pytest.fixture
def claims_check():
    "check_claims(path, report=None): the checks of a saved family of claims, for tests that run a notebook themselves."
    return check_claims
