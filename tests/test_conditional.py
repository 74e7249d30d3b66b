"Conditional MI: closed forms of the Gaussian benchmarks, the weighted bounds, and each estimator against a known I(X;Y|C)."
import math
import pytest, torch
from factorcl_nb.estimators import infonce_bound, nce_club_bound, same_class, gaussian_rho
from factorcl_nb.conditional import (CONDITIONS, ConditionalInfoNCE, ConditionalNCECLUB, conditional_gaussian_cov,
                                     gaussian_cmi_from_cov, gaussian_mi_from_cov, kernel_weights, knn_mask, mask_weights, nce_club_target,
                                     sample_conditional_gaussian, sample_discrete_conditional_gaussian,
                                     train_conditional_critic, weighted_infonce_bound, weighted_nce_club_bound)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

# ---- closed forms ----

def _model_cov(dim, r, s2):
    "Covariance of (X, Y, C) built from the generative map (C, e1, e2) -> (C + s e1, C + s (r e1 + sqrt(1-r^2) e2), C)."
    s, eye, zero = math.sqrt(s2), torch.eye(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64)
    a = torch.cat([torch.cat([eye, s * eye, zero], 1),
                   torch.cat([eye, s * r * eye, s * math.sqrt(1 - r * r) * eye], 1),
                   torch.cat([eye, zero, zero], 1)])
    return a @ a.T

@pytest.mark.parametrize('dim,cmi', [(1, 0.), (5, 0.), (5, 1.), (5, 4.), (20, 0.), (20, 4.)])
def test_closed_form_matches_plain_determinants(dim, cmi):
    cov, r, s2 = conditional_gaussian_cov(dim, cmi, shared_mi=3.)
    direct = _model_cov(dim, r, s2)
    assert torch.allclose(cov, direct, atol=1e-12)
    x, y, c = (list(range(k * dim, (k + 1) * dim)) for k in range(3))
    det = lambda idx: torch.det(direct[idx][:, idx])
    by_det = 0.5 * math.log(det(x + c) * det(y + c) / (det(c) * det(x + y + c)))
    assert math.isclose(gaussian_cmi_from_cov(cov, x, y, c), by_det, abs_tol=1e-8)
    assert math.isclose(gaussian_cmi_from_cov(cov, x, y, c), cmi, abs_tol=1e-8)   # = -d/2 log(1 - r^2)
    truth = sample_conditional_gaussian(4, dim, cmi, shared_mi=3.)[3]
    assert math.isclose(truth['cmi'], cmi, abs_tol=1e-8)
    assert math.isclose(truth['mi'], 0.5 * math.log(det(x) * det(y) / det(x + y)), abs_tol=1e-8)
    assert truth['mi'] >= 3. - 1e-8 and truth['mi_xc_y'] >= truth['mi'] - 1e-8   # I(X;Y) stays large

def test_shared_mi_is_the_mi_at_zero_conditional_mi():
    for dim in (5, 20):
        assert math.isclose(sample_conditional_gaussian(2, dim, 0., shared_mi=2.5)[3]['mi'], 2.5, abs_tol=1e-8)

def test_monte_carlo_recovers_continuous_closed_form():
    g = torch.Generator().manual_seed(0)
    x, y, c, truth = sample_conditional_gaussian(200_000, 4, 2., shared_mi=3., generator=g, dtype=torch.float64)
    emp = torch.cov(torch.cat([x, y, c], 1).T)
    idx = [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]
    assert abs(gaussian_cmi_from_cov(emp, *idx) - truth['cmi']) < 0.03
    assert abs(gaussian_mi_from_cov(emp, *idx[:2]) - truth['mi']) < 0.03
    # and the conditional MI through the partial correlation of the residuals of x and y on c (exact regression)
    rx, ry = x - c, y - c
    rho = (rx * ry).mean(0) / (rx.std(0) * ry.std(0))
    assert abs(-0.5 * torch.log(1 - rho ** 2).sum().item() - truth['cmi']) < 0.03

