"CoMM and InfMasking: hand-checked InfoNCE terms, the single-modality views, the masks, the Gaussian bound, training, bad arguments."
import math
import pytest, torch
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.successors import (CoMM, InfMasking, cosine_scores, symmetric_infonce, random_keep,
                                    gaussian_masked_infonce)
from factorcl_nb.train import fit

SMALL = dict(proj_dim=8, head_hidden=16, n_tokens=2, heads=2)
def encoders(): return [mlp_encoder(10, out_dim=16, hidden_dim=32, n_hidden=1), mlp_encoder(12, out_dim=16, hidden_dim=32, n_hidden=1)]

@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 10, generator=g), torch.randn(32, 12, generator=g)

def test_symmetric_infonce_matches_hand_computation():
    a = torch.tensor([[1., 0.], [0., 2.], [1., 1.]])
    b = torch.tensor([[2., 0.], [1., 1.], [0., -1.]])
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    s = an @ bn.T / 0.1
    assert torch.allclose(cosine_scores(a, b, 0.1), s)
    rows = (s.diagonal() - torch.logsumexp(s, 1)).mean() + math.log(3)
    cols = (s.diagonal() - torch.logsumexp(s, 0)).mean() + math.log(3)
    assert torch.allclose(symmetric_infonce(a, b, 0.1), (rows + cols) / 2)
    # a perfectly aligned, well-separated batch reaches log n
    e = torch.eye(3)
    assert abs(float(symmetric_infonce(e, e, 0.01)) - math.log(3)) < 1e-6

@pytest.mark.parametrize('cls', [CoMM, InfMasking])
def test_loss_is_the_mean_of_n_plus_one_terms(cls, batch):
    torch.manual_seed(0)
    model = cls(encoders(), 16, **SMALL)
    out = model.loss(*batch)
    terms = ['nce_only1', 'nce_only2', 'nce_full']
    assert set(terms) <= set(out)
    comm = torch.stack([out[k] for k in terms]).mean()
    if cls is CoMM:
        assert set(out) == {'loss', *terms}
        assert torch.allclose(out['loss'], -comm)
    else:
        assert set(out) == {'loss', 'comm', 'nce_masked', *terms}
        assert torch.allclose(out['loss'], -(comm + model.weight * out['nce_masked']))

def test_single_modality_view_depends_only_on_its_modality(batch):
    torch.manual_seed(0)
    model = CoMM(encoders(), 16, **SMALL).eval()
    x1, x2 = batch
    h = model.encode(x1, x2)
    v = model.views(h)
    v_other = model.views(model.encode(x1, torch.randn_like(x2)))
    assert torch.allclose(v['only1'], v_other['only1'], atol=1e-6)
    assert not torch.allclose(v['only2'], v_other['only2'], atol=1e-3)
    assert not torch.allclose(v['full'], v_other['full'], atol=1e-3)
    # omitting modality 2's tokens equals masking them in the fusion
    tok = model.tokenizer(h)
    keep = torch.zeros(tok.shape[:2], dtype=torch.bool); keep[:, :2] = True
    assert torch.allclose(model.head(model.fusion(tok, keep)), v['only1'], atol=1e-5)

def test_embed_is_the_fused_representation(batch):
    torch.manual_seed(0)
    model = CoMM(encoders(), 16, **SMALL)
    emb = model.embed(*batch)
    assert list(emb) == ['z'] and emb['z'].shape == (32, 16) and not emb['z'].requires_grad
    assert torch.allclose(model.head(emb['z']), model.views(model.encode(*batch))['full'], atol=1e-5)

def test_random_keep_never_masks_a_whole_modality():
    torch.manual_seed(0)
    keep = random_keep(5000, 3, 4, 0.75).view(5000, 3, 4)
    assert (keep.sum(-1) == 1).all()          # exactly max(1, round(0.25 * 4)) = 1 token per modality
    assert keep.any(-1).all()
    freq = keep.float().mean(0)               # every token slot is chosen about equally often
    assert torch.allclose(freq, torch.full_like(freq, 0.25), atol=0.03)
    keep = random_keep(2000, 2, 1, 0.9)       # a single token per modality is always kept
    assert keep.all()

def test_masked_views_shape_and_randomness(batch):
    torch.manual_seed(0)
    model = InfMasking(encoders(), 16, n_masks=3, mask_ratio=0.5, **SMALL)
    m = model.masked_views(model.encode(*batch))
    assert m.shape == (32, 3, 8)
    assert not torch.allclose(m[:, 0], m[:, 1])

def test_gaussian_bound_without_covariance_is_infonce_of_the_mean():
    g = torch.Generator().manual_seed(1)
    full, mean = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    masked = mean[:, None].repeat(1, 4, 1)        # K identical masked views: Sigma = 0
    u = full / full.norm(dim=1, keepdim=True)
    mu = mean / mean.norm(dim=1, keepdim=True)
    s = mu @ u.T / 0.1
    hand = (s.diagonal() - torch.logsumexp(s, 1)).mean() + math.log(6)
    assert torch.allclose(gaussian_masked_infonce(masked, full, 0.1), hand, atol=1e-5)

