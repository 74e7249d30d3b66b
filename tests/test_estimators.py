"Properties of the critics and MI estimators that the paper's bounds rely on."
import math
import pytest, torch
from factorcl_nb.critics import ConcatCritic, SeparableCritic, naive_concat_scores
from factorcl_nb.estimators import (InfoNCE, NCECLUB, CLUB, infonce_bound, nce_club_bound, same_class,
                                    sample_gaussian_pair, train_critic_on_gaussians)

@pytest.mark.parametrize('hidden_layers', [1, 2, 3])
def test_concat_critic_equals_naive_tiled_mlp_float64(hidden_layers):
    torch.manual_seed(hidden_layers)
    crit = ConcatCritic(9, 4, hidden_dim=32, hidden_layers=hidden_layers, activation='tanh').double()
    x = torch.randn(13, 9, dtype=torch.float64, requires_grad=True)
    y = torch.randn(13, 4, dtype=torch.float64, requires_grad=True)
    s, s_ref = crit(x, y), naive_concat_scores(crit, x, y)
    assert torch.allclose(s, s_ref, atol=1e-8, rtol=0)
    w = torch.randn_like(s)
    params = [x, y, *crit.parameters()]
    for a, b in zip(torch.autograd.grad((s * w).sum(), params), torch.autograd.grad((s_ref * w).sum(), params)):
        assert torch.allclose(a, b, atol=1e-8, rtol=0)

@pytest.mark.parametrize('chunk', [1, 4, 7, 100])
def test_chunked_equals_unchunked(chunk):
    torch.manual_seed(0)
    full = ConcatCritic(6, 6, hidden_dim=16, hidden_layers=2).double()
    chunked = ConcatCritic(6, 6, hidden_dim=16, hidden_layers=2, chunk_size=chunk).double()
    chunked.load_state_dict(full.state_dict())
    x, y = torch.randn(2, 11, 6, dtype=torch.float64)
    s1, s2 = full(x, y), chunked(x, y)
    assert torch.allclose(s1, s2, atol=1e-12)
    g1 = torch.autograd.grad(infonce_bound(s1), list(full.parameters()))
    g2 = torch.autograd.grad(infonce_bound(s2), list(chunked.parameters()))
    for a, b in zip(g1, g2): assert torch.allclose(a, b, atol=1e-10)

def test_infonce_never_exceeds_log_n_and_nce_club_dominates():
    g = torch.Generator().manual_seed(0)
    for n in [2, 8, 64, 257]:
        for scale in [0.1, 1, 10, 100]:
            s = torch.randn(n, n, generator=g) * scale + torch.eye(n) * scale
            assert infonce_bound(s) <= math.log(n) + 1e-5
            assert nce_club_bound(s) >= infonce_bound(s) - 1e-5

@pytest.mark.parametrize('critic', ['concat', 'separable'])
def test_same_critic_nce_club_above_infonce(critic):
    est = NCECLUB(5, 5, critic=critic, hidden_dim=16)
    x, y = sample_gaussian_pair(32, 5, 1.0, torch.Generator().manual_seed(2))
    lo, hi = est.both(x, y)
    assert hi >= lo - 1e-6
    assert torch.isclose(hi, est(x, y)) and torch.isclose(lo, -est.learning_loss(x, y))

def test_masked_bounds_condition_on_labels():
    c = torch.arange(64) % 4
    s = -(c[:, None] - c[None, :]).abs().float() * 20   # critic sees only the label
    assert infonce_bound(s) > 1.0
    assert abs(float(infonce_bound(s, same_class(c)))) < 1e-4

@pytest.mark.parametrize('bound', [infonce_bound, nce_club_bound])
def test_masks_without_the_positive_pair_are_refused(bound):
    s = torch.randn(6, 6)
    off_diagonal = same_class(torch.arange(6) % 2); off_diagonal[2, 2] = False        # row 2 keeps other candidates
    with pytest.raises(ValueError, match=r'mask must be True on the diagonal.*False in 1 row\(s\) \(first: row 2\)'):
        bound(s, off_diagonal)
    empty = same_class(torch.arange(6) % 2); empty[4] = False
    with pytest.raises(ValueError, match=r'at least the positive pair in every row, got 1 all-False row\(s\) \(first: row 4\)'):
        bound(s, empty)
    assert torch.isfinite(bound(s, same_class(torch.arange(6) % 2)))              # a valid mask still works


