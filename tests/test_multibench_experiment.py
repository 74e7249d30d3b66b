"""The MultiBench experiment (Tables 2 and 4) through `factorcl-repro`: a run without data, a run on fixtures of
all five files, then a run without data again, which must keep the fixture run's results."""
import json, os
from pathlib import Path
import pandas as pd
import pytest
from factorcl_nb.data import load_multibench, write_multibench_fixture
from factorcl_nb.data.multibench import MULTIBENCH_FILES
from factorcl_nb.repro import main
from factorcl_nb.report import load_results, load_skipped

ROOT = Path(__file__).resolve().parents[1]
METHODS = ['SimCLR', 'Cross+Self', 'Cross+Self+Fact', 'OurCL-SSL', 'FactorCL-SSL', 'FactorCL-IndAug',
           'SupCon', 'OurCL-SUP', 'FactorCL-SUP']

@pytest.fixture(autouse=True)
def kernel_env(monkeypatch):
    "The papermill kernel imports this checkout, draws no windows and sees no data folder from the environment."
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    monkeypatch.delenv('FACTORCL_DATA_DIR', raising=False)

def repro(out, data=None):
    args = ['multibench', '--scale', 'tiny', '--out', str(out), '--device', 'cpu']
    return main(args + (['--data-dir', str(data)] if data else []))

def majority_accuracy(name, data):
    "Test accuracy of always predicting the training split's most frequent class."
    d = load_multibench(name, data, **({} if name == 'mimic' else dict(zero_is_positive=name in ('mosi', 'mosei'))))
    return float((d['test']['y'] == d['train']['y'].bincount().argmax()).float().mean())

def test_without_data_then_fixtures_then_without_data(tmp_path, claims_check):
    out, data, empty = tmp_path/'out', tmp_path/'data', tmp_path/'empty'
    data.mkdir(); empty.mkdir()

    # 1. no data folder at all: a clean finish that says which file goes where
    assert repro(out) == 0
    meta = load_results(out)['multibench']
    assert meta['skipped'] and meta['params']['scale'] == 'tiny'
    assert not (out/'multibench.csv').exists() and not (out/'multibench.png').exists() and not (out/'multibench.claims.csv').exists()
    report, executed = (out/'REPORT.md').read_text(), (out/'multibench.ipynb').read_text()
    assert '| multibench | tiny, skipped |' in report and '**skipped**' in report
    for file in MULTIBENCH_FILES.values(): assert file in report and file in executed

    # 2. fixtures of all five files: every dataset x method, and the Table 4 probes of FactorCL-SUP
    for i, name in enumerate(MULTIBENCH_FILES): write_multibench_fixture(name, data, seed=i, binary_labels='01' if i % 2 else 'pm1')
    assert repro(out, data) == 0
    df = pd.read_csv(out/'multibench.csv')
    assert list(df.columns[:5]) == ['dataset', 'method', 'probe', 'seed', 'accuracy']
    cells = set(zip(df.dataset, df.method, df.probe))
    for name in MULTIBENCH_FILES:
        for method in METHODS: assert (name, method, 'all') in cells, (name, method)
        for probe in ('S', 'U1', 'U2'): assert (name, 'FactorCL-SUP', probe) in cells, (name, probe)
        row = df[(df.dataset == name) & (df.method == 'majority class')]
        assert row.accuracy.iloc[0] == pytest.approx(majority_accuracy(name, data))
    assert len(df) == len(set(zip(df.dataset, df.method, df.probe, df.seed)))   # one row per cell and seed
    assert df.accuracy.between(0, 1).all() and (df.seed == 0).all()              # tiny: one seed, the default 0
    meta = json.loads((out/'multibench.json').read_text())
    assert not meta.get('skipped') and sorted(meta['params']['datasets']) == sorted(MULTIBENCH_FILES)
    assert meta['params']['not_found'] == [] and (out/'multibench.png').stat().st_size > 0
    assert load_skipped(out) == {} and not (out/'multibench.skipped.json').exists()   # the real run voids the skip
    report = (out/'REPORT.md').read_text()
    assert '## multibench: Tables 2 and 4' in report and '| multibench | tiny |' in report
    assert '### Table 2' in report and '### Table 4' in report and 'FactorCL-U1 (Z_U1)' in report
    assert "authors' notebook" in report and 'arXiv:2306.05268' in report
    # the paper's five comparisons on each of the five datasets: one Holm-corrected family, shown with both verdicts
    claims = claims_check(out/'multibench.claims.csv', meta['report'])
    assert len(claims) == 5 * 5 and set(claims.dataset) == {'MIMIC', 'MOSEI', 'MOSI', 'UR-FUNNY', 'MUStARD'}
    assert (claims.verdict == 'inconclusive').all() and claims.p.isna().all()   # tiny: one seed, no test

    # 3. no data again: the fixture run's files stay byte for byte, the report says the last run was skipped
    before = {ext: (out/f'multibench.{ext}').read_bytes() for ext in ('csv', 'json', 'png', 'claims.csv')}
    assert repro(out, empty) == 0
    for ext, content in before.items(): assert (out/f'multibench.{ext}').read_bytes() == content, ext
    report = (out/'REPORT.md').read_text()
    assert '| multibench | tiny (last run skipped) |' in report and 'The last run' in report and '### Table 2' in report
    # the skip names the data folder as seen from the output folder (results carry no absolute paths)
    assert f'`{os.path.relpath(empty, out)}`' in load_skipped(out)['multibench']['report']

def test_bad_parameters(tmp_path):
    "A data folder that does not exist, or an unknown dataset, fails with a message naming it."
    import papermill as pm
    nb = ROOT/'nbs'/'experiments'/'multibench.ipynb'
    run = lambda **p: pm.execute_notebook(str(nb), str(tmp_path/'x.ipynb'), parameters=dict(scale='tiny', out_dir=str(tmp_path), **p),
                                          kernel_name='python3', cwd=str(nb.parent), progress_bar=False)
    with pytest.raises(pm.PapermillExecutionError, match='data_dir must be an existing folder'): run(data_dir=str(tmp_path/'nope'))
    with pytest.raises(pm.PapermillExecutionError, match='datasets must be'): run(datasets=['mosi', 'imdb'])
