"""FactorCLEmbedder: scikit-learn's estimator checks, pipelines and cross-validation on mfeat, clone/params,
reproducibility, the list-of-views and single-matrix forms, errors."""
import math, pickle
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (check_global_output_transform_pandas, check_set_output_transform,
                                            check_set_output_transform_pandas, parametrize_with_checks)

from factorcl_nb.data.mfeat import read_mfeat
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.models import METHODS, make_model
from factorcl_nb.sklearn_api import FactorCLEmbedder, method_factors

@pytest.fixture(autouse=True)
def one_thread_per_worker():
    "These models are tiny: one torch thread each avoids oversubscribing the cores when pytest-xdist runs workers."
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

TINY = dict(epochs=1, batch_size=16, lr=1e-3, embed_dim=4, hidden_dim=8, n_hidden=1, critic_hidden=8, critic_layers=1,
            device='cpu')
SMALL = dict(TINY, epochs=3, batch_size=32, embed_dim=8, hidden_dim=16)

# ---------------------------------------------------------------- scikit-learn's checks

# `view_sizes=1`: column 1 is view 1, the other columns view 2, so the checks' matrices of any width split.
CHECKED = [FactorCLEmbedder('FactorCL-SSL', view_sizes=1, random_state=0, **TINY),
           FactorCLEmbedder('FactorCL-SUP', view_sizes=1, random_state=0, **TINY)]
# check_array_api_input does not apply (no Array API support is declared; scikit-learn runs it only with
# SCIPY_ARRAY_API=1 set before SciPy is imported and array-api-compat installed, else it skips itself).
_all = parametrize_with_checks(CHECKED)
CHECKS = [p for p in _all.args[1] if 'check_array_api_input' not in str(p)]

def test_every_yielded_check_is_run_but_array_api():
    names = [getattr(c, 'func', c).__name__ for _, c in _all.args[1]]
    assert len(CHECKS) == len(names) - names.count('check_array_api_input') and len(CHECKS) > 80

@pytest.mark.parametrize('estimator, check', CHECKS, ids=_all.kwargs['ids'])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

@pytest.mark.parametrize('check', [check_set_output_transform, check_set_output_transform_pandas,
                                   check_global_output_transform_pandas])
def test_sklearn_set_output_checks(check):
    check('FactorCLEmbedder', FactorCLEmbedder(view_sizes=1, random_state=0, **TINY))

# ---------------------------------------------------------------- data

def toy(n=120, seed=0):
    "Two views and a 3-class label that both views carry (view 2 noisily)."
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x1 = rng.normal(size=(n, 6)); x1[:, 0] += 2 * y
    x2 = rng.normal(size=(n, 4)); x2[:, 0] += 2 * y + rng.normal(size=n)
    return x1, x2, y

# ---------------------------------------------------------------- real data