def test_monte_carlo_recovers_discrete_closed_form():
    g = torch.Generator().manual_seed(1)
    x, y, c, labels, truth = sample_discrete_conditional_gaussian(200_000, 3, 1.5, n_classes=5, generator=g, dtype=torch.float64)
    assert math.isclose(truth['concat'], math.log(5) + truth['cmi'], abs_tol=1e-12)
    means_x = torch.zeros(5, 3, dtype=torch.float64).index_add_(0, labels, x) / torch.bincount(labels)[:, None]
    means_y = torch.zeros(5, 3, dtype=torch.float64).index_add_(0, labels, y) / torch.bincount(labels)[:, None]
    assert torch.allclose(means_x, means_y, atol=0.03)   # the label shifts both means alike
    rx, ry = x - means_x[labels], y - means_y[labels]
    assert abs(gaussian_cmi_from_cov(torch.cov(torch.cat([rx, ry], 1).T), [0, 1, 2], [3, 4, 5], []) - 1.5) < 0.03
    assert torch.equal(c.argmax(1), labels) and c.sum(1).eq(1).all()

@pytest.mark.parametrize('dim,cmi', [(5, 0.5), (5, 2.), (20, 3.)])
def test_nce_club_target_is_the_optimal_critic_reading(dim, cmi):
    "Monte Carlo: exact log p(y|x,c)/p(y|c) on positives minus on negatives drawn from p(y|c) (another sample's noise)."
    g = torch.Generator().manual_seed(3)
    x, y, c, truth = sample_conditional_gaussian(400_000, dim, cmi, generator=g, dtype=torch.float64)
    _, r, s2 = conditional_gaussian_cov(dim, cmi, 3.)
    u, v = (x - c) / math.sqrt(s2), (y - c) / math.sqrt(s2)
    log_ratio = lambda u, v: (-(v - r * u) ** 2 / (2 * (1 - r * r)) - 0.5 * math.log(1 - r * r) + v ** 2 / 2).sum(1)
    assert abs(log_ratio(u, v).mean().item() - cmi) < 0.03 * max(1, cmi)    # E_p[f*] is the conditional MI itself
    upper = (log_ratio(u, v) - log_ratio(u, v.roll(1, 0))).mean().item()
    assert truth['nce_club'] == nce_club_target(cmi, dim) and truth['nce_club'] >= cmi
    assert abs(upper - truth['nce_club']) < 0.03 * truth['nce_club']

def test_sampler_rejects_bad_levels():
    for bad in (-0.1, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='cmi must be'): sample_conditional_gaussian(4, 5, bad)
    with pytest.raises(ValueError, match='shared_mi must be > 0'): sample_conditional_gaussian(4, 5, 1., shared_mi=0.)
    with pytest.raises(ValueError, match='n must be a positive int'): sample_conditional_gaussian(0, 5, 1.)

# ---- weighted bounds, kernel and kNN weights ----

def test_weighted_bounds_match_explicit_loops_and_masked_bounds():
    torch.manual_seed(0)
    s = torch.randn(9, 9, dtype=torch.float64) * 3
    w = torch.rand(9, 9, dtype=torch.float64) ** 2; w = w / w.sum(1, keepdim=True)
    lower = sum(s[i, i] - math.log(sum(w[i, j] * math.exp(s[i, j]) for j in range(9))) for i in range(9)) / 9
    upper = sum(s[i, i] - sum(w[i, j] * s[i, j] for j in range(9)) for i in range(9)) / 9
    assert abs(weighted_infonce_bound(s, w).item() - lower) < 1e-10
    assert abs(weighted_nce_club_bound(s, w).item() - upper) < 1e-10
    m = same_class(torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1]))
    assert torch.allclose(weighted_infonce_bound(s, mask_weights(m)), infonce_bound(s, m))
    assert torch.allclose(weighted_nce_club_bound(s, mask_weights(m)), nce_club_bound(s, m))

def test_weighted_lower_bound_ceiling_and_order():
    torch.manual_seed(1)
    for _ in range(20):
        s = torch.randn(16, 16) * 6
        w = kernel_weights(torch.randn(16, 3), 0.7)
        assert weighted_infonce_bound(s, w) <= -w.diagonal().log().mean() + 1e-5
        assert weighted_nce_club_bound(s, w) >= weighted_infonce_bound(s, w) - 1e-5
    s = torch.full((8, 8), -50.); s.fill_diagonal_(50.)   # a perfect critic reaches the ceiling
    w = mask_weights(knn_mask(torch.randn(8, 2), 3))
    assert abs(weighted_infonce_bound(s, w).item() - math.log(4)) < 1e-5

