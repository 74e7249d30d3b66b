"The fused concat critic (PairMLP) computes the tiled reference's scores and gradients, and only the products it needs."
import pytest, torch
from torch.utils.flop_counter import FlopCounterMode
from factorcl_nb.critics import ConcatCritic, naive_concat_scores

def grads(critic, x, y, w, scores_fn):
    "Scores and the gradients of sum(w * scores) w.r.t. x, y and the critic's trained parameters."
    wrt = [x, y, *[p for p in critic.parameters() if p.requires_grad]]
    s = scores_fn(critic, x, y)
    return [s, *torch.autograd.grad((s.float() * w).sum(), wrt)]

def setup(layers=2, n=13, m=9, dx=5, dy=4, h=24, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    critic = ConcatCritic(dx, dy, hidden_dim=h, hidden_layers=layers, **kw).to(dtype)
    x = torch.randn(n, dx, dtype=dtype, requires_grad=True)
    y = torch.randn(m, dy, dtype=dtype, requires_grad=True)
    return critic, x, y, torch.randn(n, m, dtype=torch.float32 if dtype != torch.float64 else dtype)

@pytest.mark.parametrize('layers', [1, 2, 3])
@pytest.mark.parametrize('chunk_size', [None, 4])
@pytest.mark.parametrize('frozen', [False, True])
@pytest.mark.parametrize('block_pairs', [1, 20, 10**6])   # one row per block, 2 rows with a short last block, one block
def test_float64_equals_tiled_reference(layers, chunk_size, frozen, block_pairs):
    critic, x, y, w = setup(layers, chunk_size=chunk_size, block_pairs=block_pairs)
    assert critic.fused
    for p in critic.parameters(): p.requires_grad_(not frozen)
    ours = grads(critic, x, y, w, lambda c, a, b: c(a, b))
    ref = grads(critic, x, y, w, naive_concat_scores)
    assert len(ours) == len(ref) == 3 + (0 if frozen else 2 * (layers + 1))
    for a, b in zip(ours, ref): torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)