def test_pipeline_cross_validation_on_mfeat_beats_chance():
    views, y = read_mfeat(('pix', 'fou'))
    X = np.hstack([views['pix'], views['fou']])
    embed = FactorCLEmbedder('FactorCL-SSL', view_sizes=(240, 76), epochs=2, batch_size=128, lr=1e-3, embed_dim=16,
                             hidden_dim=32, n_hidden=1, critic_hidden=32, critic_layers=1, random_state=0, device='cpu')
    scores = cross_val_score(make_pipeline(embed, StandardScaler(), LogisticRegression(max_iter=1000)), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.5, scores      # 10 balanced classes: chance is 0.1

# ---------------------------------------------------------------- the two input forms

def test_list_and_single_matrix_forms_agree():
    x1, x2, y = toy()
    z_list = FactorCLEmbedder(random_state=0, **SMALL).fit_transform([x1, x2])
    z_matrix = FactorCLEmbedder(view_sizes=(6, 4), random_state=0, **SMALL).fit_transform(np.hstack([x1, x2]))
    z_int = FactorCLEmbedder(view_sizes=6, random_state=0, **SMALL).fit_transform(np.hstack([x1, x2]))
    z_tensor = FactorCLEmbedder(random_state=0, **SMALL).fit_transform((torch.tensor(x1), torch.tensor(x2)))
    z_frame = FactorCLEmbedder(random_state=0, **SMALL).fit_transform([pd.DataFrame(x1), pd.DataFrame(x2)])
    assert z_list.shape == (120, 4 * 8) and z_list.dtype == np.float32
    np.testing.assert_array_equal(z_matrix, z_list)
    np.testing.assert_array_equal(z_int, z_list)
    np.testing.assert_array_equal(z_tensor, z_list)
    np.testing.assert_array_equal(z_frame, z_list)
    # lower precisions are accepted (bfloat16, which NumPy lacks, is read as float32)
    low = FactorCLEmbedder(random_state=0, **TINY).fit([torch.tensor(x1, dtype=torch.bfloat16), x2.astype(np.float32)])
    z_low = low.transform([x1.astype(np.float32), torch.tensor(x2, dtype=torch.float16)])
    assert z_low.shape == (120, 16) and z_low.dtype == np.float32 and np.isfinite(z_low).all()

def test_fitted_attributes_and_history():
    x1, x2, y = toy()
    emb = FactorCLEmbedder(random_state=3, **SMALL).fit([x1, x2])
    assert emb.view_sizes_ == (6, 4) and emb.n_features_in_ == 10 and emb.method_ == 'FactorCL-SSL'
    assert emb.factors_ == ('s1', 's2', 'u1', 'u2') and emb.seed_ == 3 and emb.device_ == torch.device('cpu')
    assert len(emb.history_) == SMALL['epochs'] * math.ceil(120 / SMALL['batch_size'])
    assert np.isfinite(emb.history_['loss']).all()
    # the fitted scalers standardize each view with the training statistics
    np.testing.assert_allclose(emb.scalers_[0].mean_, x1.mean(0)); np.testing.assert_allclose(emb.scalers_[1].scale_, x2.std(0))
    assert not hasattr(emb, 'classes_')

def test_transform_is_row_wise_and_chunk_independent():
    x1, x2, y = toy()
    emb = FactorCLEmbedder(random_state=0, **SMALL).fit([x1, x2])
    full = emb.transform([x1, x2])
    # bit for bit: a row's factors do not depend on its chunk (transform chunks by batch_size), its position
    # or the other rows (in float32 a chunk of one row differs from a chunk of many in the last bit)
    for chunk in (1, 7, 1000):
        emb.batch_size = chunk
        np.testing.assert_array_equal(emb.transform([x1, x2]), full)
    np.testing.assert_array_equal(emb.transform([x1[50:53], x2[50:53]]), full[50:53])
    np.testing.assert_array_equal(emb.transform([x1[50:51], x2[50:51]]), full[50:51])
    order = np.random.default_rng(0).permutation(120)
    emb.batch_size = 16
    np.testing.assert_array_equal(emb.transform([x1[order], x2[order]]), full[order])

def test_factor_selection_picks_columns_and_names():
    x1, x2, y = toy()
    full = FactorCLEmbedder(random_state=0, **SMALL).fit_transform([x1, x2])
    sub = FactorCLEmbedder(random_state=0, factors=['u2', 's1'], **SMALL)
    z = sub.fit_transform([x1, x2])
    np.testing.assert_array_equal(z, np.hstack([full[:, 24:32], full[:, 0:8]]))
    names = sub.get_feature_names_out()
    assert list(names[:2]) == ['u2_0', 'u2_1'] and names[-1] == 's1_7' and len(names) == 16
    frame = sub.set_output(transform='pandas').transform([x1, x2])
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)

def test_method_factors_match_every_model():
    for m in METHODS:
        encoders = [mlp_encoder(3, 4, 4, 0), mlp_encoder(2, 4, 4, 0)]
        model = make_model(m, encoders, 4, n_classes=2, proj_dim=4, head_hidden=4, critic_hidden=4)
        assert tuple(model.embed(torch.randn(5, 3), torch.randn(5, 2))) == method_factors(m), m

@pytest.mark.parametrize('method', METHODS)
def test_every_method_fits_and_transforms(method):
    x1, x2, y = toy(60)
    z = FactorCLEmbedder(method, random_state=0, **TINY).fit_transform([x1, x2], y)
    assert z.shape == (60, 4 * len(method_factors(method))) and np.isfinite(z).all()

