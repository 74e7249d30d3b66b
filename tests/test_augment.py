"Tests of factorcl_nb.augment: reproducibility, shapes, statistics, naive references, errors."
from functools import partial
import pytest
import torch
from factorcl_nb.augment import (padding_mask, check_sequence, gaussian_noise, feature_drop, half_swap, mixup,
                                 time_permutation, time_drop, identity, RandomChoice, sequence_augment,
                                 feature_augment, fit_shared_features, unique_augment, latent_augment,
                                 SharedFeatures)


def gen(seed=0): return torch.Generator().manual_seed(seed)


def left_padded(n=64, T=12, D=3, seed=0):
    "Sequences left-padded with zero steps, as MultiBench stores them; real steps are never all zero."
    g = gen(seed)
    lengths = torch.randint(1, T + 1, (n,), generator=g)
    x = torch.randn(n, T, D, generator=g) + 3.
    x[torch.arange(T) < (T - lengths)[:, None]] = 0.
    return x, lengths


VECTOR_FNS = [partial(gaussian_noise, std=0.2), partial(feature_drop, rate=0.3), half_swap, mixup,
              feature_augment(), partial(unique_augment, shared_mask=torch.tensor([True, False] * 4)),
              partial(latent_augment, mixing=torch.rand(5, 8, generator=gen(9)), n_shared=2)]
SEQUENCE_FNS = [partial(gaussian_noise, std=0.2), time_permutation, partial(time_drop, rate=0.3),
                mixup, sequence_augment(), partial(time_permutation, keep_padding=False),
                partial(time_drop, rate=0.3, keep_padding=False)]


