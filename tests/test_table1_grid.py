"The pieces the Table 1 grid rests on: noisy synthetic views, the kernel read-out, near-identity augmentation, per-term heads."
import math
import numpy as np
import pytest
import torch
from factorcl_nb.augment import near_identity_augment, identity
from factorcl_nb.data import make_synthetic
from factorcl_nb.data.synthetic import view_information
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.evaluate import probe_mi, probe_mi_kernel
from factorcl_nb.models import FactorCL, FactorCLTermHeads, TERM_HEADS
from factorcl_nb.train import fit

# ---------------------------------------------------------------- noisy generator
def test_noise_zero_is_the_noiseless_generator():
    a, b = make_synthetic(300, seed=3), make_synthetic(300, seed=3, noise=0.0)
    for k in ('x1', 'x2', 'y', 'w_s', 'w1', 'w2', 'mixing1'): assert torch.equal(getattr(a, k), getattr(b, k)), k
    torch.testing.assert_close(a.x1, torch.cat([a.w_s, a.w1], 1) @ a.mixing1)

def test_noise_changes_only_the_views_by_the_asked_amount():
    clean, noisy = make_synthetic(5000, seed=2), make_synthetic(5000, seed=2, noise=0.5)
    assert torch.equal(clean.w1, noisy.w1) and torch.equal(clean.y, noisy.y) and torch.equal(clean.mixing2, noisy.mixing2)
    eps = (noisy.x2 - clean.x2) / 0.5
    assert abs(eps.std().item() - 1) < 0.02 and abs(eps.mean().item()) < 0.02
    assert abs(np.corrcoef(eps[:, 0].numpy(), (noisy.x1 - clean.x1)[:, 0].numpy())[0, 1]) < 0.05   # independent per view

@pytest.mark.parametrize('bad', [-1.0, float('inf'), float('nan'), 'a', True])
def test_noise_must_be_a_finite_non_negative_number(bad):
    with pytest.raises(ValueError, match='noise must be a finite number >= 0'): make_synthetic(10, noise=bad)

def test_view_information_matches_a_direct_gaussian_computation():
    d = make_synthetic(40000, seed=1, noise=0.5)
    x, w = d.x1.double(), d.w_s.double()
    X = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    resid = w - X @ torch.linalg.lstsq(X, w).solution          # jointly Gaussian: the best predictor is linear
    empirical = 0.5 * (torch.linalg.slogdet(torch.cov(w.T))[1] - torch.linalg.slogdet(torch.cov(resid.T))[1]) / math.log(2)
    assert abs(empirical.item() - view_information(d, 1, 'w_s')) < 0.3
    assert view_information(make_synthetic(10, seed=1), 1, 'w_s') == math.inf
    assert view_information(make_synthetic(10, seed=1, noise=2.0), 1, 'w_s') < view_information(d, 1, 'w_s')
    with pytest.raises(ValueError, match="latent must be 'w_s' or 'unique'"): view_information(d, 1, 'w1')

# ---------------------------------------------------------------- kernel read-out
def gaussian_channel(n=2000, d=2, sigma=0.5, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, d))
    return w, w + sigma * rng.normal(size=(n, d)), d / 2 * math.log2(1 + 1 / sigma ** 2), rng

def test_kernel_readout_on_a_closed_form():
    w, v, truth, _ = gaussian_channel()
    assert abs(probe_mi_kernel(v, w) - truth) < 0.2

def test_kernel_readout_reads_a_curved_relation_and_stays_below_the_truth():
    w, v, truth, _ = gaussian_channel()
    z = np.tanh(v)                                             # invertible: the same information, bent
    lin, ker = probe_mi(z, w), probe_mi_kernel(z, w)
    assert ker > lin + 0.15 and ker < truth + 0.1

def test_kernel_readout_reads_zero_on_independent_noise_and_after_a_held_out_shuffle():
    w, v, _, rng = gaussian_channel(n=400)
    assert probe_mi_kernel(rng.normal(size=(400, 8)), w) < 0.1
    held = np.random.default_rng(3).permutation(400)[200:]    # the seed-3 split's held-out half
    w_shuffled = w.copy(); w_shuffled[held] = w[rng.permutation(held)]
    assert probe_mi_kernel(v, w, seed=3) > 1.5
    assert probe_mi_kernel(v, w_shuffled, seed=3) < 0.15      # fitted on its own held-out half it would still read high

def test_kernel_readout_dict_fits_once_and_scores_each_latent():
    w, v, _, _ = gaussian_channel()
    r = probe_mi_kernel(v, {'first': w[:, 0], 'second': w[:, 1]})
    assert set(r) == {'first', 'second'}
    assert abs(r['first'] - probe_mi_kernel(v, w[:, 0])) < 1e-9
    with pytest.raises(ValueError, match='as many rows'): probe_mi_kernel(v, {'a': w[:5]})
    with pytest.raises(ValueError, match='ridges must be positive'): probe_mi_kernel(v, w, ridges=(0.0,))