def test_kernel_weights_and_knn_mask_match_loops():
    c = torch.randn(11, 4, dtype=torch.float64)
    k = torch.tensor([[math.exp(-((c[i] - c[j]) ** 2).sum().item() / (2 * 1.3 ** 2)) for j in range(11)] for i in range(11)],
                     dtype=torch.float64)
    assert torch.allclose(kernel_weights(c, 1.3), k / k.sum(1, keepdim=True), atol=1e-12)
    m, d = knn_mask(c, 4), torch.cdist(c, c)
    for i in range(11):
        nearest = sorted((j for j in range(11) if j != i), key=lambda j: d[i, j].item())[:4]
        assert set(m[i].nonzero().flatten().tolist()) == {i, *nearest}

def test_knn_keeps_the_positive_among_exact_ties():
    c = torch.nn.functional.one_hot(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), 2).float()   # duplicated conditions
    m = knn_mask(c, 2)
    assert m.diagonal().all() and m.sum(1).eq(3).all()
    assert (m <= same_class(c.argmax(1))).all()   # with k below the class size: neighbours are same-class

@pytest.mark.parametrize('device', DEVICES)
def test_estimators_are_device_agnostic(device):
    x, y, c = torch.randn(3, 12, 4, device=device)
    for cond in CONDITIONS:
        est = ConditionalNCECLUB(4, 4, 4, condition=cond, critic='separable', hidden_dim=8, k=3).to(device)
        lo, hi = est.both(x, y, c)
        assert lo.device.type == device and torch.isfinite(lo) and hi >= lo - 1e-5
        est.learning_loss(x, y, c).backward()
        assert all(p.grad is not None and p.grad.device.type == device for p in est.critic.parameters())

def test_condition_critic_switch_sets_the_critic_inputs():
    "'kernel'/'knn' score f([x,c], y) by default and f(x, y) with condition_critic=False; 'concat' puts c on both sides."
    first = lambda e: (e.critic.g[0].in_features, e.critic.h[0].in_features)
    assert first(ConditionalInfoNCE(4, 3, 2, 'kernel', critic='separable', hidden_dim=8)) == (6, 3)
    assert first(ConditionalInfoNCE(4, 3, 2, 'knn', critic='separable', hidden_dim=8, condition_critic=False)) == (4, 3)
    assert first(ConditionalInfoNCE(4, 3, 2, 'concat', critic='separable', hidden_dim=8)) == (6, 5)
    assert first(ConditionalInfoNCE(4, 3, 2, 'residual', critic='separable', hidden_dim=8)) == (6, 3)
    est = ConditionalInfoNCE(4, 3, 2, 'knn', critic='separable', hidden_dim=8, condition_critic=False, k=2)
    x, y, c = torch.randn(7, 4), torch.randn(7, 3), torch.randn(7, 2)
    expected = weighted_infonce_bound(est.critic(x, y), mask_weights(knn_mask(c, 2)))
    assert torch.allclose(est(x, y, c), expected)

def test_residual_regression_is_trained_by_its_own_loss_only():
    "mu gets gradient from condition_loss, never from the bound (else it could leak c_j into the residuals)."
    est = ConditionalNCECLUB(3, 3, 2, 'residual', critic='separable', hidden_dim=8)
    x, y, c = torch.randn(9, 3), torch.randn(9, 3), torch.randn(9, 2)
    est.both(x, y, c)[0].backward()
    assert all(p.grad is None for p in est.mean.parameters())
    assert torch.allclose(est.condition_loss(y, c), (est.mean(c) - y).pow(2).sum(1).mean())
    assert torch.allclose(est.learning_loss(x, y, c), -est.both(x, y, c)[0] + est.condition_loss(y, c))
    assert ConditionalNCECLUB(3, 3, 2, 'knn', hidden_dim=8).condition_loss(y, c).item() == 0