def test_bounds_pinned_to_hand_computed_values_on_a_lopsided_matrix():
    """InfoNCE and NCE-CLUB of small lopsided score matrices against the formulas, term by term with math.log/exp:
    I_NCE = mean_i [s_ii - log((1/|J_i|) sum_{j in J_i} exp s_ij)], I_CLUB = mean_i [s_ii - (1/|J_i|) sum_{j in J_i} s_ij],
    with J_i all columns (unmasked) or the columns the mask allows in row i. A logsumexp or mean over the wrong
    axis gives other values on these matrices (rows and columns differ)."""
    e, log = math.exp, math.log
    # [[0, 0], [5, 0]]: row 0 holds only zeros, row 1 a large off-diagonal score
    s = torch.tensor([[0., 0.], [5., 0.]], dtype=torch.float64)
    assert float(infonce_bound(s)) == pytest.approx(((0 - log((e(0) + e(0)) / 2)) + (0 - log((e(5) + e(0)) / 2))) / 2, abs=1e-12)
    assert float(nce_club_bound(s)) == pytest.approx(((0 - (0 + 0) / 2) + (0 - (5 + 0) / 2)) / 2, abs=1e-12)
    m = torch.tensor([[True, True], [False, True]])   # row 1 may not use column 0: its only candidate is itself
    assert float(infonce_bound(s, m)) == pytest.approx(((0 - log((e(0) + e(0)) / 2)) + (0 - log(e(0) / 1))) / 2, abs=1e-7)
    assert float(nce_club_bound(s, m)) == pytest.approx(((0 - (0 + 0) / 2) + (0 - 0 / 1)) / 2, abs=1e-12)
    # a 3x3 matrix whose rows and columns differ, and a mask with 3, 2 and 1 candidates per row
    s = torch.tensor([[1., 4., 2.], [5., 0., 0.], [0., 3., 1.]], dtype=torch.float64)
    rows = [(1., [1., 4., 2.]), (0., [5., 0., 0.]), (1., [0., 3., 1.])]
    assert float(infonce_bound(s)) == pytest.approx(sum(d - log(sum(map(e, r)) / 3) for d, r in rows) / 3, abs=1e-12)
    assert float(nce_club_bound(s)) == pytest.approx(sum(d - sum(r) / 3 for d, r in rows) / 3, abs=1e-12)
    m = torch.tensor([[True, True, True], [True, True, False], [False, False, True]])
    allowed = [(1., [1., 4., 2.]), (0., [5., 0.]), (1., [1.])]
    assert float(infonce_bound(s, m)) == pytest.approx(sum(d - log(sum(map(e, r)) / len(r)) for d, r in allowed) / 3, abs=1e-7)
    assert float(nce_club_bound(s, m)) == pytest.approx(sum(d - sum(r) / len(r) for d, r in allowed) / 3, abs=1e-12)

def test_gaussian_acceptance_dim20_mi2():
    "Issue 2: dim 20, batch 64, true MI 2 nats, 1500 critic steps: InfoNCE in [1.4, 2.05], NCE-CLUB in [2.0, 5.0]."
    torch.manual_seed(0)
    est = train_critic_on_gaussians(NCECLUB(20, 20, hidden_dim=512), dim=20, mi=2.0, steps=1500, batch_size=64, lr=5e-3)
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        lo, hi = map(torch.stack, zip(*[est.both(*sample_gaussian_pair(64, 20, 2.0, g)) for _ in range(100)]))
    assert 1.4 <= lo.mean() <= 2.05, float(lo.mean())
    assert 2.0 <= hi.mean() <= 5.0, float(hi.mean())