# ---------------------------------------------------------------- labels

def test_supervised_methods_use_labels_ssl_ignores_them():
    x1, x2, y = toy()
    shuffled = np.random.default_rng(1).permutation(y)
    sup = lambda labels: FactorCLEmbedder('FactorCL-SUP', random_state=0, **SMALL).fit_transform([x1, x2], labels)
    assert not np.allclose(sup(y), sup(shuffled))                     # the labels change the supervised model
    np.testing.assert_array_equal(sup(y), sup(np.array(['a', 'b', 'c'])[y]))   # only their partition matters
    ssl = lambda labels: FactorCLEmbedder('FactorCL-SSL', random_state=0, **SMALL).fit_transform([x1, x2], labels)
    np.testing.assert_array_equal(ssl(y), ssl(shuffled))
    np.testing.assert_array_equal(ssl(y), FactorCLEmbedder(random_state=0, **SMALL).fit_transform([x1, x2]))

def test_short_names_take_supervision_from_mode_or_labels():
    x1, x2, y = toy()
    e = FactorCLEmbedder('FactorCL', random_state=0, **TINY)
    assert e.fit([x1, x2], y).method_ == 'FactorCL-SUP' and list(e.classes_) == [0, 1, 2]
    assert e.fit([x1, x2]).method_ == 'FactorCL-SSL' and not hasattr(e, 'classes_')
    assert e.set_params(mode='ssl').fit([x1, x2], y).method_ == 'FactorCL-SSL'
    assert FactorCLEmbedder('OurCL', mode='sup', **TINY).__sklearn_tags__().target_tags.required
    assert not FactorCLEmbedder('FactorCL-SSL', **TINY).__sklearn_tags__().target_tags.required

# ---------------------------------------------------------------- params, clone, pickle

def test_get_params_set_params_clone_round_trip():
    e = FactorCLEmbedder('SimCLR', factors=('z1',), view_sizes=(6, 4), random_state=5, **TINY)
    params = e.get_params()
    assert params['method'] == 'SimCLR' and params['factors'] == ('z1',) and params['view_sizes'] == (6, 4)
    assert FactorCLEmbedder(**params).get_params() == params
    x1, x2, y = toy()
    e.fit([x1, x2])
    twin = clone(e)
    assert twin.get_params() == params and not hasattr(twin, 'model_')
    with pytest.raises(NotFittedError): twin.transform([x1, x2])
    assert twin.set_params(epochs=2, factors=None).get_params()['epochs'] == 2 and e.epochs == 1
    pipe = make_pipeline(FactorCLEmbedder(view_sizes=6, **TINY), LogisticRegression())
    pipe.set_params(factorclembedder__embed_dim=3)
    assert clone(pipe).get_params()['factorclembedder__embed_dim'] == 3

def test_grid_search_varies_constructor_arguments():
    x1, x2, y = toy()
    pipe = make_pipeline(FactorCLEmbedder(view_sizes=(6, 4), random_state=0, **TINY), LogisticRegression())
    grid = GridSearchCV(pipe, {'factorclembedder__factors': [('s1', 's2'), ('u1', 'u2')]}, cv=2).fit(np.hstack([x1, x2]), y)
    assert grid.best_params_['factorclembedder__factors'] in [('s1', 's2'), ('u1', 'u2')]
    assert grid.best_estimator_[0].transform(np.hstack([x1, x2])).shape == (120, 8)

def test_pickle_round_trip():
    x1, x2, y = toy()
    emb = FactorCLEmbedder(random_state=0, **SMALL).fit([x1, x2])
    back = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(back.transform([x1, x2]), emb.transform([x1, x2]))

# ---------------------------------------------------------------- randomness

def test_random_state_reproducible_and_seed_dependent():
    x1, x2, y = toy()
    fit = lambda rs: FactorCLEmbedder(random_state=rs, **SMALL).fit([x1, x2])
    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a.transform([x1, x2]), b.transform([x1, x2]))
    pd.testing.assert_frame_equal(a.history_.drop(columns='time'), b.history_.drop(columns='time'))
    assert not np.allclose(a.transform([x1, x2]), c.transform([x1, x2]))
    np.random.seed(0)
    d, e = fit(None), fit(None)                        # None draws a fresh seed from NumPy's global generator
    assert d.seed_ != e.seed_ and not np.allclose(d.transform([x1, x2]), e.transform([x1, x2]))
    rs = np.random.RandomState(4)
    assert fit(rs).seed_ == np.random.RandomState(4).randint(np.iinfo(np.int32).max)

