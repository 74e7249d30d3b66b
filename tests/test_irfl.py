"IRFL: the loader on a fixture in the published format, CLIP encoders inside FactorCL, and the Table 3 path end to end."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
import torch

from factorcl_nb.data import load_irfl, write_irfl_fixture
from factorcl_nb.data.irfl import IRFL_FILES, IRFL_TASKS, read_irfl, irfl_manifest
from factorcl_nb.clip import WordTokenizer, tokenize, tiny_clip, clip_encoders, irfl_augment, load_clip
from factorcl_nb.models import make_model
from factorcl_nb.train import fit

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def fixture_dir(tmp_path_factory):
    return write_irfl_fixture(tmp_path_factory.mktemp('irfl')/'irfl', n_per_task=10, seed=0)

def test_pairs_are_answers_with_their_own_images(fixture_dir):
    data = load_irfl(fixture_dir, image_size=16, seed=0)
    for part in ('train', 'test'):
        d = data[part]
        test_n = len(d['y'])
        assert d['images'].shape == (test_n, 3, 16, 16) and d['images'].dtype == torch.float32
        # the fixture's distractors are uniform grey (128); every loaded image is an answer: a task colour with noise
        assert (d['images'].std(dim=(1, 2, 3)) > 0.05).all()
        colour = d['images'].mean(dim=(2, 3)).argmax(1)             # red idiom, green simile, blue metaphor
        assert torch.equal(colour, d['y'])                           # also for answers whose URLs share 'maxresdefault.jpg'
        assert list(d['pairs'].label) == d['y'].tolist() and list(d['pairs'].phrase) == d['captions']
        assert set(d['pairs'].task.map(IRFL_TASKS)) == set(d['y'].tolist()) == {0, 1, 2}
    assert data['info']['n_pairs'] == 30 and data['info']['dropped'] == 0
    pairs = read_irfl(fixture_dir)
    assert (~pairs.image.str.startswith('https://')).sum() == 1        # the base64 idiom answer is among the pairs
    assert pairs.image.str.endswith('maxresdefault.jpg').sum() == 3    # one per task, three different files
    man = irfl_manifest(fixture_dir)
    assert len(man) == 29 and man.file.is_unique and all((fixture_dir/'images'/f).is_file() for f in man.file)

def test_split_is_phrase_disjoint_stratified_and_seeded(fixture_dir):
    splits = [load_irfl(fixture_dir, image_size=8, seed=s) for s in (0, 0, 1)]
    for d in splits: assert not set(d['train']['captions']) & set(d['test']['captions'])
    assert splits[0]['test']['captions'] == splits[1]['test']['captions']
    assert torch.equal(splits[0]['test']['images'], splits[1]['test']['images'])
    assert splits[0]['test']['captions'] != splits[2]['test']['captions']
    pairs = read_irfl(fixture_dir)
    test = splits[0]['test']['pairs']
    for task, phrases in pairs.groupby('task').phrase:                 # 20% of each task's distinct phrases
        assert test[test.task == task].phrase.nunique() == round(0.2 * phrases.nunique())

def test_bad_files_are_named(tmp_path):
    d = write_irfl_fixture(tmp_path/'irfl', n_per_task=3)
    (d/'images'/irfl_manifest(d, tasks=('metaphor',)).file[1]).unlink()
    with pytest.raises(FileNotFoundError, match=r"metaphor_understanding_task.csv: row 3 needs image 'https://.*expected as the local file"):
        load_irfl(d, image_size=8)
    with pytest.warns(UserWarning, match='1 of 9 answer images are missing'):
        assert load_irfl(d, image_size=8, missing_images='drop')['info']['dropped'] == 1
    f = d/IRFL_FILES['idiom']; df = pd.read_csv(f); df.loc[1, 'answer'] = "['https://x.org/a.jpg'"; df.to_csv(f, index=False)
    with pytest.raises(ValueError, match=r"idiom_understanding_task.csv: row 3, column 'answer' must hold"): read_irfl(d)
    f = d/IRFL_FILES['simile']; df = pd.read_csv(f).drop(columns=['answer']); df.to_csv(f, index=False)
    with pytest.raises(ValueError, match=r"simile_understanding_task.csv must have columns .* missing \['answer'\]"):
        read_irfl(d, tasks=("simile",))
    with pytest.raises(FileNotFoundError, match='path must be a folder'): read_irfl(tmp_path/'nowhere')
    with pytest.raises(ValueError, match='image_size must be an int >= 8'): load_irfl(d, image_size=4)