def test_club_upper_bounds_gaussian_mi_after_training():
    torch.manual_seed(0)
    club = CLUB(5, 5, hidden_dim=64)
    opt = torch.optim.Adam(club.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        x, y = sample_gaussian_pair(128, 5, 2.0, g)
        opt.zero_grad(); club.learning_loss(x, y).backward(); opt.step()
    with torch.no_grad():
        est = torch.stack([club(*sample_gaussian_pair(512, 5, 2.0, g)) for _ in range(20)]).mean()
    # CLUB with the true conditional q(y|x) = N(rho x, (1 - rho^2) I) has the closed form
    # d * rho^2 / (1 - rho^2): an upper bound on the true MI (2 nats), loose in this regime.
    from factorcl_nb.estimators import gaussian_rho
    rho2 = gaussian_rho(2.0, 5) ** 2
    closed_form = 5 * rho2 / (1 - rho2)
    assert est >= 2.0
    assert abs(float(est) - closed_form) / closed_form < 0.1, (float(est), closed_form)

@pytest.mark.parametrize('make', [lambda: InfoNCE(4, 3, hidden_dim=8), lambda: NCECLUB(4, 3, hidden_dim=8),
                                  lambda: CLUB(4, 3, hidden_dim=8), lambda: InfoNCE(4, 3, critic='separable')])
def test_bad_inputs_name_the_argument(make):
    est = make()
    x, y = torch.randn(10, 4), torch.randn(10, 3)
    with pytest.raises(ValueError, match='batch sizes must match: x has 10, y has 9'): est(x, y[:9])
    with pytest.raises(ValueError, match=r'x must have shape \[n, 4\] \(rank 2\)'): est(x[None], y)
    with pytest.raises(ValueError, match='y must have 3 features'): est(x, torch.randn(10, 5))
    with pytest.raises(ValueError, match='x must be finite'): est(x.masked_fill(x > 1, float('nan')), y)
    with pytest.raises(ValueError, match='y must be finite'): est(x, y.masked_fill(y > 1, float('inf')))
    with pytest.raises(ValueError, match='x must be a torch.Tensor'): est(x.numpy(), y)

def test_unknown_critic_and_bad_options():
    with pytest.raises(ValueError, match=r"critic must be one of \['concat', 'separable'\].*got 'mlp'"): NCECLUB(3, 3, critic='mlp')
    with pytest.raises(ValueError, match='chunk_size must be a positive int'): InfoNCE(3, 3, chunk_size=-2)
    with pytest.raises(ValueError, match='hidden_layers must be a positive int'): ConcatCritic(3, 3, hidden_layers=0)
    with pytest.raises(ValueError, match='scores must be a square'): infonce_bound(torch.zeros(2, 3))

# --- mixed precision: the reductions of a bound run in float32 -------------------------------------------------------
@pytest.mark.parametrize('bound', [infonce_bound, nce_club_bound])
@pytest.mark.parametrize('masked', [False, True])
def test_bf16_bounds_and_gradients_match_float64_on_large_scores(bound, masked):
    """A bf16 score matrix with a large common offset (3000: bf16 spacing 16 there), bounded under bf16 autocast,
    gives the float64 bound of the very same values and its gradient. Reduced in bf16 the bound is off by nats
    and InfoNCE's softmax gradient by more than 100%."""
    g = torch.Generator().manual_seed(0)
    n = 64
    s = (3000 + 3 * torch.randn(n, n, generator=g) + 4 * torch.eye(n)).bfloat16().requires_grad_()
    mask = same_class(torch.arange(n) % 4) if masked else None
    with torch.autocast('cpu', dtype=torch.bfloat16): b = bound(s, mask)
    b.backward()
    s64 = s.detach().double().requires_grad_()
    b64 = bound(s64, mask); b64.backward()
    assert abs(float(b.detach()) - float(b64.detach())) < 2e-3, (float(b.detach()), float(b64.detach()))
    assert float((s.grad.double() - s64.grad).norm() / s64.grad.norm()) < 1e-2
    assert b.dtype == torch.float32

@pytest.mark.parametrize('critic', ['concat', 'separable'])
def test_bf16_estimator_reads_its_float32_bound(critic):
    "An NCECLUB estimator under bf16 autocast returns float32 bounds within bf16's rounding of the scores of float32."
    torch.manual_seed(0)
    est = NCECLUB(5, 5, critic=critic, hidden_dim=16)
    x, y = sample_gaussian_pair(32, 5, 1.0, torch.Generator().manual_seed(2))
    lo32, hi32 = est.both(x, y)
    with torch.autocast('cpu', dtype=torch.bfloat16): lo, hi = est.both(x, y)
    assert lo.dtype == hi.dtype == torch.float32
    assert abs(float(lo - lo32)) < 0.05 and abs(float(hi - hi32)) < 0.05

def test_float32_and_float64_scores_are_reduced_as_given():
    "The upcast touches half precision only: float32 and float64 scores reach the reductions as the very same tensor."
    from factorcl_nb.estimators import _full_precision
    for dt in (torch.float32, torch.float64):
        s = torch.randn(8, 8, dtype=dt)
        assert _full_precision(s) is s and infonce_bound(s).dtype == nce_club_bound(s).dtype == dt
    assert _full_precision(torch.randn(8, 8).half()).dtype == torch.float32
