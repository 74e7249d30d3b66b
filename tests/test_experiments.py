"Every experiment notebook runs end to end under papermill at a tiny scale and writes its three result files."
import json, os
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT/'nbs'/'experiments').glob('*.ipynb'))
STATS_EXPERIMENTS = ('synthetic_probe', 'synthetic_sweep', 'mfeat')  # seeds, intervals, references, both probes, verdicts

@pytest.fixture(autouse=True)
def kernel_imports_this_checkout(monkeypatch):
    "The papermill kernel is a subprocess: make it import the package from this checkout."
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
    monkeypatch.setenv('MPLBACKEND', 'Agg')

@pytest.mark.parametrize('nb', EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_runs_at_tiny_scale(nb, tmp_path):
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
    assert any(v in report for v in ('holds', 'does not hold', 'inconclusive')) and ' [' in report  # verdicts and intervals

def test_experiment_rejects_unknown_scale(tmp_path):
    import papermill as pm
    nb = ROOT/'nbs'/'experiments'/'gaussian_mi.ipynb'
    with pytest.raises(pm.PapermillExecutionError, match='scale must be'):
        pm.execute_notebook(str(nb), str(tmp_path/'x.ipynb'), parameters=dict(scale='huge', out_dir=str(tmp_path)),
                            kernel_name='python3', cwd=str(nb.parent), progress_bar=False)