def test_tasks_may_be_one_name(fixture_dir):
    data = load_irfl(fixture_dir, image_size=8, tasks='idiom')
    assert data['info']['tasks'] == ['idiom'] and set(data['train']['pairs'].task) == {'idiom'}
    assert set(read_irfl(fixture_dir, tasks='simile').task) == {'simile'}
    with pytest.raises(ValueError, match=r"tasks must be a task name or a non-empty sequence .* got 'idioms'"):
        read_irfl(fixture_dir, tasks='idioms')
    with pytest.raises(ValueError, match=r"got \('idiom', 'idiom'\)"): read_irfl(fixture_dir, tasks=('idiom', 'idiom'))


@pytest.mark.parametrize('content, message', [
    ('', r"idiom_understanding_task.csv is empty \(no header, no rows\)"),
    ('phrase,distractors,answer\n', r"idiom_understanding_task.csv has a header but no rows, so task 'idiom' has no pairs"),
])
def test_an_empty_task_file_is_reported_not_dropped(tmp_path, content, message):
    d = write_irfl_fixture(tmp_path/'irfl', n_per_task=3)
    (d/IRFL_FILES['idiom']).write_text(content)
    with pytest.raises(ValueError, match=message): load_irfl(d, image_size=8)
    assert load_irfl(d, image_size=8, tasks=('simile', 'metaphor'))['info']['tasks'] == ['simile', 'metaphor']


def test_clip_encoders_train_inside_factorcl(fixture_dir):
    data = load_irfl(fixture_dir, image_size=32, seed=0)['train']
    tok = WordTokenizer(data['captions'])
    base = tiny_clip(tok.vocab_size, image_size=32, embed_dim=16)
    ids = tokenize(tok, data['captions'])
    model = make_model('FactorCL-SSL', clip_encoders(base), 16, proj_dim=8, head_hidden=16, critic='separable',
                       critic_hidden=16, critic_layers=1, unique_augment=irfl_augment(True, seed=0))
    before = model.encoders[0].proj.weight.detach().clone()
    hist = fit(model, (data['images'], ids), epochs=1, batch_size=8, lr=1e-3, drop_last=True, progress=False)
    assert len(hist) > 0 and torch.isfinite(torch.tensor(hist['loss'].to_numpy())).all()
    assert not torch.equal(before, model.encoders[0].proj.weight)            # the CLIP tower is fine-tuned
    assert torch.equal(base.visual_projection.weight, clip_encoders(base)[0].proj.weight)   # the base model is untouched
    emb = model.embed(data['images'][:4], ids[:4])
    assert set(emb) == {'s1', 's2', 'u1', 'u2'} and emb['u1'].shape == (4, 8)

def test_missing_clip_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match='are not on this machine'):
        load_clip(str(tmp_path/'no-clip-here'))

def repro(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
               MPLBACKEND='Agg', **(env_extra or {}))
    env.pop('FACTORCL_DATA_DIR', None)
    return subprocess.run([sys.executable, '-m', 'factorcl_nb.repro', 'irfl', '--scale', 'tiny', '--device', 'cpu', *args],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)

def test_irfl_end_to_end_and_skip(fixture_dir, tmp_path, claims_check):
    data = tmp_path/'data'; shutil.copytree(fixture_dir, data/'irfl')
    (data/'irfl'/'images'/irfl_manifest(data/'irfl').file[0]).unlink()      # a dead URL: that pair is left out
    out = tmp_path/'out'
    r = repro('--data-dir', str(data), '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(out/'irfl.csv')
    assert set(table.method) == {'CLIP (frozen)', 'FactorCL-SUP', 'FactorCL-SSL', 'FactorCL-IndAug', 'SimCLR'}
    assert table.accuracy.between(0, 1).all()
    meta = json.loads((out/'irfl.json').read_text())
    assert (out/'irfl.png').stat().st_size > 0 and not meta.get('skipped')
    report = (out/'REPORT.md').read_text()
    assert 'Table 3' in report and '(1 left out: image file missing)' in report and "authors' notebook" in report
    claims = claims_check(out/'irfl.claims.csv', meta['report'])   # the three comparisons: one Holm-corrected family
    assert list(claims.claim) == ['FactorCL-SSL > FactorCL-IndAug', 'FactorCL-SUP > SimCLR', 'FactorCL-SSL > SimCLR']
    claims_before = (out/'irfl.claims.csv').read_bytes()
    # no data: the run is recorded as skipped, says which files go where, and keeps the earlier result
    csv_before = (out/'irfl.csv').read_bytes()
    r = repro('--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out/'irfl.csv').read_bytes() == csv_before and (out/'irfl.claims.csv').read_bytes() == claims_before
    skip = json.loads((out/'irfl.skipped.json').read_text())
    assert 'simile_understanding_task.csv' in skip['report']
    # most images missing: also a skip, pointing at the manifest of file names
    for f in list((data/'irfl'/'images').iterdir())[:-3]: f.unlink()
    r = repro('--data-dir', str(data), '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out/'irfl.csv').read_bytes() == csv_before
    assert 'irfl_manifest' in json.loads((out/'irfl.skipped.json').read_text())['report']
