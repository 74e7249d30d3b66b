"Every experiment notebook runs end to end under papermill at a tiny scale and writes its three result files."
import json, os
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT/'nbs'/'experiments').glob('*.ipynb'))
STATS_EXPERIMENTS = ('synthetic_probe', 'synthetic_sweep', 'mfeat')  # seeds, intervals, references, both probes, verdicts
# experiments whose tiny run (several seeds) saves its Holm-corrected family of claims as <name>.claims.csv
CLAIMS_EXPERIMENTS = ('mfeat', 'synthetic_probe', 'synthetic_sweep', 'ssl_condition', 'unique_augment', 'table1_grid',
                      'interactions', 'trifeatures', 'critic_audit')
NO_CLAIMS = ('synthetic_paper_cpu', 'irfl', 'multibench')   # here: one seed (no paired claims) or no data (skipped)

@pytest.fixture(autouse=True)
def kernel_imports_this_checkout(monkeypatch):
    "The papermill kernel is a subprocess: make it import the package from this checkout."
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
    monkeypatch.setenv('MPLBACKEND', 'Agg')

@pytest.mark.parametrize('nb', EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_runs_at_tiny_scale(nb, tmp_path, claims_check):
    import papermill as pm
    params = pm.inspect_notebook(str(nb))
    assert 'scale' in params and 'out_dir' in params, f"{nb.name} must declare scale and out_dir parameters"
    pm.execute_notebook(str(nb), str(tmp_path/nb.name), parameters=dict(scale='tiny', out_dir=str(tmp_path), device='cpu'),
                        kernel_name='python3', cwd=str(nb.parent), progress_bar=False)
    meta = json.loads((tmp_path/f'{nb.stem}.json').read_text())
    assert meta['params']['scale'] == 'tiny'
    assert meta['report'].strip(), "the report section for REPORT.md is empty"
    if (tmp_path/f'{nb.stem}.csv').exists(): assert len(pd.read_csv(tmp_path/f'{nb.stem}.csv')) > 0
    if not meta.get('skipped'):
        for ext in ('png', 'csv'): assert (tmp_path/f'{nb.stem}.{ext}').stat().st_size > 0
    if nb.stem in STATS_EXPERIMENTS: check_statistics(pd.read_csv(tmp_path/f'{nb.stem}.csv'), meta['report'])
    if nb.stem in CLAIMS_EXPERIMENTS:
        # the report of table1_grid shows its claims by cell and state, not by claim text: checked below
        claims = claims_check(tmp_path/f'{nb.stem}.claims.csv', None if nb.stem == 'table1_grid' else meta['report'])
        if nb.stem == 'table1_grid': check_table1_grid_report(claims, meta['report'])
    if nb.stem in NO_CLAIMS: assert not (tmp_path/f'{nb.stem}.claims.csv').exists()
    check_rendered(tmp_path/nb.name, skipped=bool(meta.get('skipped')))

def check_rendered(executed, skipped):
    "Reports show as rendered Markdown (a computed reading unless skipped), and no probe warns per fit."
    import nbformat
    outputs = [o for c in nbformat.read(executed, 4).cells if c.cell_type == 'code' for o in c.get('outputs', [])]
    text = '\n'.join(o.get('text', '') for o in outputs if o.get('output_type') == 'stream')
    assert 'ConvergenceWarning' not in text, "a linear probe warned: its convergence belongs in the probe_log summary"
    markdown = [o['data']['text/markdown'] for o in outputs if 'text/markdown' in o.get('data', {})]
    assert markdown, "the notebook displays no rendered Markdown (display(Markdown(...)))"
    if not skipped: assert any(m.startswith('**Reading**') for m in markdown), "no computed reading is displayed"

def check_statistics(table, report):
    "Several seeds, trained / untrained / raw rows for both probes, and a verdict for every claim in the report."
    acc = table[table['accuracy'].notna()]
    assert acc['seed'].nunique() >= 2
    assert set(acc['state']) == {'trained', 'untrained', 'raw'}
    assert acc['protocol'].nunique() == 2
    trained = acc[acc.state == 'trained']
    untrained = acc[acc.state == 'untrained'].set_index(['seed', 'method', 'protocol'])
    assert set(trained.set_index(['seed', 'method', 'protocol']).index) <= set(untrained.index)  # every run has its initialisation
    assert 'its untrained network' in report and 'raw [x1, x2]' in report
    assert ' [' in report   # intervals (the verdicts are checked against the saved claims by check_claims)

def check_table1_grid_report(claims, report):
    "Each cell of the report's table reads the corrected and uncorrected verdict of its claim D > 0 in the saved family."
    assert f"corrected for the experiment's {len(claims)} claims by Holm's method" in report
    split = lambda line: [c.strip() for c in line.strip().strip('|').split('|')]
    lines = report.splitlines()
    header = next(l for l in lines if l.startswith('| noise | objective | heads | estimator |'))
    cols = split(header)
    rows = {tuple(split(l)[:4]): split(l) for l in lines if l.startswith('| ') and len(split(l)) == len(cols) and l != header}
    d = claims[claims.claim.str.contains(' > 0 ')]
    last = d.epochs.max()
    assert last > 0 and len(claims) - len(d) == (d.epochs > 0).sum()   # and one 'moved' claim per trained D
    shown = d[d.epochs.isin([0, last])]
    assert len(shown) == 2 * 3 * len(rows) > 0
    for c in shown.itertuples():
        cell = rows[(str(c.noise), c.objective, c.heads, c.estimator)][cols.index(('untrained ' if c.epochs == 0 else 'trained ') + c.D)]
        assert cell.startswith(f'{c.verdict} (unadjusted: {c.verdict_unadjusted}): '), (c.claim, cell)

def test_experiment_rejects_unknown_scale(tmp_path):
    import papermill as pm
    nb = ROOT/'nbs'/'experiments'/'gaussian_mi.ipynb'
    with pytest.raises(pm.PapermillExecutionError, match='scale must be'):
        pm.execute_notebook(str(nb), str(tmp_path/'x.ipynb'), parameters=dict(scale='huge', out_dir=str(tmp_path)),
                            kernel_name='python3', cwd=str(nb.parent), progress_bar=False)


def test_interaction_results_columns_and_truth():
    "The committed interactions result: one row per (method, task, seed, probe), every listed state, the exact truth."
    df = pd.read_csv(ROOT/'figures'/'interactions.csv')
    assert {'method', 'task', 'seed', 'probe', 'state', 'accuracy'} <= set(df.columns)
    assert set(df.state) == {'trained', 'untrained', 'raw'}
    assert {'raw linear', 'raw MLP', 'CoMM', 'InfMasking', 'FactorCL-SSL', 'FactorCL-SUP'} <= set(df.method)
    assert set(df.task) == {'redundancy', 'unique1', 'unique2', 'synergy', 'mixed'}
    assert not df.duplicated(['method', 'task', 'seed', 'probe', 'state']).any()
    truth = json.loads((ROOT/'figures'/'interactions.json').read_text())['params']['truth']
    assert truth['synergy']['synergy'] == 1 and truth['redundancy']['redundant'] == 1
    raw = df[df.state == 'raw'].groupby(['method', 'task']).accuracy.mean()
    assert raw['raw linear', 'synergy'] <= 0.60 and raw['raw MLP', 'synergy'] >= 0.95   # learning matters here
