"""Procedural Trifeatures: shapes and dtypes, the split of combinations, the labels' meaning, the bijection and its
rates, determinism, other sizes, distinguishable features, the CNN encoder and the errors of bad arguments."""
import numpy as np
import pytest
import torch
from factorcl_nb.data.trifeatures import (PALETTE, SHAPES, TASKS, TEXTURES, TrifeaturesData, cnn_encoder,
                                          make_trifeatures, render, sample_pairs, split_combinations,
                                          texture_to_colour)


@pytest.fixture(scope='module')
def data():
    return make_trifeatures(600, 400, seed=7)

def as_set(a): return set(map(tuple, np.asarray(a).tolist()))


def test_shapes_dtypes_and_ranges(data):
    assert isinstance(data, TrifeaturesData) and len(data) == 1000
    for x in (data.x1, data.x2):
        assert x.shape == (1000, 3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.5
    assert set(data.labels) == set(TASKS) == {'redundancy', 'unique1', 'unique2', 'synergy'}
    for k, v in data.labels.items():
        assert v.dtype == torch.int64 and v.shape == (1000,), k
    assert set(data.labels['synergy'].unique().tolist()) == {0, 1}
    assert data.labels['redundancy'].unique().numel() == 10 and data.labels['unique1'].max() <= 9
    train, test = data.split()
    assert len(train) == 600 and len(test) == 400 and not train.is_test.any() and test.is_test.all()


def test_train_and_test_combinations_are_disjoint_and_images_use_their_split(data):
    tr, te = as_set(data.combos['train']), as_set(data.combos['test'])
    assert len(tr) == 800 and len(te) == 200 and not tr & te and len(tr | te) == 1000
    for part, split in zip(data.split(), ('train', 'test')):
        for i in (1, 2):
            f = part.features
            shown = as_set(torch.stack([f['shape'], f[f'colour{i}'], f[f'texture{i}']], 1))
            assert shown <= as_set(data.combos[split]), (split, i)


def test_labels_are_the_features_they_name(data):
    f, y = data.features, data.labels
    assert torch.equal(y['redundancy'], f['shape']) and torch.equal(y['unique1'], f['texture1'])
    assert torch.equal(y['unique2'], f['texture2'])
    assert torch.equal(y['synergy'], (f['colour2'] == data.bijection[f['texture1']]).long())
    # a shape pixel shows its image's colour, scaled by the texture's shade
    sub = data.subset(torch.arange(8))
    for x, c in ((sub.x1, sub.features['colour1']), (sub.x2, sub.features['colour2'])):
        for j in range(8):
            pix = x[j].flatten(1)[:, x[j].amax(0).flatten() > 0]
            assert pix.shape[1] > 0.05 * 32 * 32                     # the shape is there
            hue = torch.from_numpy(PALETTE[c[j]] / PALETTE[c[j]].max())[:, None]
            assert torch.allclose(pix / pix.amax(0, keepdim=True), hue.expand_as(pix), atol=1e-5)


def test_shape_is_recognisable_from_either_image():
    "Same shape feature, any colour and texture: the mask of image 1 and image 2 coincide without jitter."
    k = np.arange(10)
    a = render(k, k, k, size=48, jitter=False, rng=0).max(1) > 0
    b = render(k, (k + 3) % 10, (k + 7) % 10, size=48, jitter=False, rng=0).max(1) > 0
    assert np.array_equal(a, b)


def test_bijection_is_a_permutation_and_pairs_follow_it_at_the_stated_rates():
    for seed in (0, 1, 2):
        pi = texture_to_colour(seed)
        assert sorted(pi.tolist()) == list(range(10))
    assert not np.array_equal(texture_to_colour(0), texture_to_colour(1))
    for bias in (0.9, 0.75, 0.2):
        d = make_trifeatures(400, 200, seed=3, bias=bias)
        tr, te = d.split()
        assert d.bias == bias and torch.equal(d.bijection, torch.from_numpy(texture_to_colour(3)))
        assert int(tr.labels['synergy'].sum()) == round(400 * bias)
        assert int(te.labels['synergy'].sum()) == 100                   # balanced: chance 0.5
        follow = tr.features['colour2'] == d.bijection[tr.features['texture1']]
        assert torch.equal(follow.long(), tr.labels['synergy'])


def test_non_following_pairs_use_other_colours_uniformly():
    train_c, _ = split_combinations(seed=0)
    pi = texture_to_colour(0)
    f = sample_pairs(train_c, pi, 20000, 0.0, rng=0)
    assert not (f['colour2'] == pi[f['texture1']]).any()
    counts = np.bincount(f['colour2'], minlength=10)
    assert counts.min() > 0.8 * 2000 and counts.max() < 1.2 * 2000


def test_determinism_by_seed():
    a, b, c = make_trifeatures(50, 30, seed=11), make_trifeatures(50, 30, seed=11), make_trifeatures(50, 30, seed=12)
    assert torch.equal(a.x1, b.x1) and torch.equal(a.x2, b.x2)
    assert all(torch.equal(a.labels[k], b.labels[k]) for k in TASKS)
    assert not torch.equal(a.x1, c.x1) and not torch.equal(a.combos['test'], c.combos['test'])
    # the test pairs do not depend on the number of training pairs
    d = make_trifeatures(80, 30, seed=11)
    assert torch.equal(a.split()[1].x2, d.split()[1].x2)


def test_other_sizes():
    d = make_trifeatures(6, 4, size=64, seed=0)
    assert d.x1.shape == (10, 3, 64, 64) and d.x2.shape == (10, 3, 64, 64)
    big = render([1, 9], [2, 3], [4, 5], size=224, rng=0)
    assert big.shape == (2, 3, 224, 224) and 0.05 < (big.max(1) > 0).mean() < 0.8


def test_shapes_textures_and_colours_are_pairwise_distinguishable():
    k, off = np.arange(10), ~np.eye(10, dtype=bool)
    gap = lambda im: np.abs(im[:, None] - im[None]).mean((2, 3, 4))[off].min()
    assert gap(render(k, [8] * 10, [0] * 10, size=32, jitter=False, rng=0)) > 0.03     # shapes
    assert gap(render([1] * 10, [8] * 10, k, size=32, jitter=False, rng=0)) > 0.03     # textures
    assert np.linalg.norm(PALETTE[:, None] - PALETTE[None], axis=-1)[off].min() > 0.25
    assert len(SHAPES) == len(TEXTURES) == len(PALETTE) == 10


def test_jitter_makes_images_of_one_combination_differ():
    im = render([3] * 4, [2] * 4, [1] * 4, size=32, rng=0)
    assert all(not np.array_equal(im[0], im[j]) for j in (1, 2, 3))


def test_cnn_encoder_shapes_gradients_and_speed():
    import time
    torch.manual_seed(0)
    enc = cnn_encoder(out_dim=48, width=16)
    assert enc.out_dim == 48
    x = torch.rand(128, 3, 32, 32)
    enc(x).sum().backward()                                            # warm-up
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    assert cnn_encoder()(torch.rand(2, 3, 224, 224)).shape == (2, 64)
    assert cnn_encoder()(torch.rand(2, 3, 37, 50)).shape == (2, 64)
    enc = cnn_encoder()
    t0 = time.perf_counter(); enc(x).square().mean().backward()
    assert time.perf_counter() - t0 < 5.0                              # generous: shared CPUs


@pytest.mark.parametrize('call, message', [
    (lambda: make_trifeatures(0, 10), 'n_train must be an int >= 1, got 0'),
    (lambda: make_trifeatures(10, 2.5), 'n_test must be an int >= 1, got 2.5'),
    (lambda: make_trifeatures(10, 10, size=8), 'size must be an int >= 16, got 8'),
    (lambda: make_trifeatures(10, 10, bias=-0.1), 'bias must be a number in [0, 1], got -0.1'),
    (lambda: make_trifeatures(10, 10, seed=-1), 'seed must be an int >= 0, got -1'),
    (lambda: make_trifeatures(10, 10, test_fraction=0), 'test_fraction must be a number in (0, 1), got 0'),
    (lambda: render([0, 1], [0, 1], [0]), 'same length'),
    (lambda: render([11], [0], [0]), 'shape must be an int or a 1-d int array'),
    (lambda: render([0], [0], [[0]]), 'texture must be an int or a 1-d int array'),
    (lambda: sample_pairs(np.zeros((3, 2), int), np.arange(10), 5, 0.5), 'combos must be a non-empty [m, 3]'),
    (lambda: sample_pairs(np.zeros((3, 3), int), np.zeros(10, int), 5, 0.5), 'bijection must be a permutation'),
    (lambda: sample_pairs(np.zeros((3, 3), int), np.arange(10), 5, 2), 'follow_rate must be a number in [0, 1]'),
    (lambda: cnn_encoder(out_dim=0), 'out_dim must be an int >= 1, got 0'),
    (lambda: cnn_encoder(width=20), 'width must be a positive multiple of 8, got 20'),
    (lambda: cnn_encoder()(torch.rand(2, 3, 16, 16)), 'x must be [n, 3, H, W] with H, W >= 32'),
])
def test_bad_arguments_raise_naming_the_argument(call, message):
    with pytest.raises(ValueError) as e: call()
    assert message in str(e.value), str(e.value)


def test_views_and_unknown_task(data):
    x1, x2, y = data.views('unique1')
    assert x1 is data.x1 and torch.equal(y, data.features['texture1'])
    with pytest.raises(ValueError, match="task must be one of"): data.views('colour')