def test_fit_leaves_global_random_state_alone():
    x1, x2, y = toy()
    np.random.seed(11); torch.manual_seed(11)
    FactorCLEmbedder(random_state=0, **TINY).fit([x1, x2])
    np.testing.assert_array_equal(np.random.rand(3), np.random.RandomState(11).rand(3))
    after = torch.rand(3); torch.manual_seed(11)
    assert torch.equal(after, torch.rand(3))

# ---------------------------------------------------------------- errors

def test_not_fitted():
    x1, x2, y = toy()
    e = FactorCLEmbedder(**TINY)
    with pytest.raises(NotFittedError): e.transform([x1, x2])
    with pytest.raises(NotFittedError): e.get_feature_names_out()

def test_constructor_never_validates():
    e = FactorCLEmbedder(method='nope', mode='semi', epochs=-1, factors=42, view_sizes='half', random_state='x')
    assert e.get_params()['method'] == 'nope' and e.get_params()['view_sizes'] == 'half'

@pytest.mark.parametrize('make, data, match', [
    (dict(), lambda x1, x2, y: ([x1],), r'list of two views \[X1, X2\].*got 1 view\(s\)'),
    (dict(), lambda x1, x2, y: ([x1, x2, x2],), r'got 3 view\(s\)'),
    (dict(), lambda x1, x2, y: ([x1, x2[:100]],), 'same number of rows.*Xs\\[0\\] with 120 and Xs\\[1\\] with 100'),
    (dict(), lambda x1, x2, y: (np.hstack([x1, x2]),), r'single matrix: pass view_sizes=\(d1, d2\)'),
    (dict(view_sizes=(6, 5)), lambda x1, x2, y: (np.hstack([x1, x2]),), r'view_sizes=\(6, 5\) must sum to the number of columns of X: 11 != 10'),
    (dict(view_sizes=10), lambda x1, x2, y: (np.hstack([x1, x2]),), 'must leave at least one column to each view'),
    (dict(view_sizes=(3, 3, 4)), lambda x1, x2, y: (np.hstack([x1, x2]),), r'view_sizes must be a pair \(d1, d2\)'),
    (dict(view_sizes=(5, 5)), lambda x1, x2, y: ([x1, x2],), r'disagrees with the widths \(6, 4\)'),
    (dict(factors=('s1', 'q')), lambda x1, x2, y: ([x1, x2],), r"unknown factor name\(s\) \['q'\] for method 'FactorCL-SSL'"),
    (dict(method='SupCon', factors=('u1',)), lambda x1, x2, y: ([x1, x2], y), r"which produces \['z1', 'z2'\]"),
    (dict(method='Factorcl-SSL'), lambda x1, x2, y: ([x1, x2],), 'method must be one of'),
    (dict(method='SimCLR', mode='sup'), lambda x1, x2, y: ([x1, x2],), "mode='sup' contradicts method='SimCLR'"),
    (dict(method='FactorCL-SUP'), lambda x1, x2, y: ([x1, x2],), 'requires y to be passed'),
    (dict(method='FactorCL-SUP'), lambda x1, x2, y: ([x1, x2], y[:50]), 'one label per sample: X has 120 rows, y has 50'),
    (dict(method='FactorCL-SUP'), lambda x1, x2, y: ([x1, x2], np.zeros(120)), 'at least 2 classes'),
    (dict(method='SupCon'), lambda x1, x2, y: ([x1, x2], np.linspace(0, 1, 120)), 'Unknown label type'),
    (dict(epochs=0), lambda x1, x2, y: ([x1, x2],), 'epochs must be an int >= 1'),
    (dict(random_state=-2), lambda x1, x2, y: ([x1, x2],), 'random_state must be None, an int >= 0'),
    (dict(device='tpu'), lambda x1, x2, y: ([x1, x2],), 'device must be'),
    (dict(), lambda x1, x2, y: ([x1[:1], x2[:1]],), r'Xs\[0\]: Found array with 1 sample\(s\)'),
    (dict(), lambda x1, x2, y: ([x1, np.where(x2 > 1, np.nan, x2)],), r'Input Xs\[1\] contains NaN'),
])
def test_fit_errors(make, data, match):
    with pytest.raises(ValueError, match=match):
        FactorCLEmbedder(**{**TINY, **make}).fit(*data(*toy()))

