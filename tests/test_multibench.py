"""MultiBench loaders on fixture files written in the published format: cleaning, labels, splits, errors."""
import io, os, pickle, pickletools, random, re, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from factorcl_nb.data.multibench import (AFFECT_DIMS, MULTIBENCH_FILES, SPLITS, load_multibench, mimic_split,
                                         write_multibench_fixture)

AFFECT = ('mosi', 'mosei', 'mustard', 'urfunny')


def read(file):
    with open(file, 'rb') as f: return pickle.load(f)


def reference_affect(split, modalities, z_norm=False, zero_is_positive=False, out_len=None):
    "MultiBench's per-sample procedure, one sample at a time (right padding)."
    T = split['text'].shape[1]; out_len = out_len or T
    xs, ys, lengths = ([], []), [], []
    for i in range(len(split['text'])):
        text = torch.as_tensor(split['text'][i])
        if text.sum() == 0: continue                               # no words
        start = int(text.nonzero()[0][0])                          # first word
        keep = min(T - start, out_len)
        for j, m in enumerate(modalities):
            x = torch.as_tensor(split[m][i], dtype=torch.float32)[start:].clone()
            if m == 'audio': x[x == -float('inf')] = 0
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            if z_norm:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore'); std = x.std(0, keepdim=True)
                x = torch.nan_to_num((x - x.mean(0, keepdim=True)) / std, nan=0.0, posinf=0.0, neginf=0.0)
            xs[j].append(torch.cat([x[:keep], torch.zeros(out_len - keep, x.shape[1])]))
        score = float(np.asarray(split['labels'][i]).reshape(-1)[0])
        ys.append(int(score >= 0 if zero_is_positive else score > 0)); lengths.append(keep)
    return torch.stack(xs[0]), torch.stack(xs[1]), torch.tensor(ys), torch.tensor(lengths)