@pytest.mark.parametrize('fn', VECTOR_FNS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_vectors_reproducible_shape_dtype(fn, dtype):
    x = torch.randn(32, 8, dtype=dtype) + 2
    x0 = x.clone()
    a, b, c = fn(x, generator=gen(1)), fn(x, generator=gen(1)), fn(x, generator=gen(2))
    assert a.shape == x.shape and a.dtype == dtype and a.device == x.device
    assert torch.equal(a, b), "same generator seed must give the same view"
    assert not torch.equal(a, c), "a different seed should give a different view"
    assert torch.equal(x, x0), "the input must not be modified in place"


@pytest.mark.parametrize('fn', SEQUENCE_FNS)
def test_sequences_reproducible_shape_dtype(fn):
    x, _ = left_padded(n=32, T=10, D=4)
    x0 = x.clone()
    a, b, c = fn(x, generator=gen(1)), fn(x, generator=gen(1)), fn(x, generator=gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, x0)


def test_global_rng_without_generator():
    x = torch.randn(16, 6)
    torch.manual_seed(5); a = sequence_augment()(x[:, :, None])
    torch.manual_seed(5); b = sequence_augment()(x[:, :, None])
    assert torch.equal(a, b), "without a generator, torch.manual_seed must make views repeatable"


def test_low_precision_dtype_preserved():
    x = torch.randn(16, 5).to(torch.bfloat16)
    for fn in (gaussian_noise, mixup, feature_drop, half_swap):
        assert fn(x, generator=gen()).dtype == torch.bfloat16


def test_padding_mask():
    x, lengths = left_padded()
    pad = padding_mask(x)
    assert torch.equal((~pad).sum(1), lengths)
    assert pad.dtype == torch.bool and pad.shape == x.shape[:2]
    assert not padding_mask(torch.full((1, 2, 3), float('nan'))).any()   # NaN is not padding


def test_gaussian_noise_statistics_and_padding():
    x = torch.randn(200, 30, 10)
    x[:, :5] = 0.                                              # padding steps
    d = gaussian_noise(x, std=0.5, generator=gen()) - x
    assert torch.equal(d[:, :5], torch.zeros_like(d[:, :5]))   # padding kept at zero
    assert abs(d[:, 5:].std().item() - 0.5) < 0.01 and abs(d[:, 5:].mean().item()) < 0.01
    d_all = gaussian_noise(x, std=0.5, keep_padding=False, generator=gen()) - x
    assert d_all[:, :5].abs().sum() > 0
    assert torch.equal(gaussian_noise(x, std=0., generator=gen()), x)


def test_feature_drop_exact_count_and_uniform():
    x = torch.rand(5000, 10) + 1
    xa = feature_drop(x, rate=0.35, generator=gen())
    dropped = xa == 0
    assert torch.equal(dropped.sum(1), torch.full((5000,), 4))      # round(3.5) = 4 (halves up)
    assert torch.equal(xa[~dropped], x[~dropped])
    assert (dropped.float().mean(0) - 0.4).abs().max() < 0.03        # every feature equally likely
    # samples choose different subsets
    assert len({tuple(r.tolist()) for r in dropped[:200]}) > 100


def test_half_swap_reference_and_partner():
    x = torch.randn(50, 7)
    xa, prm = half_swap(x, generator=gen(), return_params=True)
    sw, partner = prm['swapped'], prm['partner']
    assert torch.equal(sw.sum(1), torch.full((50,), 3))
    assert not (partner == torch.arange(50)).any()
    ref = torch.stack([torch.where(sw[i], x[partner[i]], x[i]) for i in range(50)])
    assert torch.equal(xa, ref)


def test_mixup_convex_and_beta():
    x = torch.randn(20000, 4)
    xa, prm = mixup(x, alpha=2.0, generator=gen(), return_params=True)
    lam, partner = prm['weight'], prm['partner']
    assert ((lam >= 0) & (lam <= 1)).all() and not (partner == torch.arange(len(x))).any()
    ref = torch.stack([lam[i] * x[i] + (1 - lam[i]) * x[partner[i]] for i in range(100)])
    assert torch.allclose(xa[:100], ref, atol=1e-6)
    # Beta(2, 2): mean 1/2, variance 1 / (4 (2 a + 1)) = 1/20
    assert abs(lam.mean().item() - 0.5) < 0.01 and abs(lam.var().item() - 0.05) < 0.005
    seqs = torch.randn(6, 5, 3)
    sa, p2 = mixup(seqs, generator=gen(), return_params=True)
    w = p2['weight'][:, None, None]
    assert torch.allclose(sa, w * seqs + (1 - w) * seqs[p2['partner']], atol=1e-6)


def test_time_permutation_multiset_padding_uniform():
    x, _ = left_padded(n=100, T=9, D=2)
    xa = time_permutation(x, generator=gen())
    assert torch.equal(padding_mask(xa), padding_mask(x))
    for i in range(len(x)):                                     # naive per-sample reference: same multiset
        assert sorted(map(tuple, xa[i].tolist())) == sorted(map(tuple, x[i].tolist()))
    # positions are uniformly shuffled: the first real step moves everywhere with equal frequency
    y = torch.zeros(30000, 4, 1); y[:, :, 0] = torch.tensor([1., 2., 3., 4.])
    ya = time_permutation(y, generator=gen(1))
    assert ((ya[:, :, 0] == 1.).float().mean(0) - 0.25).abs().max() < 0.015


def test_time_drop_counts():
    x, lengths = left_padded(n=3000, T=25, D=3)
    xa = time_drop(x, rate=0.3, generator=gen())
    new = padding_mask(xa) & ~padding_mask(x)
    assert torch.equal(new.sum(1), torch.floor(0.3 * lengths + 0.5).long())
    assert torch.equal(xa[~new], x[~new])
    assert abs(new.sum().item() / lengths.sum().item() - 0.3) < 0.01
    xb = time_drop(x, rate=0.3, keep_padding=False, generator=gen())
    assert ((padding_mask(xb) & ~padding_mask(x)).sum(1) <= 8).all()   # round(0.3 * 25) of all T steps


def test_random_choice_per_sample_and_reference():
    fns = [lambda x, generator=None: -x, lambda x, generator=None: x * 3, identity]
    aug = RandomChoice(fns, p=[1, 1, 2])
    x = torch.randn(1000, 3)
    xa, prm = aug(x, generator=gen(), return_params=True)
    c = prm['choice']
    assert torch.equal(xa, torch.stack([fns[int(c[i])](x[i]) for i in range(len(x))]))
    counts = torch.bincount(c, minlength=3).float() / len(x)
    assert (counts - torch.tensor([.25, .25, .5])).abs().max() < 0.05
    assert RandomChoice(fns, p=[0, 0, 1])(x, generator=gen()).equal(x)
    assert 'identity: 0.5' in repr(aug)


def test_sequence_augment_choices_differ():
    x, lengths = left_padded(n=400, T=10, D=3)
    xa, prm = sequence_augment()(x, generator=gen(), return_params=True)
    c = prm['choice']
    assert set(c.tolist()) == {0, 1, 2, 3}
    assert torch.equal(xa[c == 3], x[c == 3])
    changed = (xa != x).flatten(1).any(1)
    assert changed[c == 1].all()                                  # noise changes every sample
    assert not changed[c == 3].any()


def test_fit_shared_features_and_unique_augment():
    g = gen(3)
    n = 1500
    s, a, u = torch.randn(n, 2, generator=g), torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g)
    x1 = torch.cat([a, s], 1)
    x2 = torch.cat([u, s @ torch.randn(2, 3, generator=g) + 0.05 * torch.randn(n, 3, generator=g)], 1)
    res = fit_shared_features(x1, x2, threshold=0.5)
    assert isinstance(res, SharedFeatures)
    assert torch.equal(res.mask, torch.tensor([False] * 4 + [True] * 3))
    xu = unique_augment(x2, res.mask, partial(feature_drop, rate=0.5), generator=gen(1))
    xi = feature_drop(x2, rate=0.5, generator=gen(1))
    assert torch.equal(xu[:, 4:], x2[:, 4:]) and torch.equal(xu[:, :4], xi[:, :4])
    assert not torch.equal(xi[:, 4:], x2[:, 4:])
    # a constant feature carries no information: score 0
    assert fit_shared_features(x1, torch.cat([x2, torch.ones(n, 1)], 1)).r2[-1] == 0
    # leave-one-out R^2 does not call pure noise predictable even with many regressors
    noise_fit = fit_shared_features(torch.randn(60, 40, generator=g), torch.randn(60, 3, generator=g))
    assert (noise_fit.r2 < 0.2).all() and not noise_fit.mask.any()


