"FactorCL and baselines: the contract the training loop relies on, the SSL conditioning fix, bad inputs."
import math
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
    """As in the main step (critics frozen): every main parameter gets a finite, non-zero gradient. The main loss
    reaches the critics when they are not frozen, and the critic loss trains the critics and no main parameter."""
    x1, x2, y = batch
    torch.manual_seed(0)
    model = make_model(method, encoders(), 16, n_classes=3, critic=critic, **SMALL)
    main, critics = model.main_parameters(), model.critic_parameters()
    assert main and {id(p) for p in main}.isdisjoint({id(p) for p in critics})
    assert (len(critics) > 0) == method.startswith(('FactorCL', 'OurCL'))   # only FactorCL/OurCL own NCE-CLUB critics
    for p in critics: p.requires_grad_(False)
    out = model.loss(x1, x2, y if model.needs_labels else None)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    names = {id(p): n for n, p in model.named_parameters()}
    missing = [names[id(p)] for p in main if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, f"main parameters without a finite non-zero gradient: {missing}"
    if critics:   # the freeze is what keeps the critics out: unfrozen, the main loss reaches them
        model.zero_grad(set_to_none=True)
        for p in critics: p.requires_grad_(True)
        model.loss(x1, x2, y if model.needs_labels else None)['loss'].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in critics)
        model.zero_grad(set_to_none=True)   # and the critic loss trains the critics, never a main parameter
        model.critic_loss(x1, x2, y if model.needs_labels else None).backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in critics)
        trained = [names[id(p)] for p in main if p.grad is not None and p.grad.any()]
        assert not trained, f"the critic loss trains main parameters: {trained}"

def test_critics_only_in_critic_group(batch):
    x1, x2, y = batch
    model = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    assert {id(p) for p in model.critic_parameters()} == {id(p) for m in (model.shared_club, model.unique_club) for p in m.parameters()}

def _hand_infonce(s, allowed):
    "mean_i [s_ii - log mean_{j allowed for i} exp s_ij], written with explicit loops."
    n = len(s); rows = []
    for i in range(n):
        js = [j for j in range(n) if allowed(i, j)]
        rows.append(float(s[i, i]) - math.log(sum(math.exp(float(s[i, j])) for j in js) / len(js)))
    return sum(rows) / n

def _hand_nce_club(s, allowed):
    "mean_i [s_ii - mean_{j allowed for i} s_ij], written with explicit loops."
    n = len(s); rows = []
    for i in range(n):
        js = [j for j in range(n) if allowed(i, j)]
        rows.append(float(s[i, i]) - sum(float(s[i, j]) for j in js) / len(js))
    return sum(rows) / n

@pytest.mark.parametrize('mode', ['sup', 'ssl'])
def test_loss_terms_equal_their_definitions(mode, batch):
    """Each term recomputed by hand from the critics' score matrices: in 'sup' the conditional terms take their
    negatives from the same class only (whole-batch negatives give other values), in 'ssl' from the whole batch."""
    x1, x2, y = (t.double() if t.is_floating_point() else t for t in batch)
    aug = lambda a, b: (a.flip(0), b + 1.0)   # deterministic, so the terms can be recomputed
    torch.manual_seed(0)
    model = FactorCL(encoders(), 16, mode=mode, n_classes=3 if mode == 'sup' else None, augment=aug, **SMALL).double()
    terms = model.loss(x1, x2, y if mode == 'sup' else None)
    f = model.factors(*model.encode(x1, x2))
    if mode == 'sup':
        c = torch.nn.functional.one_hot(y, 3).double()
        c1 = c2 = cs1 = cs2 = cu1 = cu2 = c
        cond = lambda i, j: bool(y[i] == y[j])
    else:
        fa = model.factors(*model.encode(*aug(x1, x2)))
        c1, c2, cs1, cs2, cu1, cu2 = fa['u1'], fa['u2'], fa['s1'], fa['s2'], fa['u1'], fa['u2']
        cond = lambda i, j: True
    every = lambda i, j: True
    cat = lambda a, b: torch.cat([a, b], 1)
    with torch.no_grad():
        s_shared_club = model.shared_club.critic(cat(f['s1'], cs1), cat(f['s2'], cs2))
        s_unique_club = model.unique_club.critic(f['u1'], f['u2'])
        expected = dict(
            shared_nce=_hand_infonce(model.shared_nce.critic(f['s1'], f['s2']), every),
            shared_club=_hand_nce_club(s_shared_club, cond), shared_club_infonce=_hand_infonce(s_shared_club, cond),
            unique_nce_x1=_hand_infonce(model.unique_nce_x1.critic(f['u1'], c1), every),
            unique_nce_x2=_hand_infonce(model.unique_nce_x2.critic(f['u2'], c2), every),
            unique_club=_hand_nce_club(s_unique_club, every), unique_club_infonce=_hand_infonce(s_unique_club, every),
            unique_cond_nce=_hand_infonce(model.unique_cond_nce.critic(cat(f['u1'], cu1), cat(f['u2'], cu2)), cond))
    for name, value in expected.items(): assert float(terms[name]) == pytest.approx(value, abs=1e-6), name   # masked log-counts are float32
    e = expected
    S = e['shared_nce'] - e['shared_club']
    U = e['unique_nce_x1'] + e['unique_nce_x2'] + e['unique_cond_nce'] - e['unique_club']
    assert float(terms['S']) == pytest.approx(S, abs=1e-6) and float(terms["U"]) == pytest.approx(U, abs=1e-6)
    assert float(terms['loss']) == pytest.approx(-(S + U), abs=1e-6)
    if mode == 'sup':   # the conditional terms really depend on the negatives: whole-batch values differ
        assert abs(_hand_nce_club(s_shared_club, every) - e['shared_club']) > 1e-3

