"The unique_augment experiment at tiny scale: one paused-and-resumed run per augmentation and seed, probed at every logged epoch."
import json, os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'nbs'/'experiments'/'unique_augment.ipynb'
AUGMENTATIONS = {'latent unique', 'latent independent', 'near-identity'}

@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    import papermill as pm
    out = tmp_path_factory.mktemp('unique_augment')
    env = dict(PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep), MPLBACKEND='Agg')
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)   # the papermill kernel is a subprocess: make it import this checkout
    try:
        pm.execute_notebook(str(NB), str(out/NB.name), parameters=dict(scale='tiny', out_dir=str(out), device='cpu', seed=3),
                            kernel_name='python3', cwd=str(NB.parent), progress_bar=False)
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    return pd.read_csv(out/'unique_augment.csv'), json.loads((out/'unique_augment.json').read_text())

def test_parameters_keep_it_out_of_the_default_run():
    import papermill as pm
    params = pm.inspect_notebook(str(NB))
    assert params['scale']['default'].strip("'\"") == 'quick'
    assert params['in_default_run']['default'] == 'False'

def test_every_augmentation_seed_epoch_factor_and_latent_is_measured(tiny_run):
    table, meta = tiny_run
    mi = table[table.kind == 'mutual_information']
    epochs = meta['params']['log_epochs']
    assert epochs[0] == 0 and len(epochs) >= 3
    assert set(mi.augmentation) == AUGMENTATIONS and sorted(mi.seed.unique()) == meta['params']['seed_list'] == [3, 4]
    assert sorted(mi.epoch.unique()) == epochs
    assert set(mi.Z) == {'Z_U1', 'Z_S1', 'Z_U2', 'Z_S2'} and set(mi.latent) == {'w1', 'w2', 'ws'}
    assert len(mi) == len(AUGMENTATIONS) * 2 * len(epochs) * 4 * 3       # one row each, no duplicates
    assert np.isfinite(mi.bits).all()
    acc = table[table.kind == 'accuracy']
    assert set(acc.protocol) == {'heads', 'encoder'} and 'raw [x1, x2]' in set(acc.augmentation)
    assert acc.accuracy.between(0, 1).all()

def test_the_three_runs_of_a_seed_start_from_one_network_and_then_differ(tiny_run):
    table, meta = tiny_run
    mi = table[table.kind == 'mutual_information'].pivot_table(index=['seed', 'epoch', 'Z', 'latent'], columns='augmentation', values='bits')
    start = mi.xs(0, level='epoch')
    assert np.allclose(start.min(1), start.max(1), rtol=0, atol=1e-9)     # same initial network for every augmentation
    end = mi.xs(meta['params']['log_epochs'][-1], level='epoch')
    assert (end.max(1) - end.min(1) > 1e-6).mean() > 0.5                  # training with different views moved them apart

def test_report_reads_the_claims_with_intervals(tiny_run):
    _, meta = tiny_run
    report = meta['report']
    assert 'What $Z_{U1}$ holds about $w_1$' in report and ' [' in report
    assert any(v in report for v in ('holds', 'does not hold', 'inconclusive'))
    for a in AUGMENTATIONS: assert f'{a}: I(Z_U1;w1) grows' in report