def test_frozen_critic_gets_no_weight_gradient_and_module_path_agrees():
    critic, x, y, w = setup(2)
    slow = ConcatCritic(5, 4, hidden_dim=24, hidden_layers=2, fused=False).double()
    slow.load_state_dict(critic.state_dict())
    for a, b in zip(grads(critic, x, y, w, lambda c, a, b: c(a, b)), grads(slow, x, y, w, lambda c, a, b: c(a, b))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    trained = grads(critic, x, y, w, lambda c, a, b: c(a, b))            # scores, dx, dy, every weight's gradient
    assert len(trained) == 3 + 6 and all(g.abs().sum() > 0 for g in trained[3:])   # the loss reaches every weight
    for p in critic.parameters(): p.requires_grad_(False)
    (critic(x, y).float() * w).sum().backward()                         # as `grads` weights the scores
    assert all(p.grad is None for p in critic.parameters())            # so no gradient means: frozen
    torch.testing.assert_close(x.grad, trained[1], rtol=1e-12, atol=1e-12)   # and freezing leaves dx, dy unchanged
    torch.testing.assert_close(y.grad, trained[2], rtol=1e-12, atol=1e-12)

@pytest.mark.parametrize('chunk_size', [None, 8])
def test_bf16_autocast_within_bf16_tolerance(chunk_size):
    "Under bf16 autocast the fused critic is as close to the float64 result as the module path under autocast."
    critic, x, y, w = setup(2, n=32, m=32, dx=16, dy=16, h=64, dtype=torch.float32, chunk_size=chunk_size, block_pairs=256)
    slow = ConcatCritic(16, 16, hidden_dim=64, hidden_layers=2, fused=False); slow.load_state_dict(critic.state_dict())
    ref = grads(critic.double(), x.double().detach().requires_grad_(), y.double().detach().requires_grad_(), w.double(),
                naive_concat_scores)
    critic.float()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ours = grads(critic, x, y, w, lambda c, a, b: c(a, b))
        mods = grads(slow, x, y, w, lambda c, a, b: c(a, b))
    assert ours[0].dtype == mods[0].dtype == torch.bfloat16
    for o, m, r in zip(ours, mods, ref):
        assert o.dtype == m.dtype
        scale = r.abs().max().item()
        err_o, err_m = (o.double() - r).abs().max().item() / scale, (m.double() - r).abs().max().item() / scale
        # bf16 keeps 8 bits of mantissa; gradients summed over n*m pairs with cancellations lose more (about 10% of
        # the largest entry here, for either path): wrong math would be off by O(1)
        assert err_o < 0.25, (err_o, err_m)
        assert err_o <= 2 * err_m + 2e-3, (err_o, err_m)    # and it is not worse than autocast on the modules

def flops(critic, x, y, frozen):
    for p in critic.parameters(): p.requires_grad_(not frozen)
    with FlopCounterMode(display=False) as fc: critic(x, y).sum().backward()
    return fc.get_total_flops()

def test_products_executed():
    """Counted FLOPs: stored (unchunked) = forward + input gradient of each h x h layer, + weight gradient when trained;
    chunked adds exactly one recomputed forward of the h x h layers."""
    n, m, dx, dy, h, layers = 12, 10, 5, 4, 16, 3
    critic, x, y, _ = setup(layers, n, m, dx, dy, h, block_pairs=30)
    pairs_hh = 2 * n * m * h * h * (layers - 1)              # one pass of the h x h products
    first = 2 * (n * dx + m * dy) * h                        # one pass of the per-sample first layer
    # (the h x 1 layer is a matrix-vector product, which torch.utils.flop_counter does not count)
    frozen = flops(critic, x, y, True)
    assert frozen == 2 * pairs_hh + 2 * first
    assert flops(critic, x, y, False) == frozen + pairs_hh + first
    critic.chunk_size = 4
    assert flops(critic, x, y, True) == frozen + pairs_hh

def test_scratch_buffers_are_reused_and_safe_in_any_mode():
    "Block buffers are reused across calls (CPU), grow when a larger block needs it, and work after inference_mode."
    from factorcl_nb import critics
    critics.release_scratch()
    critic, x, y, w = setup(2, n=13, m=9, block_pairs=40)
    with torch.inference_mode(): s0 = critic(x, y)                 # buffers first made inside inference mode
    pool = list(critics._scratch.__dict__[torch.float64])
    ours, ref = grads(critic, x, y, w, lambda c, a, b: c(a, b)), grads(critic, x, y, w, naive_concat_scores)
    for a, b in zip(ours, ref): torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(s0, ours[0], rtol=0, atol=0)
    again = critics._scratch.__dict__[torch.float64]
    assert all(p is q for p, q in zip(pool, again))                 # the forward's buffers were reused
    critic.block_pairs = 10**6                                      # one block: larger buffers replace the small ones
    torch.testing.assert_close(critic(x, y), ref[0], rtol=1e-10, atol=1e-10)
    assert critics._scratch.__dict__[torch.float64][0].numel() >= 13 * 9 * 24
    critics.release_scratch()
    assert torch.float64 not in critics._scratch.__dict__

@pytest.mark.parametrize('n, chunk_size', [(10, 4), (7, 3), (9, 8), (5, 2)])
def test_chunked_module_path_without_gradients_scores_every_row(n, chunk_size):
    "Under no_grad the module path scores chunk by chunk: the last, partial chunk must be scored too."
    torch.manual_seed(0)
    whole = ConcatCritic(5, 4, hidden_dim=24, hidden_layers=2, fused=False).double()
    chunked = ConcatCritic(5, 4, hidden_dim=24, hidden_layers=2, fused=False, chunk_size=chunk_size).double()
    chunked.load_state_dict(whole.state_dict())
    x, y = torch.randn(n, 5, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    assert n % chunk_size != 0 and not chunked.fused
    with torch.no_grad(): scores, ref = chunked(x, y), whole(x, y)
    assert scores.shape == ref.shape == (n, 6)
    assert torch.equal(scores, ref)