def test_sup_conditional_terms_receive_the_same_class_mask(batch, monkeypatch):
    x1, x2, y = batch
    model = FactorCL(encoders(), 16, mode='sup', n_classes=3, **SMALL)
    calls = []
    # record the mask argument each estimator is called with
    def record(est_name, method):
        def wrapped(*args, **kw):
            calls.append((est_name, args[2] if len(args) > 2 else kw.get('mask')))
            return method(*args, **kw)
        return wrapped
    for name in ('shared_nce', 'unique_nce_x1', 'unique_nce_x2', 'unique_cond_nce'):
        est = getattr(model, name); monkeypatch.setattr(est, 'forward', record(name, est.forward))
    for name in ('shared_club', 'unique_club'):
        est = getattr(model, name); monkeypatch.setattr(est, 'both', record(name, est.both))
    model.loss(x1, x2, y)
    masks = dict(calls)
    assert set(masks) == {'shared_nce', 'unique_nce_x1', 'unique_nce_x2', 'unique_cond_nce', 'shared_club', 'unique_club'}
    expected = y[:, None] == y[None, :]
    for name in ('shared_club', 'unique_cond_nce'): assert torch.equal(masks[name], expected), name
    for name in ('shared_nce', 'unique_nce_x1', 'unique_nce_x2', 'unique_club'): assert masks[name] is None, name

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

def test_factorcl_trains_with_fit_and_beats_its_untrained_self():
    """A probe on the trained factors beats the same network untrained (same seed) by a wide margin. The label needs
    2 of 24 input coordinates that noise of larger scale hides: a random network mixes them away (probe ~0.62)."""
    g = torch.Generator().manual_seed(0)
    def task(n):
        shared, u1 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
        x1 = torch.cat([shared, u1, 1.5 * torch.randn(n, 20, generator=g)], 1)
        x2 = torch.cat([shared, 1.5 * torch.randn(n, 22, generator=g)], 1)
        return x1, x2, ((shared[:, 0] + u1[:, 0]) > 0).long()
    (x1, x2, y), (xt1, xt2, yt) = task(1024), task(1024)
    def model():
        torch.manual_seed(0)
        encs = [mlp_encoder(24, out_dim=16, hidden_dim=32, n_hidden=1), mlp_encoder(24, out_dim=16, hidden_dim=32, n_hidden=1)]
        return FactorCL(encs, 16, mode='sup', n_classes=2, **SMALL)
    from sklearn.linear_model import LogisticRegression
    feats = lambda m, a, b: torch.cat(list(m.embed(a, b).values()), 1).numpy()
    acc = lambda m: LogisticRegression(max_iter=500).fit(feats(m, x1, x2), y).score(feats(m, xt1, xt2), yt)
    untrained, trained = model(), model()
    hist = fit(trained, (x1, x2, y), epochs=8, batch_size=128, lr=3e-3, progress=False, log_every=1)
    assert hist['loss'].iloc[-8:].mean() < hist['loss'].iloc[:8].mean()
    a0, a1 = acc(untrained), acc(trained)
    assert a1 > a0 + 0.15 and a1 > 0.8, (a0, a1)

# --- condition= : conditional terms of FactorCL-SSL on the augmented views ---------------------------------------
from factorcl_nb.conditional import CONDITIONS, ConditionalInfoNCE, ConditionalNCECLUB
from factorcl_nb.models import FactorCLTermHeads

def _ssl(condition, cls=FactorCL, **kw):
    torch.manual_seed(0)
    return cls(encoders(), 16, mode='ssl', augment=lambda a, b: (a.flip(0), b + 1.0), condition=condition, **SMALL, **kw)

def test_residual_terms_are_the_conditional_estimators_on_the_factors(batch):
    "shared_club and unique_cond_nce equal direct calls of the conditional estimators on (z1, z2, [z1', z2'])."
    x1, x2, _ = batch
    model = _ssl('residual')
    assert isinstance(model.shared_club, ConditionalNCECLUB) and isinstance(model.unique_cond_nce, ConditionalInfoNCE)
    assert model.shared_club.condition == model.unique_cond_nce.condition == 'residual'
    terms = model.loss(x1, x2)
    f = model.factors(*model.encode(x1, x2)); fa = model.factors(*model.encode(x1.flip(0), x2 + 1.0))
    lower, upper = model.shared_club.both(f['s1'], f['s2'], torch.cat([fa['s1'], fa['s2']], 1))
    assert torch.allclose(terms['shared_club'], upper, atol=1e-6) and torch.allclose(terms['shared_club_infonce'], lower, atol=1e-6)
    cond = model.unique_cond_nce(f['u1'], f['u2'], torch.cat([fa['u1'], fa['u2']], 1))
    assert torch.allclose(terms['unique_cond_nce'], cond, atol=1e-6)
    concat = _ssl('concat').loss(x1, x2)   # same seed, same heads: the concatenated term reads something else
    assert not torch.isclose(concat['unique_cond_nce'], terms['unique_cond_nce'])