# ---------------------------------------------------------------- near-identity augmentation
def test_near_identity_augment_draws_each_transform_and_keeps_identity_samples():
    x = torch.rand(2000, 10) + 1
    out, prm = near_identity_augment(std=0.05, rate=0.3)(x, generator=torch.Generator().manual_seed(1), return_params=True)
    freq = torch.bincount(prm['choice'], minlength=4).float() / len(x)
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.04)
    assert torch.equal(out[prm['choice'] == 3], x[prm['choice'] == 3])
    assert ((out == 0).sum(1)[prm['choice'] == 2] == 3).all()
    assert (out[prm['choice'] != 3] != x[prm['choice'] != 3]).any(1).all()   # every other sample is changed
    assert near_identity_augment().transforms[-1] is identity

# ---------------------------------------------------------------- per-term heads
def encoders(): return [mlp_encoder(6, out_dim=16, hidden_dim=32, n_hidden=1), mlp_encoder(6, out_dim=16, hidden_dim=32, n_hidden=1)]
SMALL = dict(proj_dim=8, head_hidden=16, critic='separable', critic_hidden=32, critic_layers=1)

def test_term_heads_are_distinct_and_each_term_reads_its_own():
    torch.manual_seed(0)
    m = FactorCLTermHeads(encoders(), 16, mode='ssl', augment=lambda a, b: (a + 0.1, b - 0.1), **SMALL)
    names = ['shared_x1', 'shared_x2', 'unique_x1', 'unique_x2'] + [f'{t}_x{i}' for t in TERM_HEADS for i in (1, 2)]
    assert len({id(getattr(m, n)) for n in names}) == 10
    x1, x2 = torch.randn(16, 6), torch.randn(16, 6)
    before = m.loss(x1, x2)
    with torch.no_grad():
        for p in m.shared_club_x2.parameters(): p.mul_(3.0)
    after = m.loss(x1, x2)
    for term in ('shared_nce', 'unique_nce_x1', 'unique_nce_x2', 'unique_club', 'unique_cond_nce'):
        torch.testing.assert_close(after[term], before[term])
    assert not torch.isclose(after['shared_club'], before['shared_club'])

def test_term_heads_sup_conditions_on_labels_with_same_class_negatives():
    torch.manual_seed(0)
    m = FactorCLTermHeads(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    x1, x2, y = torch.randn(12, 6), torch.randn(12, 6), torch.tensor([0, 1, 2] * 4)
    seen = {}
    hooks = [getattr(m, n).register_forward_pre_hook(lambda mod, a, n=n: seen.__setitem__(n, a)) for n in ('unique_cond_nce', 'unique_nce_x1')]
    both = m.shared_club.both   # the NCE-CLUB critics are read through `both` (the bound and the critic's own InfoNCE)
    m.shared_club.both = lambda *a: (seen.__setitem__('shared_club', a), both(*a))[1]
    m.loss(x1, x2, y)
    for h in hooks: h.remove()
    del m.shared_club.both
    onehot = torch.nn.functional.one_hot(y, 3).float()
    for n in ('shared_club', 'unique_cond_nce'):
        assert torch.equal(seen[n][2], y[:, None] == y[None]), n
        torch.testing.assert_close(seen[n][0][:, -3:], onehot)
    torch.testing.assert_close(seen['unique_nce_x1'][1], onehot)

def test_term_heads_learn_their_terms_compared_with_the_untrained_model():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(512, 2, generator=g)
    x1 = torch.cat([s, torch.randn(512, 4, generator=g)], 1); x2 = torch.cat([s, torch.randn(512, 4, generator=g)], 1)
    y = (s[:, 0] > 0).long()
    torch.manual_seed(0)
    m = FactorCLTermHeads(encoders(), 16, mode='sup', n_classes=2, **SMALL)
    with torch.no_grad(): start = m.loss(x1, x2, y)
    fit(m, (x1, x2, y), epochs=15, batch_size=128, lr=3e-3, progress=False, device='cpu', seed=0)
    with torch.no_grad(): end = m.cpu().loss(x1, x2, y)
    assert end['shared_nce'] > start['shared_nce'] + 0.3          # the views share s: I(X1;X2) is learned
    assert end['unique_nce_x1'] > start['unique_nce_x1'] + 0.1    # y reads s: I(X1;Y) is learned

def test_package_and_term_heads_start_from_the_same_factor_heads():
    torch.manual_seed(5); a = FactorCL(encoders(), 16, mode='ssl', **SMALL)
    torch.manual_seed(5); b = FactorCLTermHeads(encoders(), 16, mode='ssl', **SMALL)
    x1, x2 = torch.randn(8, 6), torch.randn(8, 6)
    ea, eb = a.embed(x1, x2), b.embed(x1, x2)
    assert sorted(eb) == ['s1', 's2', 'u1', 'u2']
    for k in eb: torch.testing.assert_close(ea[k], eb[k])