# ---- bad input ----

def test_bad_conditions_raise_clear_errors():
    est = ConditionalNCECLUB(3, 3, 2, condition='knn', hidden_dim=8)
    x, y, c = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 2)
    with pytest.raises(ValueError, match='batch sizes must match: x has 6, y has 6, c has 5'): est(x, y, c[:5])
    with pytest.raises(ValueError, match='c must be finite, got 1 NaN'): est(x, y, c.index_put((torch.tensor([0]), torch.tensor([1])), torch.tensor(float('nan'))))
    with pytest.raises(ValueError, match='c must have 2 features'): est(x, y, torch.randn(6, 3))
    with pytest.raises(ValueError, match='rank 2'): est(x, y, c[:, 0])
    with pytest.raises(ValueError, match='c must be a floating-point'): est(x, y, c.long())
    with pytest.raises(ValueError, match="condition must be one of .*'residual'.*got 'mean'"): ConditionalInfoNCE(3, 3, 2, condition='mean')
    with pytest.raises(ValueError, match='bandwidth must be a finite number > 0, got 0'): ConditionalInfoNCE(3, 3, 2, condition='kernel', bandwidth=0)
    with pytest.raises(ValueError, match='k must be a positive int'): ConditionalInfoNCE(3, 3, 2, condition='knn', k=0)
    with pytest.raises(ValueError, match='c_dim must be a positive int'): ConditionalInfoNCE(3, 3, 0)
    with pytest.raises(ValueError, match='at least 2'): est(x[:1], y[:1], c[:1])
    with pytest.raises(ValueError, match='sum to 1'): weighted_infonce_bound(torch.zeros(3, 3), torch.ones(3, 3))
    with pytest.raises(ValueError, match='positive diagonal'): weighted_nce_club_bound(torch.zeros(2, 2), torch.tensor([[0., 1.], [1., 0.]]))

# ---- each estimator against a closed-form case ----

def _read(est, sample, seed=123, batches=3, n=256):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        reads = torch.tensor([[v.item() for v in est.both(*sample(n, g))] for _ in range(batches)])
    return reads.mean(0).tolist()

def _train(cond, sample, dim, c_dim, steps=300, **kw):
    torch.manual_seed(0)
    est = ConditionalNCECLUB(dim, dim, c_dim, condition=cond, critic='separable', hidden_dim=64, **kw)
    return train_conditional_critic(est, sample, steps=steps, batch_size=128)

def test_concat_reads_near_the_ceiling_when_the_conditional_mi_is_zero():
    "The paper's concatenation: X, Y independent given a continuous C, yet it reads near log n (its target is H(C) + I)."
    sample = lambda n, g: sample_conditional_gaussian(n, 5, 0., generator=g)[:3]
    lower, upper = _read(_train('concat', sample, 5, 5), sample)
    assert lower > math.log(256) - 1.0 and upper >= lower

def test_concat_reads_log_k_plus_cmi_for_a_discrete_condition():
    for cmi in (0., 1.):
        sample = lambda n, g: sample_discrete_conditional_gaussian(n, 5, cmi, n_classes=4, generator=g)[:3]
        lower, _ = _read(_train('concat', sample, 5, 4), sample)
        assert abs(lower - (math.log(4) + cmi)) < 0.4, (cmi, lower)

@pytest.mark.parametrize('cmi', [0., 2.])
def test_residual_resampling_reads_the_continuous_truth(cmi):
    sample = lambda n, g: sample_conditional_gaussian(n, 5, cmi, generator=g)[:3]
    lower, upper = _read(_train('residual', sample, 5, 5), sample)
    assert cmi - 0.5 < lower <= cmi + 0.1, lower   # a lower bound, close to the truth
    assert upper >= cmi - 0.1 and abs(upper - nce_club_target(cmi, 5)) < 0.3 + 0.25 * nce_club_target(cmi, 5), upper