def test_gaussian_bound_matches_the_covariance_formula():
    "With spread, the bound equals the explicit formula with Sigma_i and is below the masked views' mean InfoNCE."
    g = torch.Generator().manual_seed(2)
    n, K, p, tau = 5, 3, 4, 0.5
    masked, full = torch.randn(n, K, p, generator=g), torch.randn(n, p, generator=g)
    m = masked / masked.norm(dim=-1, keepdim=True); u = full / full.norm(dim=1, keepdim=True)
    mu = m.mean(1)
    logits = torch.empty(n, n)
    for i in range(n):
        sigma = torch.cov(m[i].T)                 # unbiased, [p, p]
        for j in range(n):
            dlt = u[j] - u[i]
            logits[i, j] = mu[i] @ dlt / tau + dlt @ sigma @ dlt / (2 * tau ** 2)
    hand = math.log(n) - torch.logsumexp(logits, 1).mean()
    got = gaussian_masked_infonce(masked, full, tau)
    assert torch.allclose(got, hand, atol=1e-5)
    # Jensen: the bound is at most the mean over the K views of their own InfoNCE
    per_view = torch.stack([(lambda s: (s.diagonal() - s.logsumexp(1)).mean() + math.log(n))(m[:, k] @ u.T / tau)
                            for k in range(K)]).mean()
    assert got <= per_view + 1e-6

@pytest.mark.parametrize('cls', [CoMM, InfMasking])
def test_gradients_reach_both_encoders(cls, batch):
    torch.manual_seed(0)
    model = cls(encoders(), 16, **SMALL)
    model.loss(*batch)['loss'].backward()
    for i, enc in enumerate(model.encoders):
        grads = [p.grad for p in enc.parameters()]
        assert all(gr is not None and torch.isfinite(gr).all() for gr in grads), f"encoder {i}"
        assert sum(float(gr.abs().sum()) for gr in grads) > 0, f"encoder {i}"

@pytest.mark.parametrize('cls', [CoMM, InfMasking])
def test_fit_runs_and_the_loss_decreases(cls):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 4, generator=g)
    x1 = torch.cat([z, torch.randn(512, 6, generator=g)], 1) @ torch.randn(10, 10, generator=g)
    x2 = torch.cat([z, torch.randn(512, 8, generator=g)], 1) @ torch.randn(12, 12, generator=g)
    torch.manual_seed(0)
    model = cls(encoders(), 16, **SMALL)
    hist = fit(model, (x1, x2), epochs=6, batch_size=64, lr=1e-3, progress=False, device='cpu', log_every=1)
    assert torch.isfinite(torch.tensor(hist['loss'].values)).all()
    first, last = hist['loss'].iloc[:8].mean(), hist['loss'].iloc[-8:].mean()
    assert last < first - 0.1, (first, last)

@pytest.mark.parametrize('kwargs, name', [
    (dict(temperature=0), 'temperature'), (dict(n_tokens=0), 'n_tokens'), (dict(heads=3), 'heads'),
    (dict(fusion_layers=1.5), 'fusion_layers'), (dict(proj_dim=-1), 'proj_dim')])
def test_bad_comm_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CoMM(encoders(), 16, **{**SMALL, **kwargs})

@pytest.mark.parametrize('kwargs, name', [
    (dict(n_masks=1), 'n_masks'), (dict(mask_ratio=1.0), 'mask_ratio'), (dict(mask_ratio=0.1), 'mask_ratio'),
    (dict(weight=-1), 'weight')])
def test_bad_infmasking_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        InfMasking(encoders(), 16, **{**SMALL, **kwargs})

def test_bad_inputs(batch):
    model = CoMM(encoders(), 16, **SMALL)
    x1, x2 = batch
    with pytest.raises(ValueError, match='x2'): model.loss(x1, x2[:5])
    with pytest.raises(ValueError, match='x1'): model.embed(x1.numpy(), x2)
    with pytest.raises(ValueError, match='masked'): gaussian_masked_infonce(torch.randn(4, 1, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match='full'): gaussian_masked_infonce(torch.randn(4, 2, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match='b'): cosine_scores(torch.randn(3, 2), torch.randn(4, 2))


def test_make_model_builds_the_successors_and_run_method_probes_them():
    "CoMM and InfMasking are methods of the harness: built by make_model, trained by fit, probed by run_method."
    import sys
    from factorcl_nb.models import make_model, METHODS
    from factorcl_nb.runner import run_method
    from factorcl_nb.successors import CoMM, InfMasking
    assert {'CoMM', 'InfMasking'} <= set(METHODS)
    encs = lambda: [mlp_encoder(12, out_dim=16, hidden_dim=32, n_hidden=1) for _ in range(2)]
    m = make_model('InfMasking', encs(), 16, n_classes=3, critic='separable', proj_dim=8, n_masks=3)
    assert type(m) is InfMasking and m.n_masks == 3          # options it does not take (critic) are dropped
    assert type(make_model('CoMM', encs(), 16, proj_dim=8)) is CoMM
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(300, 12, generator=g), torch.randn(300, 12, generator=g)
    y = (x1[:, 0] + x2[:, 0] > 0).long()
    data = lambda s: (x1[s], x2[s], y[s])
    r = run_method('CoMM', data(slice(0, 240)), data(slice(240, None)), 2, encoders=encs,
                   train_config=dict(epochs=2, batch_size=60, device='cpu'), untrained=True)
    assert 0 <= r['accuracy']['all'] <= 1 and len(r['history']) > 0
    assert not torch.equal(r['model'].encoders[0].net[0].weight, r['untrained'].encoders[0].net[0].weight)
