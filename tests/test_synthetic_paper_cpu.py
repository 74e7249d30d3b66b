"The synthetic_paper_cpu experiment at tiny scale: both methods trained and untrained, both probes, Table 1 bits and a computed reading."

import math
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'nbs'/'experiments'/'synthetic_paper_cpu.ipynb'
F, B = "FactorCL-SUP (authors' schedule)", 'SimCLR'
PROBES = {'heads (equal width)', 'encoder [h1, h2]'}

@pytest.fixture(scope='module')
def tiny_run(run_experiment_tiny):
    "Run the notebook once at tiny scale (the papermill kernel imports this checkout)."
    return run_experiment_tiny('synthetic_paper_cpu')

def test_is_run_only_when_named_and_declares_its_parameters():
    import papermill as pm
    params = pm.inspect_notebook(str(NB))
    assert params['in_default_run']['default'] == 'False' and params['scale']['default'] == "'quick'"
    assert params['amp']['default'] == 'None' and params['data_dir']['default'] == 'None'   # None: the scale's own

def test_quick_is_the_papers_setting_with_its_progress_bar():
    "The 'quick' scale is the authors' setting (30,000 samples, their networks, concat critics, 10 epochs), one seed, bf16, progress shown."
    import nbformat
    src = next(c.source for c in nbformat.read(NB, 4).cells if c.cell_type == 'code' and 'settings = dict(' in c.source)
    ns = {}
    exec(src[src.index('PAPER_NETS = '):src.index('settings = dict(')], ns)   # the settings shared by 'quick' and 'paper'
    P = ns['PAPER_NETS']
    assert P['encoder'] == dict(embed_dim=128, hidden_dim=512, n_hidden=3) and P['width'] == 256
    assert P['model'] == dict(head_hidden=128, critic='concat', critic_hidden=512, critic_layers=2)
    assert P['train'] == dict(epochs=10, batch_size=256, lr=1e-4)
    assert "quick=dict(n_samples=30000, seeds=1, amp='bf16', **PAPER_NETS, progress=True)" in src
    assert "paper=dict(n_samples=30000, seeds=5, amp='off', **PAPER_NETS, progress=True)" in src

def test_both_methods_trained_and_untrained_under_both_probes(tiny_run):
    table, meta = tiny_run
    acc = table[table.kind == 'accuracy']
    assert set(acc.protocol) == PROBES and acc.accuracy.between(0, 1).all() and acc.accuracy.notna().all()
    for state in ('trained', 'untrained'):
        a = acc[acc.state == state]
        assert set(a.method) == {F, B}
        assert len(a) == 2 * len(PROBES)   # one row per method and protocol (one seed at tiny scale)
    assert set(acc[acc.state == 'raw'].method) == {'raw [x1, x2]'}
    times = table[table.kind == 'train_seconds']
    assert set(times.method) == {F, B} and (times.seconds > 0).all() and (times.steps > 0).all()
    assert meta['params']['amp'] == 'off' and meta['params']['runs'][F][0] == 'FactorCL-SUP'
    assert meta['params']['runs'][F][1]['critic_steps'] == 1 == meta['params']['runs'][F][1]['critic_max_steps']   # the authors' schedule reached fit

def test_table1_bits_are_finite_for_every_head_and_latent(tiny_run):
    table, _ = tiny_run
    mi = table[table.kind == 'mutual_information']
    assert set(mi.latent) == {'w1', 'w2', 'ws'} and set(mi.state) == {'trained', 'untrained'}
    assert set(mi[mi.method == F].Z) == {'Z_U1', 'Z_U2', 'Z_S1', 'Z_S2'} and set(mi[mi.method == B].Z) == {'Z1', 'Z2'}
    assert all(math.isfinite(b) for b in mi.bits)
    # each difference D is recomputed from the bits it names
    d = table[table.kind == 'table1_difference'].set_index(['seed', 'state', 'D']).bits
    bits = mi[mi.method == F].set_index(['seed', 'state', 'Z', 'latent']).bits
    for (s, st, name), v in d.items():
        a, b = {'D1': (('Z_U1', 'w1'), ('Z_S1', 'w1')), 'D2': (('Z_U2', 'w2'), ('Z_S2', 'w2')), 'Ds': (('Z_S1', 'ws'), ('Z_U1', 'ws'))}[name]
        assert v == pytest.approx(bits[(s, st, *a)] - bits[(s, st, *b)])
    assert len(d) == 6

def test_report_holds_a_reading_that_says_one_seed_has_no_interval(tiny_run, run_experiment_tiny):
    _, meta = tiny_run
    assert not (run_experiment_tiny.out_dirs['synthetic_paper_cpu']/'synthetic_paper_cpu.claims.csv').exists()   # no paired claims
    report = meta['report']
    assert meta['params']['scale'] == 'tiny' and '**Reading**' in report
    assert 'One seed: there is no interval' in report
    assert "Beside the authors' notebook" in report and '0.986' in report and '0.956' in report
    assert 'I(Z;w1) trained' in report and 'I(Z;ws) untrained' in report

def test_several_seeds_give_intervals_and_paired_verdicts(run_experiment_tiny, read_claims):
    "The 'paper' branch (five seeds on a GPU), exercised at tiny scale with two seeds: intervals, paired claims, verdicts."
    table, meta = run_experiment_tiny('synthetic_paper_cpu', n_seeds=2)
    acc = table[table.kind == 'accuracy']
    assert sorted(acc.seed.unique()) == [0, 1] and meta['params']['seed_list'] == [0, 1]
    trained = acc[acc.state == 'trained'].set_index(['seed', 'method', 'protocol'])
    assert set(trained.index) <= set(acc[acc.state == 'untrained'].set_index(['seed', 'method', 'protocol']).index)
    report = meta['report']
    assert 'One seed: there is no interval' not in report and 'Paired over seeds' in report
    assert f'{F} > SimCLR' in report and f'{F} (trained): D1 > 0' in report
    assert 'authors' in report
    claims = read_claims('synthetic_paper_cpu', report)   # one Holm-corrected family, each claim shown with both verdicts
    assert len(claims) == 2 * 5 + 2 * 3   # accuracy (probe x 5 claims) and Table 1 (state x D1, D2, Ds)
    d = table[table.kind == 'table1_difference']
    assert len(d) == 2 * 2 * 3 and d.bits.notna().all()