def test_latent_augment_keeps_shared_latents():
    g = gen(4)
    A = torch.rand(16, 100, generator=g, dtype=torch.float64)
    w = 0.5 ** 0.5 * torch.randn(300, 16, generator=g, dtype=torch.float64)
    x = w @ A
    pinv = torch.linalg.pinv(A)
    xu = latent_augment(x, A, 10, std=0.3, generator=gen())
    assert torch.allclose((xu @ pinv)[:, :10], w[:, :10], atol=1e-8)
    assert ((xu @ pinv)[:, 10:] - w[:, 10:]).abs().mean() > 0.1
    for v in (latent_augment(x, A, 10, std=0.3, unique=False, generator=gen()), gaussian_noise(x, std=0.3, generator=gen())):
        assert ((v @ pinv)[:, :10] - w[:, :10]).abs().mean() > 0.01
    # the perturbation lies in the span of the unique rows of A
    delta = xu - x
    coef = torch.linalg.lstsq(A[10:].T, delta.T).solution
    assert torch.allclose(coef.T @ A[10:], delta, atol=1e-8)


def test_latent_unique_augment_lets_the_shared_latents_alone_reach_the_infonce_ceiling():
    "Under the unique augmentation w_s identifies a view's augmentation among n by itself; under the independent one it does not."
    import math
    from factorcl_nb.estimators import infonce_bound
    g, n = gen(5), 200
    A = torch.rand(16, 100, generator=g, dtype=torch.float64)
    w = 0.5 ** 0.5 * torch.randn(n, 16, generator=g, dtype=torch.float64)
    pinv = torch.linalg.pinv(A)
    def nce(unique, cols):   # the best critic -|a - b|^2 / t of a family, on one group of recovered latents
        wa = latent_augment(w @ A, A, 10, std=0.5, unique=unique, generator=gen(1)) @ pinv
        d2 = torch.cdist(w[:, cols], wa[:, cols]) ** 2
        return max(infonce_bound(-d2 / t).item() for t in (2.0, 1.0, 0.5, 0.25, 0.1, 0.01))
    assert nce(True, slice(0, 10)) > math.log(n) - 0.01
    assert nce(True, slice(10, 16)) < math.log(n) - 2
    assert nce(False, slice(0, 10)) < math.log(n) - 1

@pytest.mark.parametrize('call, message', [
    (lambda: gaussian_noise(torch.randn(3, 2), std=-0.1), 'std must be a finite number >= 0'),
    (lambda: gaussian_noise(torch.ones(3, 2, dtype=torch.long)), 'floating-point'),
    (lambda: gaussian_noise([1., 2.]), 'torch.Tensor'),
    (lambda: feature_drop(torch.randn(3, 2), rate=1.0), 'rate must be a number in [0, 1)'),
    (lambda: feature_drop(torch.randn(3, 2, 2)), 'rank 2'),
    (lambda: half_swap(torch.randn(3)), 'rank 2'),
    (lambda: mixup(torch.randn(3, 2), alpha=-1), 'alpha must be a finite number > 0'),
    (lambda: mixup(torch.randn(3, 2), generator='seed'), 'generator must be a torch.Generator'),
    (lambda: time_permutation(torch.randn(3, 2)), '[n, T, D] (rank 3)'),
    (lambda: time_drop(torch.randn(3, 2, 2), rate=-0.5), 'rate must be a number in [0, 1)'),
    (lambda: check_sequence(torch.randn(3, 2, 2), dim=4), '4 features per time step'),
    (lambda: RandomChoice([1, 2]), 'non-empty list of callables'),
    (lambda: RandomChoice([identity], p=[float('nan')]), 'p must hold 1 non-negative'),
    (lambda: fit_shared_features(torch.randn(5, 2), torch.randn(4, 2)), 'batch sizes must match'),
    (lambda: fit_shared_features(torch.randn(2, 2), torch.randn(2, 2)), 'at least 3 samples'),
    (lambda: fit_shared_features(torch.randn(5, 2), torch.randn(5, 2), ridge=-1), 'ridge must be'),
    (lambda: unique_augment(torch.randn(5, 3), torch.ones(3)), 'shared_mask must be a bool tensor of shape [3]'),
    (lambda: latent_augment(torch.randn(5, 4), torch.rand(3, 5), 1), 'mixing must have 4 features'),
    (lambda: latent_augment(torch.randn(5, 4), torch.rand(3, 4), 3), 'n_shared must be an int in [0, 3)'),
    (lambda: sequence_augment(rate=2), 'rate must be a number in [0, 1)'),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as e: call()
    assert message in str(e.value), str(e.value)