@pytest.mark.parametrize('cond', ['kernel', 'knn'])
@pytest.mark.parametrize('cmi', [0., 1.5])
def test_kernel_and_knn_read_the_truth_for_a_discrete_condition(cond, cmi):
    "Where the batch holds samples with the same condition (a discrete C), kernel and kNN negatives are conditional."
    sample = lambda n, g: sample_discrete_conditional_gaussian(n, 5, cmi, n_classes=4, generator=g)[:3]
    lower, upper = _read(_train(cond, sample, 5, 4, bandwidth=0.3, k=16), sample)
    assert cmi - 0.5 < lower <= cmi + 0.15, lower
    assert upper >= cmi - 0.15, upper

def test_kernel_and_knn_overestimate_a_zero_conditional_mi_for_a_continuous_condition():
    "Their documented failure: in 5 dimensions the neighbours' conditions differ, and the critic exploits it."
    sample = lambda n, g: sample_conditional_gaussian(n, 5, 0., generator=g)[:3]
    knn_lower, _ = _read(_train('knn', sample, 5, 5, k=16), sample, n=128)
    res_lower, _ = _read(_train('residual', sample, 5, 5), sample, n=128)
    assert knn_lower > res_lower + 0.3, (knn_lower, res_lower)

# ---- benchmarks off the additive assumption, and the residual's check of its assumption ----

from factorcl_nb.conditional import (RESIDUAL_THRESHOLD, SCALE_SPREADS, multiplicative_gain, residual_dependence,
                                     sample_multiplicative_gaussian, sample_scale_conditional_gaussian,
                                     true_residual_dependence)
import warnings
from scipy import integrate

def _normal_logpdf(v, mean, var): return -(v - mean) ** 2 / (2 * var) - 0.5 * torch.log(2 * math.pi * var)

def test_every_benchmark_names_its_dependence():
    assert sample_conditional_gaussian(4, 5, 1.)[-1]['dependence'] == 'additive'
    assert sample_discrete_conditional_gaussian(4, 5, 1.)[-1]['dependence'] == 'additive'
    assert sample_scale_conditional_gaussian(4, 5, 1.)[-1]['dependence'] == 'scale'
    assert sample_multiplicative_gaussian(4, 5, 1.)[-1]['dependence'] == 'multiplicative'

@pytest.mark.parametrize('dim,cmi', [(1, 0.5), (5, 2.), (5, 4.)])
def test_scale_closed_form_against_monte_carlo_of_its_definition(dim, cmi):
    "I(X;Y|C) = E log p(y|x,c)/p(y|c), exact densities, 200k draws; within 4 standard errors of the closed form."
    g = torch.Generator().manual_seed(11)
    x, y, c, labels, truth = sample_scale_conditional_gaussian(200_000, dim, cmi, generator=g, dtype=torch.float64)
    assert abs(truth['cmi'] - cmi) < 1e-9 and abs(truth['concat'] - math.log(4) - cmi) < 1e-9
    w = torch.tensor([0.5, 0.75, 1.25, 1.5], dtype=torch.float64)
    rho = (1 - torch.exp(-2 * cmi * w / dim)).sqrt()[labels, None]
    s = torch.tensor(SCALE_SPREADS, dtype=torch.float64)[labels, None]
    d = (_normal_logpdf(y, s * rho * x, s ** 2 * (1 - rho ** 2)) - _normal_logpdf(y, 0., s ** 2)).sum(1)
    se = d.std().item() / math.sqrt(len(d))
    assert abs(d.mean().item() - truth['cmi']) < 4 * se, (d.mean().item(), truth['cmi'], se)
    assert torch.allclose(y.var(0), (s ** 2).mean() * torch.ones(dim, dtype=torch.float64), rtol=0.03)   # mixed spreads

@pytest.mark.parametrize('dim,cmi', [(1, 0.5), (5, 1.), (5, 3.), (20, 4.)])
def test_multiplicative_closed_form_against_monte_carlo_of_its_definition(dim, cmi):
    g = torch.Generator().manual_seed(12)
    x, y, c, truth = sample_multiplicative_gaussian(200_000, dim, cmi, generator=g, dtype=torch.float64)
    a = multiplicative_gain(cmi, dim)
    assert abs(truth['cmi'] - cmi) < 1e-9 and abs(truth['nce_club'] - dim * a * a) < 1e-12
    d = (_normal_logpdf(y, a * c * x, torch.ones_like(y)) - _normal_logpdf(y, 0., 1 + a * a * c ** 2)).sum(1)
    se = d.std().item() / math.sqrt(len(d))
    assert abs(d.mean().item() - truth['cmi']) < 4 * se, (d.mean().item(), truth['cmi'], se)