def test_transform_errors():
    x1, x2, y = toy()
    emb = FactorCLEmbedder(random_state=0, **TINY).fit([x1, x2])
    with pytest.raises(ValueError, match=r'views of widths \(5, 4\), but FactorCLEmbedder was fitted on \(6, 4\)'):
        emb.transform([x1[:, :5], x2])
    with pytest.raises(ValueError, match='X has 9 features, but FactorCLEmbedder is expecting 10'):
        emb.transform(np.hstack([x1, x2])[:, :9])
    with pytest.raises(ValueError, match='got 1 view'):
        emb.transform([x1])
    # a fitted list-form embedder also takes the single matrix (same total width), split as in fit
    np.testing.assert_array_equal(emb.transform(np.hstack([x1, x2])), emb.transform([x1, x2]))

# ---------------------------------------------------------------- defaults that fit a CPU, dtypes, a last batch of one

def test_defaults_are_cpu_friendly_and_concat_is_one_argument_away():
    e = FactorCLEmbedder()
    assert e.critic == 'separable' and e.batch_size == 256 and e.progress == 'auto'
    assert "critic='concat'" in FactorCLEmbedder.__doc__
    x1, x2, y = toy()
    model = FactorCLEmbedder(random_state=0, **{**TINY, 'critic': 'concat'}).fit([x1, x2]).model_
    assert type(model.shared_nce.critic).__name__ == 'ConcatCritic'
    model = FactorCLEmbedder(random_state=0, **TINY).fit([x1, x2]).model_
    assert type(model.shared_nce.critic).__name__ == 'SeparableCritic'


def test_progress_bar_auto_shows_on_long_fits_only(capsys):
    x1, x2, y = toy(40)
    FactorCLEmbedder(random_state=0, **TINY).fit([x1, x2])                        # 3 steps: no bar
    assert 'fit' not in capsys.readouterr().err
    FactorCLEmbedder(random_state=0, **{**TINY, 'epochs': 34}).fit([x1, x2])      # 102 steps: a bar
    assert '102/102' in capsys.readouterr().err
    with pytest.raises(ValueError, match="progress must be True, False or 'auto', got 'yes'"):
        FactorCLEmbedder(progress='yes', **TINY).fit([x1, x2])


@pytest.mark.parametrize('dtype', [np.float16, np.int64, np.int32])
def test_features_of_other_dtypes_are_accepted(dtype):
    x1, x2, y = toy()
    z = FactorCLEmbedder(random_state=0, **TINY).fit_transform([(x1 * 10).astype(dtype), (x2 * 10).astype(dtype)])
    assert z.dtype == np.float32 and np.isfinite(z).all()


@pytest.mark.parametrize('dtype', [np.int32, np.uint8, np.bool_])
def test_labels_of_small_integer_or_bool_dtype(dtype):
    x1, x2, y = toy()
    labels = (y > 0) if dtype is np.bool_ else y
    z = FactorCLEmbedder('FactorCL-SUP', random_state=0, **TINY).fit_transform([x1, x2], labels.astype(dtype))
    ref = FactorCLEmbedder('FactorCL-SUP', random_state=0, **TINY).fit_transform([x1, x2], labels.astype(np.int64))
    np.testing.assert_array_equal(z, ref)


def test_a_last_batch_of_one_sample_is_dropped_with_a_warning():
    x1, x2, y = toy(257)                                                          # 257 = 16 * 16 + 1
    with pytest.warns(UserWarning, match=r'would hold a single sample \(257 samples, batch_size=16\)'):
        emb = FactorCLEmbedder(random_state=0, **TINY).fit([x1, x2])
    assert len(emb.history_) == 16 and emb.transform([x1, x2]).shape == (257, 16)
