"""UCI Multiple Features loader: packaged archive, split, scaling, errors, equality with the source CSVs."""
import hashlib, importlib.util, inspect
from pathlib import Path
import numpy as np
import pytest
import torch
import factorcl_nb.data.mfeat as mfeat
from factorcl_nb.data.mfeat import MFEAT_FILE, MFEAT_VIEWS, load_mfeat, read_mfeat, stratified_split

REPO = Path(__file__).resolve().parents[1]
PUBLISHED_SUMS = REPO/'tools'/'mfeat.sha256'   # SHA-256 of the six published CSVs


def test_packaged_archive_shapes_and_labels():
    arrays, labels = read_mfeat()
    assert MFEAT_FILE.stat().st_size < 3 * 2**20, "the packaged archive should stay small"
    assert {v: a.shape for v, a in arrays.items()} == {v: (2000, d) for v, d in MFEAT_VIEWS.items()}
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in arrays.values())
    assert labels.dtype == np.int64 and labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [200] * 10


def test_load_mfeat_split_and_standardization():
    data = load_mfeat(('pix', 'fou'), test_size=0.25, seed=5)
    tr, te = data['train'], data['test']
    assert tr['x1'].shape == (1500, 240) and tr['x2'].shape == (1500, 76) and te['x1'].shape == (500, 240)
    assert tr['x1'].dtype == torch.float32 and tr['y'].dtype == torch.int64
    assert torch.bincount(te['y']).tolist() == [50] * 10 and torch.bincount(tr['y']).tolist() == [150] * 10
    rows = torch.cat([data['info']['train_rows'], data['info']['test_rows']])
    assert torch.equal(rows.sort().values, torch.arange(2000))
    torch.testing.assert_close(tr['x2'].mean(0), torch.zeros(76), atol=1e-4, rtol=0)
    torch.testing.assert_close(tr['x2'].std(0), torch.ones(76), atol=1e-4, rtol=0)
    # test rows are scaled with the training statistics, not their own
    arrays, labels = read_mfeat(('fou',))
    mean, std = data['info']['scaling']['fou']
    expected = (torch.from_numpy(arrays['fou'])[data['info']['test_rows']] - mean) / std
    torch.testing.assert_close(te['x2'], expected)
    assert torch.equal(te['y'], torch.from_numpy(labels)[data['info']['test_rows']])


def test_split_is_reproducible_and_seed_dependent():
    a, b, c = load_mfeat(seed=0), load_mfeat(seed=0), load_mfeat(seed=1)
    assert torch.equal(a['test']['x1'], b['test']['x1'])
    assert not torch.equal(a['info']['test_rows'], c['info']['test_rows'])
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, te = stratified_split(y, 0.1, seed=2)
    assert np.bincount(y[te.numpy()]).tolist() == [1, 2, 3] and len(tr) == 54


def test_views_and_arguments_are_validated():
    with pytest.raises(ValueError, match=r"unknown view name\(s\) \['pixel'\]; valid names are fou, fac, kar, pix, zer, mor"):
        load_mfeat(('pixel', 'fou'))
    with pytest.raises(ValueError, match='must not repeat'): load_mfeat(('fou', 'fou'))
    with pytest.raises(ValueError, match='non-empty'): load_mfeat(())
    with pytest.raises(ValueError, match='test_size'): load_mfeat(test_size=1.5)
    with pytest.raises(ValueError, match='seed must be an int'): load_mfeat(seed='0')
    with pytest.raises(FileNotFoundError, match='mfeat.npz'): read_mfeat(path=REPO/'no'/'mfeat.npz')


def test_package_reads_only_its_own_archive():
    "The loader reads the archive inside the package, nothing beside the clone."
    assert MFEAT_FILE.resolve().parent == Path(mfeat.__file__).resolve().parent
    assert 'csv' not in inspect.getsource(mfeat.read_mfeat).lower()


def _sums(path):
    return dict(reversed(line.split()) for line in path.read_text().splitlines() if line.strip())


def test_packaged_copy_was_built_from_the_published_csvs():
    "The archive records the digest of each CSV it was built from: they must be the published ones."
    with np.load(MFEAT_FILE) as packaged:
        recorded = dict(zip(packaged['source_files'].tolist(), packaged['source_sha256'].tolist()))
    assert recorded == _sums(PUBLISHED_SUMS)


def _write_published_layout(src, arrays, labels):
    "CSVs in the published format (features, then the class), written from the packaged arrays, and their SHA256SUMS."
    src.mkdir(); lines = []
    for view, d in MFEAT_VIEWS.items():
        header = ','.join([f'{view}{j}' for j in range(d)] + ['class'])
        rows = np.concatenate([arrays[view].astype(np.float64), labels[:, None].astype(np.float64)], 1)
        np.savetxt(src/f'mfeat-{view}.csv', rows, delimiter=',', header=header, comments='', fmt='%.9g')
        lines.append(f"{hashlib.sha256((src/f'mfeat-{view}.csv').read_bytes()).hexdigest()}  mfeat-{view}.csv")
    (src/'SHA256SUMS').write_text('\n'.join(lines) + '\n')


def test_build_script_is_deterministic_and_round_trips(tmp_path):
    spec = importlib.util.spec_from_file_location('build_mfeat', REPO/'tools'/'build_mfeat.py')
    build_mfeat = importlib.util.module_from_spec(spec); spec.loader.exec_module(build_mfeat)
    arrays, labels = read_mfeat()
    src = tmp_path/'src'; _write_published_layout(src, arrays, labels)
    first, second = build_mfeat.build(src, tmp_path/'a.npz'), build_mfeat.build(src, tmp_path/'b.npz')
    assert first.read_bytes() == second.read_bytes()
    with np.load(first) as rebuilt:
        for view in MFEAT_VIEWS: np.testing.assert_array_equal(rebuilt[view], arrays[view])
        np.testing.assert_array_equal(rebuilt['labels'], labels)
    # a source whose bytes differ from its recorded sum is refused
    (src/'mfeat-mor.csv').write_bytes((src/'mfeat-mor.csv').read_bytes().replace(b'\n1', b'\n2', 1))
    with pytest.raises(ValueError, match='mfeat-mor.csv: sha256'): build_mfeat.build(src, tmp_path/'c.npz')