def test_multiplicative_gain_rejects_bad_levels():
    assert multiplicative_gain(0., 5) == 0.
    with pytest.raises(ValueError, match='cmi must be a finite number of nats >= 0, got -1.0'): multiplicative_gain(-1., 5)

def _entropy_1d(pdf):
    return -integrate.quad(lambda v: pdf(v) * math.log(pdf(v)) if pdf(v) > 0 else 0., -math.inf, math.inf,
                           epsabs=1e-10, limit=200)[0]

def test_true_residual_dependence_against_quadrature_in_one_dimension():
    "I(C;Y) = h(Y) - h(Y|C) with h(Y) of the mixture density by quadrature; the Monte Carlo within 4 se."
    npdf = lambda v, var: math.exp(-v * v / (2 * var)) / math.sqrt(2 * math.pi * var)
    var = [s * s for s in SCALE_SPREADS]
    h_mix = _entropy_1d(lambda v: sum(npdf(v, s2) for s2 in var) / len(var))
    exact = h_mix - sum(0.5 * math.log(2 * math.pi * math.e * s2) for s2 in var) / len(var)
    mc, se = true_residual_dependence('scale', 1, 1.)
    assert abs(mc - exact) < 4 * se, (mc, exact, se)
    a = multiplicative_gain(1., 1)
    phi = lambda c: math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    p_y = lambda v: integrate.quad(lambda c: phi(c) * npdf(v, 1 + a * a * c * c), -math.inf, math.inf, epsabs=1e-12)[0]
    h_cond = integrate.quad(lambda c: phi(c) * 0.5 * math.log(2 * math.pi * math.e * (1 + a * a * c * c)),
                            -math.inf, math.inf, epsabs=1e-12)[0]
    exact = _entropy_1d(p_y) - h_cond
    mc, se = true_residual_dependence('multiplicative', 1, 1.)
    assert exact > 0.05 and abs(mc - exact) < 4 * se, (mc, exact, se)
    assert true_residual_dependence('additive', 5, 3.) == (0., 0.)
    with pytest.raises(ValueError, match="dependence must be one of .* got 'affine'"): true_residual_dependence('affine', 5, 1.)

