"""The tutorial "FactorCL in one notebook" runs top to bottom under papermill at a smaller scale, shows its figures,
and its results say what the text says: the bounds sit on the right sides, training raises the objective, and the
trained network's factors beat the untrained one's on the label. Its committed copy carries its outputs."""
import json, math, os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/'nbs'/'tutorial_factorcl.ipynb'
SMALL = dict(n_samples=3000, epochs=4, gauss_steps=300, seed=0)
RESULTS = """
import json
json.dump(dict(bounds=bounds.to_dict('records'), batch=batch, accuracy=accuracy.to_dict(),
               bits=bits.to_dict('records'), history=history.to_dict('records')), open({path!r}, 'w'))
"""


@pytest.fixture(scope='module')
def executed(tmp_path_factory):
    "The tutorial executed by papermill with SMALL parameters: (executed notebook, results dict)."
    import papermill as pm
    tmp = tmp_path_factory.mktemp('tutorial')
    nb = nbformat.read(NB, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(RESULTS.format(path=str(tmp/'results.json'))))
    src = tmp/'tutorial.ipynb'; nbformat.write(nb, src)
    env_path = os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    old = os.environ.get('PYTHONPATH'); os.environ['PYTHONPATH'] = env_path   # the kernel imports this checkout
    os.environ.pop('MPLBACKEND', None)
    try:
        pm.execute_notebook(str(src), str(tmp/'out.ipynb'), parameters=SMALL, kernel_name='python3',
                            cwd=str(NB.parent), progress_bar=False)
    finally:
        if old is None: os.environ.pop('PYTHONPATH', None)
        else: os.environ['PYTHONPATH'] = old
    return nbformat.read(tmp/'out.ipynb', as_version=4), json.loads((tmp/'results.json').read_text())


def images(nb):
    return [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]


def test_runs_and_shows_its_figures(executed):
    nb, _ = executed
    assert not [o for c in nb.cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert len(images(nb)) >= 3     # the bounds, the loss terms over training, bits per factor
    text = json.dumps([c.get('outputs', []) for c in nb.cells])
    assert 'steps in' in text and 'whole notebook' in text


def test_bounds_sit_on_their_sides(executed):
    _, r = executed
    log_n = math.log(r['batch'])
    for row in r['bounds']:
        assert row['infonce'] <= log_n + 1e-6, row                   # InfoNCE can never exceed log n
        assert row['infonce'] <= row['nce_club'], row                # same critic: lower <= upper (Jensen)
        assert row['infonce'] <= row['true_mi'] + 0.15, row          # a lower bound (mean of 20 fresh batches)
    big = [row for row in r['bounds'] if row['true_mi'] >= 4]
    assert all(row['infonce'] < row['true_mi'] - 0.5 for row in big), big   # saturates below the truth
    assert all(row['nce_club'] > row['true_mi'] for row in big), big         # and the upper bound stays above


def test_training_raises_the_objective_and_beats_the_untrained_network(executed):
    _, r = executed
    h = r['history']
    assert len(h) >= 4 and {'S', 'U', 'shared_nce', 'unique_club', 'critic_loss'} <= set(h[0])
    late = h[-max(2, len(h) // 4):]                                  # the last quarter of the logged steps
    gain = sum(r['S'] + r['U'] for r in late) / len(late) - (h[0]['S'] + h[0]['U'])
    assert gain > 0.2, (h[0], late)                                   # training raises S + U (nats)
    acc = r['accuracy']
    assert acc['trained']['all'] > acc['untrained']['all'], acc
    bits = {(b['network'], b['factor']): b for b in r['bits']}
    # each view's factors cannot know the other view's unique latents; the shared factors learn w_s
    for net in ('trained', 'untrained'):
        for f in ('s1', 'u1'): assert bits[net, f]['w2'] < 0.5, bits[net, f]
        for f in ('s2', 'u2'): assert bits[net, f]['w1'] < 0.5, bits[net, f]
    assert min(bits['trained', f]['w_s'] for f in ('s1', 's2')) > 2, bits


def test_committed_copy_carries_its_outputs():
    "The notebook in the repository is committed executed: a reader sees its tables and figures."
    nb = nbformat.read(NB, as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert all(c.get('outputs') for c in code if 'plt.show()' in c.source or c.source.rstrip().endswith('.round(2)'))
    assert len(images(nb)) >= 3
    assert not [o for c in code for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not [o for c in code for o in c.get('outputs', []) if o.get('name') == 'stderr'], "warnings were committed"