@pytest.mark.parametrize('condition', CONDITIONS)
@pytest.mark.parametrize('cls', [FactorCL, FactorCLTermHeads])
def test_every_condition_gives_gradients_to_every_main_parameter(condition, cls, batch):
    x1, x2, _ = batch
    model = _ssl(condition, cls, **({'condition_options': {'bandwidth': 2.0}} if condition == 'kernel' else {}))
    main, critics = model.main_parameters(), model.critic_parameters()
    assert {id(p) for p in main}.isdisjoint({id(p) for p in critics})
    for p in critics: p.requires_grad_(False)
    out = model.loss(x1, x2); assert torch.isfinite(out['loss'])
    out['loss'].backward()
    names = {id(p): n for n, p in model.named_parameters()}
    missing = [names[id(p)] for p in main if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, missing
    for p in critics: p.requires_grad_(True)
    model.zero_grad(set_to_none=True); model.critic_loss(x1, x2).backward()
    assert all(p.grad is None for p in main)   # the critic loss reaches the critics only

def test_critic_step_trains_the_residual_regressions(batch):
    "The regressions mu(c) are critic parameters; one critic step changes them and no main parameter."
    x1, x2, _ = batch
    model = _ssl('residual')
    means = [model.shared_club.mean, model.unique_cond_nce.mean]
    critic_ids = {id(p) for p in model.critic_parameters()}
    assert all(id(p) in critic_ids for m in means for p in m.parameters())
    assert not any(id(p) in critic_ids for p in model.unique_cond_nce.critic.parameters())   # its critic: main loss
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.critic_parameters(), 1e-2)
    opt.zero_grad(); model.critic_loss(x1, x2).backward(); opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    for prefix in ('shared_club.mean.', 'unique_cond_nce.mean.', 'shared_club.critic.', 'unique_club.critic.'):
        assert any(n.startswith(prefix) for n in changed), prefix
    assert changed <= {n for n, p in model.named_parameters() if id(p) in critic_ids}
    # and the regression's error is in the critic loss: without it the loss is smaller by exactly that error
    with torch.no_grad():
        torch.manual_seed(0); total = model.critic_loss(x1, x2)
        f = model.factors(*model.encode(x1, x2)); fa = model.factors(*model.encode(x1.flip(0), x2 + 1.0))
        mse = model.unique_cond_nce.condition_loss(f['u2'], torch.cat([fa['u1'], fa['u2']], 1))
        rest = (model.shared_club.learning_loss(f['s1'], f['s2'], torch.cat([fa['s1'], fa['s2']], 1))
                + model.unique_club.learning_loss(f['u1'], f['u2']))
    assert mse > 0 and torch.allclose(total, rest + mse, atol=1e-5)

def test_residual_factorcl_trains_with_fit(batch):
    x1, x2, _ = batch
    hist = fit(_ssl('residual'), (x1, x2), epochs=2, batch_size=16, progress=False, log_every=1)
    assert len(hist) == 4 and hist[['loss', 'critic_loss', 'unique_cond_nce']].notna().all().all()

def test_bad_condition_is_named():
    with pytest.raises(ValueError, match=r"condition must be one of \('concat', 'kernel', 'knn', 'residual'\), got 'cond'"):
        FactorCL(encoders(), 16, condition='cond')
    with pytest.raises(ValueError, match=r"condition='residual' needs mode='ssl'"):
        FactorCL(encoders(), 16, mode='sup', n_classes=3, condition='residual')
    with pytest.raises(ValueError, match=r"condition must be one of .*got 'Residual'"):
        make_model('FactorCL-SSL', encoders(), 16, condition='Residual')
    with pytest.raises(ValueError, match=r"condition_options apply to condition 'kernel', 'knn' or 'residual'"):
        FactorCL(encoders(), 16, condition_options={'k': 4})
    with pytest.raises(ValueError, match=r"condition_options may hold .*got unknown \['width'\]"):
        FactorCL(encoders(), 16, condition='kernel', condition_options={'width': 1.0})

def test_make_model_passes_condition_to_the_ssl_methods_only():
    for method in METHODS:
        m = make_model(method, encoders(), 16, n_classes=3, condition='residual', **SMALL)
        expected = 'residual' if method in ('FactorCL-SSL', 'OurCL-SSL', 'FactorCL-IndAug') else 'concat'
        assert getattr(m, 'condition', 'concat') == expected, method