def _residual_data(kind, dim, cmi, n=4096, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == 'additive':
        x, y, c, _ = sample_conditional_gaussian(n, dim, cmi, generator=g); return c, y - c   # exact residual
    if kind == 'scale': x, y, c, _, _ = sample_scale_conditional_gaussian(n, dim, cmi, generator=g)
    else: x, y, c, _ = sample_multiplicative_gaussian(n, dim, cmi, generator=g)
    return c, y   # E[Y|C] = 0

@pytest.mark.parametrize('dim,cmi,seed', [(5, 0., 0), (5, 2., 1), (20, 4., 2)])
def test_residual_dependence_is_near_zero_on_additive_residuals(dim, cmi, seed):
    v = residual_dependence(*_residual_data('additive', dim, cmi, seed=seed), seed=seed)
    assert -0.05 < v < RESIDUAL_THRESHOLD, v

@pytest.mark.parametrize('kind,cmi,low', [('scale', 0., 0.3), ('scale', 2., 0.3), ('multiplicative', 3., 0.15)])
def test_residual_dependence_is_clearly_positive_and_below_the_truth_off_additivity(kind, cmi, low):
    "A held-out InfoNCE reading: clearly above 0, and not above the true I(C;R) (Monte Carlo) beyond its noise."
    v = residual_dependence(*_residual_data(kind, 5, cmi))
    truth, se = true_residual_dependence(kind, 5, cmi)
    assert low < v < truth + 0.05, (v, truth)

def test_residual_dependence_leaves_the_global_rng_alone_and_checks_its_input():
    c, r = _residual_data('scale', 5, 1., n=256)
    state = torch.get_rng_state()
    a, b = residual_dependence(c, r, steps=30), residual_dependence(c, r, steps=30)
    assert a == b and torch.equal(state, torch.get_rng_state())
    with pytest.raises(ValueError, match='at least 32 samples, got 10'): residual_dependence(c[:10], r[:10])
    with pytest.raises(ValueError, match='batch sizes must match: c has 256, r has 9'): residual_dependence(c, r[:9])

def _train_residual(sample, c_dim, steps=300):
    torch.manual_seed(0)
    est = ConditionalNCECLUB(5, 5, c_dim, 'residual', critic='separable', hidden_dim=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        train_conditional_critic(est, sample, steps=steps, batch_size=128)
    return est, [w for w in caught if issubclass(w.category, UserWarning) and 'I(C;R)' in str(w.message)]

def test_residual_check_is_silent_on_additive_data():
    for sample, c_dim in [(lambda n, g: sample_conditional_gaussian(n, 5, 2., generator=g)[:3], 5),
                          (lambda n, g: sample_discrete_conditional_gaussian(n, 5, 1., generator=g)[:3], 4)]:
        est, caught = _train_residual(sample, c_dim)
        assert not caught and est.residual_dependence_ < RESIDUAL_THRESHOLD, est.residual_dependence_

@pytest.mark.parametrize('kind', ['scale', 'multiplicative'])
def test_residual_check_warns_off_additivity_and_the_scale_case_reads_above_the_truth(kind):
    if kind == 'scale': sample, c_dim = (lambda n, g: sample_scale_conditional_gaussian(n, 5, 0., generator=g)[:3]), 4
    else: sample, c_dim = (lambda n, g: sample_multiplicative_gaussian(n, 5, 3., generator=g)[:3]), 1
    est, caught = _train_residual(sample, c_dim)
    assert len(caught) == 1 and est.residual_dependence_ > RESIDUAL_THRESHOLD
    msg = str(caught[0].message)
    assert f'I(C;R) = {est.residual_dependence_:.3f} nats' in msg and f'threshold {RESIDUAL_THRESHOLD} nats' in msg
    if kind == 'scale':   # true I(X;Y|C) = 0, I(C;R) = 0.59: the residual estimator reads well above 0
        lower, _ = _read(est, sample)
        assert lower > 0.2, lower

def test_check_residual_needs_the_residual_condition():
    y, c = torch.randn(64, 3), torch.randn(64, 2)
    with pytest.raises(ValueError, match="check_residual needs condition='residual', got 'knn'"):
        ConditionalInfoNCE(3, 3, 2, 'knn', hidden_dim=8).check_residual(y, c)

@pytest.mark.filterwarnings('ignore:condition=.residual. assumes')   # 5 steps: mu is not fitted yet
def test_the_check_changes_no_other_condition_and_no_residual_reading():
    "train_conditional_critic with the check (default) and without it: the same parameters, bit for bit."
    sample = lambda n, g: sample_conditional_gaussian(n, 5, 1., generator=g)[:3]
    for cond in ('concat', 'residual'):
        runs = []
        for check_n in (4096, 0):
            torch.manual_seed(0)
            est = ConditionalNCECLUB(5, 5, 5, cond, critic='separable', hidden_dim=16)
            train_conditional_critic(est, sample, steps=5, batch_size=32, check_n=check_n)
            runs.append([p.detach().clone() for p in est.parameters()] + [torch.rand(1)])   # + the global RNG
        assert all(torch.equal(a, b) for a, b in zip(*runs)), cond

def test_experiment_table_has_the_dependence_column(run_experiment_tiny):
    "conditional_mi at tiny scale: every benchmark kind appears in the table's `dependence` column."
    df, meta = run_experiment_tiny('conditional_mi')
    assert set(df.dependence) == {'additive', 'scale', 'multiplicative'}
    assert set(df[df.dependence == 'scale'].setting) == {'scale'}
    res = df[df.estimator == 'residual']
    assert res.check_icr.notna().all() and res.true_icr.notna().all()
    assert 'by dependence kind' in meta['report'] and "The residual estimator's check" in meta['report']
