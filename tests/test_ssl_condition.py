"The ssl_condition experiment at tiny scale: both conditions and SimCLR on both datasets, trained and untrained, with verdicts."

from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'nbs'/'experiments'/'ssl_condition.ipynb'
RUNS = {'FactorCL-SSL (concat)', 'FactorCL-SSL (residual)', 'SimCLR'}

@pytest.fixture(scope='module')
def tiny_run(run_experiment_tiny):
    "Run the notebook once at tiny scale (the papermill kernel imports this checkout)."
    return run_experiment_tiny('ssl_condition')

def test_is_run_only_when_named():
    import papermill as pm
    params = pm.inspect_notebook(str(NB))
    assert params['in_default_run']['default'] == 'False' and params['scale']['default'] == "'quick'"

def test_every_run_is_measured_trained_and_untrained_on_both_datasets(tiny_run):
    table, meta = tiny_run
    acc = table[table.kind == 'accuracy']
    for dataset in ('synthetic', 'mfeat'):
        a = acc[acc.dataset == dataset]
        assert a.seed.nunique() == 2 and a.protocol.nunique() == 2
        assert set(a[a.state == 'trained'].run) == RUNS and set(a[a.state == 'untrained'].run) == RUNS
        assert a.accuracy.between(0, 1).all()
    terms = table[table.kind == 'heldout_term']
    shared = terms[(terms.term == 'shared') & (terms.state == 'trained')]
    assert set(shared.run) == RUNS and shared.nats.notna().all()
    # the shared term is shared_nce for FactorCL and cross_nce for SimCLR, read from the same loss call
    key = ['dataset', 'seed', 'run', 'state']
    nce = terms[terms.term.isin(['shared_nce', 'cross_nce'])].set_index(key).nats
    assert (terms[terms.term == 'shared'].set_index(key).nats - nce).abs().max() == 0

def test_untrained_networks_coincide_and_the_condition_acts_through_training(tiny_run):
    "Same seed: both conditions start from the same encoders and heads, so untrained bits agree; the conditional terms differ."
    table, _ = tiny_run
    mi = table[table.kind == 'mutual_information']
    assert set(mi.dataset) == {'synthetic'} and set(mi.latent) == {'w1', 'w2', 'ws'}
    un = mi[mi.state == 'untrained'].pivot_table(index=['seed', 'Z', 'latent'], columns='run', values='bits')
    assert (un['FactorCL-SSL (concat)'] - un['FactorCL-SSL (residual)']).abs().max() < 1e-9
    terms = table[(table.kind == 'heldout_term') & (table.term == 'unique_cond_nce')]
    t = terms.pivot_table(index=['dataset', 'seed', 'state'], columns='run', values='nats')
    assert (t['FactorCL-SSL (concat)'] != t['FactorCL-SSL (residual)']).all()   # different estimators on the same heads

def test_report_gives_verdicts_and_a_computed_interpretation(tiny_run, read_claims):
    _, meta = tiny_run
    report = meta['report']
    assert meta['params']['scale'] == 'tiny' and meta['params']['runs']['FactorCL-SSL (residual)'] == ['FactorCL-SSL', 'residual']
    assert 'FactorCL-SSL (residual) > FactorCL-SSL (concat)' in report and '### Interpretation' in report
    claims = read_claims('ssl_condition', report)   # one Holm-corrected family, each claim shown with both verdicts
    assert len(claims) == 2 * 2 * 6 + 2 * 5 + 2 * 8 + 4   # accuracy (dataset x probe x 6), terms (dataset x 5), information
    assert set(claims.dataset.dropna()) == {'synthetic', 'mfeat'}
    assert "The default stays `condition='concat'`" in report
