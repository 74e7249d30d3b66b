"The unique_augment experiment at tiny scale: one paused-and-resumed run per augmentation and seed, probed at every logged epoch."

from pathlib import Path
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'nbs'/'experiments'/'unique_augment.ipynb'
AUGMENTATIONS = {'latent unique', 'latent independent', 'near-identity'}

@pytest.fixture(scope='module')
def tiny_run(run_experiment_tiny):
    "Run the notebook once at tiny scale, seed 3 (the papermill kernel imports this checkout)."
    return run_experiment_tiny('unique_augment', seed=3)

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

def test_report_reads_the_claims_with_intervals(tiny_run, read_claims):
    _, meta = tiny_run
    report = meta['report']
    assert 'What $Z_{U1}$ holds about $w_1$' in report and ' [' in report
    claims = read_claims('unique_augment', report)   # one Holm-corrected family, each claim shown with both verdicts
    assert len(claims) == 3 * 3 + 2 + 3 * 2 + 2 * 2   # bits: 3 per augmentation + 2 against latent unique; accuracy likewise per probe
    for a in AUGMENTATIONS: assert f'{a}: I(Z_U1;w1) grows' in report