@pytest.mark.parametrize('name', AFFECT)
@pytest.mark.parametrize('options', [dict(), dict(z_norm=True, modalities=('audio', 'text'), max_seq_len=17)])
def test_affect_matches_per_sample_reference(tmp_path, name, options):
    file = write_multibench_fixture(name, tmp_path, n=9, seed=1)
    assert file.name == MULTIBENCH_FILES[name]
    raw, data = read(file), load_multibench(name, tmp_path, **options)
    modalities = options.get('modalities', ('vision', 'text'))
    for s in SPLITS:
        x1, x2, y, lengths = reference_affect(raw[s], modalities, options.get('z_norm', False), out_len=options.get('max_seq_len'))
        torch.testing.assert_close(data[s]['x1'], x1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(data[s]['x2'], x2, atol=1e-5, rtol=1e-5)
        assert torch.equal(data[s]['y'], y) and torch.equal(data[s]['mask'].sum(1), lengths)
        assert data[s]['x1'].dtype == torch.float32 and data[s]['y'].dtype == torch.int64
        assert data[s]['x1'].shape[2] == AFFECT_DIMS[name][modalities[0]]
        assert data['info']['dropped'][s] == 1                     # the text-less sample of each split
    assert data['info']['sizes'] == {'train': 8, 'valid': 3, 'test': 4}
    assert data['info']['x1'] == modalities[0] and data['info']['n_classes'] == 2


def test_affect_padding_layouts_and_mask(tmp_path):
    file = write_multibench_fixture('mosei', tmp_path, n=10, seed=2)
    right, left = load_multibench('mosei', file), load_multibench('mosei', file, padding='left')
    for s in SPLITS:
        mask_r, mask_l = right[s]['mask'], left[s]['mask']
        lengths = mask_r.sum(1)
        assert torch.equal(mask_r, torch.arange(50)[None] < lengths[:, None])          # real steps first
        assert torch.equal(mask_l, torch.arange(50)[None] >= 50 - lengths[:, None])    # real steps last
        for i, n in enumerate(lengths.tolist()):                                        # same content, shifted
            assert torch.equal(right[s]['x2'][i, :n], left[s]['x2'][i, 50 - n:])
        assert (right[s]['x1'][~mask_r] == 0).all() and (left[s]['x1'][~mask_l] == 0).all()
        assert torch.isfinite(right[s]['x1']).all()
    raw = read(file)['train']; kept = raw['text'].any((1, 2))
    stored = np.nan_to_num(raw['vision'][kept][0])                  # sample 0 uses all 50 steps: nothing to move
    assert np.array_equal(left['train']['x1'][0].numpy(), stored) and np.array_equal(right['train']['x1'][0].numpy(), stored)


def test_sentiment_label_rules(tmp_path):
    file = write_multibench_fixture('mosi', tmp_path, n=16, seed=4)
    raw = read(file)
    gt, ge = load_multibench('mosi', file), load_multibench('mosi', file, zero_is_positive=True)
    reg = load_multibench('mosi', file, task='regression')
    for s in SPLITS:
        kept = raw[s]['text'].any((1, 2)); score = torch.from_numpy(raw[s]['labels'].reshape(-1)[kept])
        assert torch.equal(gt[s]['y'], (score > 0).long()) and torch.equal(ge[s]['y'], (score >= 0).long())
        assert (score == 0).any() and (gt[s]['y'] != ge[s]['y']).sum() == (score == 0).sum()
        assert torch.equal(reg[s]['y'], score.float())
    assert 'MultiBench' in gt['info']['label_rule'] and '>= 0' in ge['info']['label_rule']


@pytest.mark.parametrize('encoding', ['pm1', '01'])
@pytest.mark.parametrize('name', ['mustard', 'urfunny'])
def test_binary_label_encodings(tmp_path, name, encoding):
    file = write_multibench_fixture(name, tmp_path/f'{name}.pkl', binary_labels=encoding)
    raw, data = read(file), load_multibench(name, file)
    stored = np.unique(raw['train']['labels'])
    assert set(stored.tolist()) == ({-1.0, 1.0} if encoding == 'pm1' else {0.0, 1.0})
    for s in SPLITS:
        kept = raw[s]['text'].any((1, 2))
        assert data[s]['y'].tolist() == (raw[s]['labels'].reshape(-1)[kept] == 1).astype(int).tolist()


def test_mimic_split_cleaning_and_labels(tmp_path):
    file = write_multibench_fixture('mimic', tmp_path, n=57)
    raw = read(file)
    data, mort = load_multibench('mimic', tmp_path), load_multibench('mimic', file, task='mortality')
    assert data['info']['sizes'] == {'train': 46, 'valid': 5, 'test': 6}   # 57//10 = 5, 57//5 = 11
    # MultiBench's procedure on a list of tuples with the global random module
    rows = [(i, raw['y_icd9'][i, 7]) for i in range(57)]
    random.seed(10); random.shuffle(rows)
    order = {'valid': rows[:5], 'test': rows[5:11], 'train': rows[11:]}
    static = np.where(np.isfinite(raw['adm_features_all']), raw['adm_features_all'], 0)
    series = np.where(np.isfinite(raw['ep_tdata']), raw['ep_tdata'], 0)
    s_mean, s_std = static.mean(0), static.std(0); s_std[s_std == 0] = 1
    t_mean, t_std = series.mean((0, 1)), series.std((0, 1)); t_std[t_std == 0] = 1
    for s in SPLITS:
        idx = [i for i, _ in order[s]]
        assert data[s]['y'].tolist() == [int(v) for _, v in order[s]]
        np.testing.assert_allclose(data[s]['x1'].numpy(), ((static - s_mean) / s_std)[idx], atol=1e-5)
        np.testing.assert_allclose(data[s]['x2'].numpy(), ((series - t_mean) / t_std)[idx], atol=1e-5)
        assert data[s]['x1'].dtype == torch.float32 and data[s]['mask'].shape == (len(idx), 24) and data[s]['mask'].all()
        expected = []
        for i in idx:                                               # first positive mortality window, else 0
            label = 0
            for k in range(1, 6):
                if raw['adm_labels_all'][i, k] > 0: label = k; break
            expected.append(label)
        assert mort[s]['y'].tolist() == expected
    assert mort['info']['n_classes'] == 6 and data['info']['n_classes'] == 2
    assert set(torch.cat([mort[s]['y'] for s in SPLITS]).tolist()) >= {0, 1}
    assert all(torch.equal(load_multibench('mimic', file, task=3)[s]['y'], torch.from_numpy(raw['y_icd9'][mimic_split(57)[s], 3]).long()) for s in SPLITS)


def test_mimic_split_boundaries():
    for n in (10, 20, 32616):
        sp = mimic_split(n)
        assert (len(sp['valid']), len(sp['test']), len(sp['train'])) == (n // 10, n // 5 - n // 10, n - n // 5)
        assert np.array_equal(np.sort(np.concatenate(list(sp.values()))), np.arange(n))
    assert len(mimic_split(32616)['test']) == 3262


# ---- errors -------------------------------------------------------------------------------------------

def edited(tmp_path, name, change, fname=None):
    file = write_multibench_fixture(name, tmp_path/(fname or MULTIBENCH_FILES[name]))
    data = read(file); change(data)
    with open(file, 'wb') as f: pickle.dump(data, f)
    return file


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'sarcasm\.pkl.*MultiBench'): load_multibench('mustard', tmp_path)
    with pytest.raises(FileNotFoundError, match=r'im\.pk.*PhysioNet'): load_multibench('mimic', tmp_path/'nowhere')
    with pytest.raises(ValueError, match="name must be one of 'mosi'"): load_multibench('avmnist', tmp_path)


def _set(split, key, fn):
    def change(d): d[split][key] = fn(d[split][key])
    return change


@pytest.mark.parametrize('name, change, message', [
    ('mosi', lambda d: d.pop('test'), "missing split 'test'"),
    ('mosi', lambda d: d['valid'].pop('labels'), "split 'valid' has no key 'labels'"),
    ('mosei', _set('train', 'vision', lambda a: a[:, :, 0]), r"train\['vision'\] must have shape \(N, T, D\)"),
    ('mosei', _set('test', 'audio', lambda a: a[:-1]), r'must share \(N, T\)'),
    ('mosi', _set('train', 'labels', lambda a: a[:3]), r"train\['labels'\] must have one row per sample"),
    ('mosi', _set('valid', 'text', lambda a: np.array(['word'] * len(a))), r"valid\['text'\] is not a numeric array"),
    ('urfunny', _set('train', 'labels', lambda a: a * 3), r"train\['labels'\] of urfunny must be binary"),
    ('mimic', lambda d: d.pop('adm_features_all'), "missing key 'adm_features_all'"),
    ('mimic', lambda d: d.update(ep_tdata=d['ep_tdata'][:, :, 0]), "'ep_tdata' must have rank 3"),
    ('mimic', lambda d: d.update(y_icd9=d['y_icd9'][:-2]), 'every key must have N rows'),
    ('mimic', lambda d: d.update(adm_labels_all=d['adm_labels_all'][:, :3]), "'adm_labels_all' needs at least 6 columns"),
])
def test_malformed_files(tmp_path, name, change, message):
    file = edited(tmp_path, name, change)
    with pytest.raises(ValueError, match=message) as err: load_multibench(name, file)
    assert file.name in str(err.value)


def test_unreadable_and_wrong_type(tmp_path):
    (tmp_path/'humor.pkl').write_bytes(b'\x80\x04garbage')
    with pytest.raises(ValueError, match=r'humor\.pkl is not a readable MultiBench pickle'): load_multibench('urfunny', tmp_path)
    with open(tmp_path/'im.pk', 'wb') as f: pickle.dump([1, 2, 3], f)
    with pytest.raises(ValueError, match=r'im\.pk: expected a dict'): load_multibench('mimic', tmp_path)
    file = edited(tmp_path, 'mimic', lambda d: d.update(y_icd9=d['y_icd9'] * 0.5), 'im2.pk')
    with pytest.raises(ValueError, match=r"'y_icd9'\[:, 7\] must be binary"): load_multibench('mimic', file)


def test_bad_arguments(tmp_path):
    mosi = write_multibench_fixture('mosi', tmp_path)
    mustard = write_multibench_fixture('mustard', tmp_path)
    mimic = write_multibench_fixture('mimic', tmp_path)
    cases = [(('mosi', mosi), dict(task='mortality'), "'classification' or 'regression'"),
             (('mustard', mustard), dict(task='regression'), "use it with 'mosi' or 'mosei'"),
             (('mustard', mustard), dict(zero_is_positive=True), 'labels are binary'),
             (('mosi', mosi), dict(modalities=('vision',)), 'two different names'),
             (('mosi', mosi), dict(modalities=('vision', 'video')), 'two different names'),
             (('mosi', mosi), dict(padding='middle'), "padding must be 'right' or 'left'"),
             (('mosi', mosi), dict(max_seq_len=-3), 'max_seq_len must be None or a positive int'),
             (('mimic', mimic), dict(task=25), r'ICD-9 group index 0\.\.19'),
             (('mimic', mimic), dict(task='death'), "'mortality'"),
             (('mimic', mimic), dict(padding='left'), 'affect datasets only'),
             (('mimic', mimic), dict(max_seq_len=10), 'affect datasets only')]
    for (name, file), kw, message in cases:
        with pytest.raises(ValueError, match=message): load_multibench(name, file, **kw)
    with pytest.raises(ValueError, match='n must be at least 10'): write_multibench_fixture('mimic', tmp_path/'x.pk', n=5)
    with pytest.raises(ValueError, match="binary_labels must be 'pm1' or '01'"):
        write_multibench_fixture('mustard', tmp_path/'y.pkl', binary_labels='yes')


def test_feature_width_mismatch_warns(tmp_path):
    file = edited(tmp_path, 'mosi', lambda d: [d[s].update(vision=d[s]['vision'][:, :, :7]) for s in SPLITS])
    with pytest.warns(UserWarning, match=r"have \(7, 5, 300\) features; the published mosi file has \(20, 5, 300\)") as record:
        data = load_multibench('mosi', file)
    assert len(record) == 1 and data['train']['x1'].shape[2] == 7
    file = edited(tmp_path, 'mosi', lambda d: d['test'].update(vision=d['test']['vision'][:, :, :7]), 'mosi2.pkl')
    with pytest.raises(ValueError, match='the splits disagree on the'): load_multibench('mosi', file)


# ---------------------------------------------------------------- reading a pickle runs nothing from it

class _RunsAShellCommand:
    "Unpickling this calls os.system: what a crafted MultiBench file can do."
    def __init__(self, command): self.command = command
    def __reduce__(self):
        import os
        return (os.system, (self.command,))


@pytest.mark.parametrize('name', ['mosi', 'mimic'])
def test_a_crafted_pickle_runs_nothing(tmp_path, name):
    marker = tmp_path / 'the_file_ran'
    file = tmp_path / MULTIBENCH_FILES[name]
    with open(file, 'wb') as f: pickle.dump({'train': _RunsAShellCommand(f'touch {marker}')}, f)
    with pytest.raises(ValueError, match=r'was not loaded: it refers to \w+\.system.*if you trust this file, pass trust_pickle=True') as e:
        load_multibench(name, tmp_path)
    assert str(file) in str(e.value)
    assert not marker.exists()
    # the same file read with trust_pickle=True does run: the flag is what the safe default protects against
    with pytest.raises(ValueError): load_multibench(name, tmp_path, trust_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_published_format_loads_through_the_safe_unpickler_at_any_protocol(tmp_path, protocol):
    for name in ('mosi', 'mimic'):
        fixture = write_multibench_fixture(name, tmp_path / 'fixture')
        file = tmp_path / f'p{protocol}' / MULTIBENCH_FILES[name]; file.parent.mkdir(exist_ok=True)
        with open(file, 'wb') as f: pickle.dump(read(fixture), f, protocol=protocol)
        safe, trusted = load_multibench(name, file), load_multibench(name, file, trust_pickle=True)
        for split in SPLITS:
            for k in ('x1', 'x2', 'y', 'mask'): assert torch.equal(safe[split][k], trusted[split][k])


def test_a_split_whose_every_sample_is_dropped_names_file_and_split(tmp_path):
    file = edited(tmp_path, 'mosi', _set('valid', 'text', lambda a: np.zeros_like(a)))
    with pytest.raises(ValueError, match=r"mosi_data\.pkl: every one of the \d+ samples of split 'valid' has all-zero text"):
        load_multibench('mosi', file)


def test_a_modality_without_any_finite_value_warns(tmp_path):
    file = edited(tmp_path, 'mosi', _set('train', 'vision', lambda a: np.full_like(a, np.nan)))
    with pytest.warns(UserWarning, match=r"mosi_data\.pkl: train\['vision'\] has no finite value.*x1 \(vision\) carries no information"):
        data = load_multibench('mosi', file)
    assert (data['train']['x1'] == 0).all()
    file = edited(tmp_path, 'mimic', lambda d: d.update(adm_features_all=np.full_like(d['adm_features_all'], np.nan)))
    with pytest.warns(UserWarning, match=r"im\.pk: adm_features_all has no finite value.*x1 \(static\)"):
        load_multibench('mimic', file)


# ---------------------------------------------------------------- files that crash Python are refused first
# Each crafted file is written opcode by opcode and loaded in a child process, so a crash shows
# as a negative return code (the signal) instead of killing pytest.

def _str(s): b = s.encode(); return b'\x8c' + bytes([len(b)]) + b              # SHORT_BINUNICODE
def _global(module, name): return _str(module) + _str(name) + b'\x93'           # STACK_GLOBAL
def _int(v): return b'J' + v.to_bytes(4, 'little', signed=True)                 # BININT

def _dtype(code, names=b'N', fields=b'N', elsize=-1, flags=0):
    "numpy.dtype(code, False, True), then BUILD (3, '|', None, names, fields, elsize, 1, flags)."
    state = _int(3) + _str('|') + b'N' + names + fields + _int(elsize) + _int(1) + _int(flags)
    return _global('numpy', 'dtype') + _str(code) + b'\x89\x88\x87R(' + state + b'tb'

def _array(dtype, raw=b'A' * 8):
    "_reconstruct(ndarray, (0,), b'b'), then BUILD (1, (1,), dtype, False, raw)."
    return (_global('numpy._core.multiarray', '_reconstruct') + _global('numpy', 'ndarray') + _int(0)
            + b'\x85C\x01b\x87R(' + _int(1) + _int(1) + b'\x85' + dtype + b'\x89C' + bytes([len(raw)])
            + raw + b'tb')

def _affect(value):
    "{'train': {'vision': value}}: the affect loader casts train['vision'] to float32 first."
    return b'\x80\x04}' + _str('train') + b'}' + _str('vision') + value + b'ss.'

OBJECTS = _dtype('O8', flags=63)
HIDDEN = _dtype('V8', names=_str('f0') + b'\x85', fields=b'}' + _str('f0') + OBJECTS + _int(0) + b'\x86s',
                elsize=8, flags=0)                            # an object field, flags saying "no objects"
CRASHERS = {
    'hidden_object_field': (_affect(_array(HIDDEN)), r"dtype \[\('f0', 'O'\)\]|dtype object|kind 'V'"),
    'float64_flagged_as_objects': (_affect(_array(_dtype('f8', flags=63))), 'the flag that says it holds Python objects'),
    'deep_tuple_key': (b'\x80\x04}' + b')' + b'\x85' * 200_000 + b'K\x01s.', 'more than 100 levels deep'),
    # a dtype changed after an array uses it: an S8 array whose dtype then claims 2**30 bytes per item
    'dtype_changed_after_use': (b'\x80\x04' + _dtype('S8', elsize=8) + b'\x94' + b'0' + _affect(_array(b'h\x00'))[2:-1]
                                + b'h\x00(' + _int(3) + _str('|') + b'NNN' + _int(2**30) + _int(1) + _int(0) + b'tb0.',
                                'changes a dtype after it was made or used'),
}


def _load_in_child(file, name='mosi'):
    code = ('import sys; from factorcl_nb.data.multibench import load_multibench\n'
            'try: load_multibench(sys.argv[2], sys.argv[1])\n'
            'except ValueError as e: print(e); sys.exit(3)\n')
    return subprocess.run([sys.executable, '-c', code, str(file), name], capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})


@pytest.mark.parametrize('attack', sorted(CRASHERS))
def test_a_file_that_would_crash_python_is_refused_in_a_value_error(tmp_path, attack):
    payload, reason = CRASHERS[attack]
    file = tmp_path / MULTIBENCH_FILES['mosi']; file.write_bytes(payload)
    if attack == 'hidden_object_field': assert len(payload) < 300
    result = _load_in_child(file)
    assert result.returncode == 3, f'child ended with {result.returncode} (negative: killed by a signal)\n{result.stderr}'
    assert result.stdout.startswith(f'{file} was not loaded: ') and re.search(reason, result.stdout), result.stdout


def test_the_crafted_files_are_well_formed_pickles():
    "The attacks are real: the full unpickler builds them (nothing here touches their elements)."
    array = pickle.loads(CRASHERS['hidden_object_field'][0])['train']['vision']
    assert array.dtype.fields['f0'][0] == np.dtype('O') and array.dtype.hasobject is False  # hidden from the flags
    array = pickle.loads(CRASHERS['dtype_changed_after_use'][0])['train']['vision']
    assert array.shape == (1,) and array.dtype.itemsize == 2**30                            # over 8 bytes of data
    ops = [op.name for op, _, _ in pickletools.genops(CRASHERS['deep_tuple_key'][0])]
    assert ops.count('TUPLE1') == 200_000 and ops[-2:] == ['SETITEM', 'STOP']


def test_object_structured_and_void_arrays_are_refused_but_plain_ones_load(tmp_path):
    from factorcl_nb.data.multibench import _read_pickle
    for bad, found in [(np.array([1, 'a'], dtype=object), "kind 'O'"), (np.zeros(2, 'f4,f4'), "kind 'V'"),
                       (np.zeros(2, '(2,)f4'), None), (np.zeros(1, 'V4'), "kind 'V'"), (np.datetime64('2020'), "kind 'M'")]:
        file = tmp_path / 'x.pkl'; file.write_bytes(pickle.dumps({'x': bad}, protocol=4))
        if found is None: assert _read_pickle(file)['x'].dtype == np.float32; continue   # '(2,)f4' is a plain shape
        with pytest.raises(ValueError, match=f"x.pkl was not loaded: .*{found}"): _read_pickle(file)
    plain = {'f': np.ones((2, 3), np.float32).T, 'i': np.int64(4), 'u': np.array(['ab']), 'b': np.array([True]),
             's': np.array([b'x']), 'c': np.complex64(1j), 'set': {1, 2}}
    for protocol in (2, 3, 4, 5):
        file = tmp_path / f'p{protocol}.pkl'; file.write_bytes(pickle.dumps(plain, protocol=protocol))
        assert repr(_read_pickle(file)) == repr(plain)


def test_the_opcode_scan_bounds(tmp_path):
    from factorcl_nb.data.multibench import _read_pickle, _scan_pickle, _Refused
    nested = [1]
    for _ in range(99): nested = [nested]                     # 100 levels: allowed
    assert _scan_pickle(io.BytesIO(pickle.dumps(nested))) is None
    with pytest.raises(_Refused, match='more than 100 levels'): _scan_pickle(io.BytesIO(pickle.dumps([nested])))
    with pytest.raises(_Refused, match='more than 100 levels'): _scan_pickle(io.BytesIO(pickle.dumps({'k': [nested]})))
    with pytest.raises(_Refused, match='more than 1,000 opcodes'):
        _scan_pickle(io.BytesIO(pickle.dumps(list(range(2000)))), max_ops=1000)
    file = tmp_path / 'humor.pkl'; file.write_bytes(pickle.dumps({'a': [1]})[:-3])
    with pytest.raises(ValueError, match=r'humor\.pkl is not a readable MultiBench pickle'): _read_pickle(file)
