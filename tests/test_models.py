"FactorCL and baselines: the contract the training loop relies on, the SSL conditioning fix, bad inputs."
import pytest, torch
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.models import FactorCL, METHODS, make_model, supcon_loss
from factorcl_nb.train import fit

def encoders(): return [mlp_encoder(10, out_dim=16, hidden_dim=32, n_hidden=1), mlp_encoder(12, out_dim=16, hidden_dim=32, n_hidden=1)]
SMALL = dict(proj_dim=8, head_hidden=16, critic_hidden=32, critic_layers=1)

@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 10, generator=g), torch.randn(32, 12, generator=g), torch.randint(0, 3, (32,), generator=g)

@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('critic', ['concat', 'separable'])
def test_every_method_gives_a_finite_loss_and_gradients(method, critic, batch):
    x1, x2, y = batch
    model = make_model(method, encoders(), 16, n_classes=3, critic=critic, **SMALL)
    out = model.loss(x1, x2, y if model.needs_labels else None)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert all(p.grad is not None for p in model.encoders.parameters())
    assert all(p.grad is None for p in model.critic_parameters()) or method.startswith(('FactorCL', 'OurCL'))

def test_critics_only_in_critic_group_and_loss_terms(batch):
    x1, x2, y = batch
    model = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    assert {id(p) for p in model.critic_parameters()} == {id(p) for m in (model.shared_club, model.unique_club) for p in m.parameters()}
    terms = model.loss(x1, x2, y)
    assert {'loss', 'shared_nce', 'shared_club', 'unique_nce_x1', 'unique_nce_x2', 'unique_club', 'unique_cond_nce'} <= set(terms)

def test_removal_weight_doubles_the_removal_pair(batch):
    x1, x2, y = batch
    torch.manual_seed(0); once = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    torch.manual_seed(0); twice = FactorCL(encoders(), 16, mode='sup', n_classes=3, removal_weight=2.0, **SMALL)
    a, b = once.loss(x1, x2, y), twice.loss(x1, x2, y)
    pair = a['unique_cond_nce'] - a['unique_club']
    assert torch.allclose(b['loss'], a['loss'] - pair, atol=1e-5)

def test_ssl_conditions_on_augmented_views_not_on_the_view_itself(batch):
    x1, x2, _ = batch
    seen = []
    model = FactorCL(encoders(), 16, mode='ssl', augment=lambda a, b: (a * 0 + 1, b * 0 - 1), **SMALL)
    model.unique_cond_nce.register_forward_pre_hook(lambda m, args: seen.append(args))
    model.loss(x1, x2)
    left, right = seen[0][:2]
    u1_aug = model.unique_x1(model.encoders[0](torch.ones_like(x1)))
    assert torch.allclose(left[:, 8:], u1_aug, atol=1e-6)        # [u1(x1), u1(x1')]
    assert not torch.allclose(left[:, 8:], left[:, :8])           # the authors' code had [u1(x1), u1(x1)]

def test_bad_inputs_are_named(batch):
    x1, x2, y = batch
    model = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    with pytest.raises(ValueError, match='batch sizes must match: x1 has 32, x2 has 31'): model.loss(x1, x2[:31], y)
    with pytest.raises(ValueError, match=r"y \(labels\) is required in 'sup' mode"): model.loss(x1, x2)
    with pytest.raises(ValueError, match=r'class ids in \[0, 2\].*got values in \[0, 5\]'): model.loss(x1, x2, y.clamp(max=2) + (y == 2) * 3)
    with pytest.raises(ValueError, match='x2 must be finite'): model.loss(x1, x2.masked_fill(x2 > 2, float('nan')), y)
    with pytest.raises(ValueError, match='encoders\\[1\\] outputs 16 features but embed_dim is 20'):
        FactorCL([mlp_encoder(10, out_dim=20), mlp_encoder(12, out_dim=16)], 20)
    with pytest.raises(ValueError, match="mode must be 'sup' or 'ssl', got 'unsup'"): FactorCL(encoders(), 16, mode='unsup')
    with pytest.raises(ValueError, match='method must be one of'): make_model('FactorCL', encoders(), 16)

def test_nan_in_a_batch_stops_training_with_a_clear_error():
    x1, x2, y = torch.randn(64, 10), torch.randn(64, 12), torch.randint(0, 3, (64,))
    x1[40, 3] = float('nan')
    model = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    with pytest.raises(ValueError, match='x1'):
        fit(model, (x1, x2, y), epochs=1, batch_size=16, progress=False, shuffle=False)

def test_supcon_is_low_when_classes_are_separated():
    y = torch.arange(64) % 4
    centers = torch.eye(8)[:4] * 10
    separated = centers[y] + 0.01 * torch.randn(64, 8)
    assert supcon_loss(separated, y) < supcon_loss(torch.randn(64, 8), y)

def test_factorcl_trains_with_fit_and_beats_chance():
    g = torch.Generator().manual_seed(0); torch.manual_seed(0)
    def task(n):
        shared, u1 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
        x1 = torch.cat([shared, u1, torch.randn(n, 6, generator=g)], 1)
        x2 = torch.cat([shared, torch.randn(n, 10, generator=g)], 1)
        return x1, x2, ((shared[:, 0] + u1[:, 0]) > 0).long()
    x1, x2, y = task(1024)
    model = FactorCL(encoders(), 16, mode='sup', n_classes=2, **SMALL)
    hist = fit(model, (x1, x2, y), epochs=6, batch_size=128, lr=1e-3, progress=False, log_every=1)
    assert hist['loss'].iloc[-8:].mean() < hist['loss'].iloc[:8].mean()
    from sklearn.linear_model import LogisticRegression
    xt1, xt2, yt = task(1024)
    feats = lambda e: torch.cat(list(e.values()), 1).numpy()
    acc = LogisticRegression(max_iter=500).fit(feats(model.embed(x1, x2)), y).score(feats(model.embed(xt1, xt2)), yt)
    assert acc > 0.8, acc
