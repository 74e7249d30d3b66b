"Tests of factorcl_nb.encoders: shapes, padding invariance, per-sample references, gradients, errors."
import pytest
import torch
from torch import nn
from factorcl_nb.encoders import (MLP, mlp_encoder, ProjectionHead, TransformerEncoder, GRUEncoder, padding_mask,
                                  masked_mean, last_real_step, sinusoidal_positions, activation_layer)


def left_padded(n=8, T=10, D=4, seed=0):
    "Left-padded sequences (MultiBench's storage); sample 0 has no padding, real steps are never all zero."
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (n,), generator=g); lengths[0] = T
    x = torch.randn(n, T, D, generator=g) + 0.5
    x[torch.arange(T) < (T - lengths)[:, None]] = 0.
    return x, lengths


def repad(x, lengths, before, T_new):
    "The same sequences with `before` zero steps in front and zeros after, to T_new steps."
    out = torch.zeros(len(x), T_new, x.shape[2])
    for i, L in enumerate(lengths.tolist()): out[i, before:before + L] = x[i, x.shape[1] - L:]
    return out


def no_zero_grads(module):
    return [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]


def test_mlp_structure_and_closed_form():
    torch.manual_seed(0)
    m = MLP(5, [7, 3], 2, activation='gelu')
    linears = [l for l in m.net if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(5, 7), (7, 3), (3, 2)]
    x = torch.randn(4, 5)
    gelu = nn.GELU()
    assert torch.allclose(m(x), linears[2](gelu(linears[1](gelu(linears[0](x))))), atol=1e-6)
    assert m.out_dim == 2 and m.in_dim == 5
    m.train(); assert not any(isinstance(l, nn.Dropout) for l in m.net)
    assert sum(isinstance(l, nn.Dropout) for l in MLP(5, [7, 3], 2, dropout=0.2).net) == 2


def test_authors_sizes():
    enc = mlp_encoder(100)
    sizes = [(l.in_features, l.out_features) for l in enc.net if isinstance(l, nn.Linear)]
    assert sizes == [(100, 512), (512, 512), (512, 512), (512, 128)] and enc.out_dim == 128
    head = ProjectionHead()
    assert [type(l) for l in head.net] == [nn.Linear, nn.ReLU, nn.Linear] and head.out_dim == 128
    assert mlp_encoder(10, out_dim=3, n_hidden=0).net[0].in_features == 10
    z = head(enc(torch.randn(3, 100)))
    z.sum().backward()
    assert z.shape == (3, 128) and no_zero_grads(enc) == [] and no_zero_grads(head) == []


def test_pooling_helpers_against_loops():
    h = torch.randn(5, 6, 3)
    pad = torch.rand(5, 6) < 0.5
    pad[:, 2] = False
    mean_ref = torch.stack([h[i][~pad[i]].mean(0) for i in range(5)])
    last_ref = torch.stack([h[i][~pad[i]][-1] for i in range(5)])
    assert torch.allclose(masked_mean(h, pad), mean_ref, atol=1e-6)
    assert torch.equal(last_real_step(h, pad), last_ref)


def test_positions_ignore_padding():
    pad = torch.tensor([[True, True, False, False, False], [False, False, False, True, True]])
    pe = sinusoidal_positions(pad, 6)
    assert torch.equal(pe[0, 2:], pe[1, :3])
    assert torch.allclose(pe[1, 0], torch.tensor([0., 1.] * 3))      # position 0: sin 0, cos 0


@pytest.mark.parametrize('pool', ['mean', 'last'])
@pytest.mark.parametrize('positional', [True, False])
def test_transformer_padding_invariance_and_reference(pool, positional):
    torch.manual_seed(0)
    x, lengths = left_padded()
    enc = TransformerEncoder(4, dim=10, n_layers=2, n_heads=2, out_dim=6, pool=pool, positional=positional).eval()
    with torch.no_grad():
        base = enc(x)
        assert base.shape == (8, 6)
        for before, T_new in [(0, 10), (0, 17), (5, 16), (7, 17)]:       # right, more, both sides
            assert torch.allclose(enc(repad(x, lengths, before, T_new)), base, atol=1e-5)
        alone = torch.cat([enc(x[i:i + 1, 10 - L:]) for i, L in enumerate(lengths.tolist())])
        assert torch.allclose(alone, base, atol=1e-5)
        # an explicit padding mask gives the same result as the detected one
        assert torch.allclose(enc(x, padding=padding_mask(x)), base, atol=1e-6)


def test_transformer_order_sensitivity():
    torch.manual_seed(1)
    x, _ = left_padded()
    flipped = x.flip(1)                                  # reversed order (padding now on the right)
    with torch.no_grad():
        blind = TransformerEncoder(4, dim=10, n_layers=1, n_heads=2, positional=False).eval()
        assert torch.allclose(blind(flipped), blind(x), atol=1e-5)
        seeing = TransformerEncoder(4, dim=10, n_layers=1, n_heads=2).eval()
        assert not torch.allclose(seeing(flipped), seeing(x), atol=1e-3)


def test_transformer_gradients_empty_sequence_defaults():
    torch.manual_seed(0)
    x, _ = left_padded()
    x = torch.cat([x, torch.zeros(1, 10, 4)])
    enc = TransformerEncoder(4, dim=10, n_layers=2, n_heads=5, out_dim=3, pool='last')
    out = enc(x)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    assert no_zero_grads(enc) == []
    default = TransformerEncoder(20)
    assert default.out_dim == 40 and len(default.layers.layers) == 5
    assert default.layers.layers[0].self_attn.num_heads == 5
    assert isinstance(default.proj, nn.Conv1d) and default.proj.kernel_size == (1,)


@pytest.mark.parametrize('pool', ['last', 'mean'])
def test_gru_padding_invariance_and_reference(pool):
    torch.manual_seed(0)
    x, lengths = left_padded()
    enc = GRUEncoder(4, hidden_dim=6, pool=pool).eval()
    with torch.no_grad():
        base = enc(x)
        assert base.shape == (8, 6) and enc.out_dim == 6
        for before, T_new in [(0, 10), (0, 15), (4, 15)]:
            assert torch.allclose(enc(repad(x, lengths, before, T_new)), base, atol=1e-5)
        outs = [enc.gru(x[i:i + 1, 10 - L:])[0][0] for i, L in enumerate(lengths.tolist())]
        ref = torch.stack([o[-1] if pool == 'last' else o.mean(0) for o in outs])
        assert torch.allclose(base, ref, atol=1e-5)


def test_gru_flatten_mimic():
    torch.manual_seed(0)
    enc = GRUEncoder(12, 30, pool='flatten', seq_len=24)
    assert enc.out_dim == 720
    ts = torch.randn(3, 24, 12)
    out = enc(ts)
    assert torch.allclose(out, enc.gru(ts)[0].flatten(1), atol=1e-6)
    out.sum().backward()
    assert no_zero_grads(enc) == []
    projected = GRUEncoder(12, 30, out_dim=16, pool='flatten', seq_len=24)
    assert projected(ts).shape == (3, 16) and projected.out_dim == 16


def test_gru_stacked_gradients_and_empty():
    torch.manual_seed(0)
    x, _ = left_padded()
    enc = GRUEncoder(4, 5, out_dim=2, n_layers=2, dropout=0.1)
    batch = torch.cat([x, torch.zeros(2, 10, 4)])
    with torch.no_grad(): ev = enc.eval()(batch)
    assert torch.equal(ev[-1], ev[-2])               # two empty sequences read the same way (dropout off)
    out = enc.train()(batch)
    assert out.shape == (10, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert no_zero_grads(enc) == []


@pytest.mark.parametrize('call, message', [
    (lambda: MLP(4, [8], 2)(torch.randn(3, 5)), 'x must have shape [n, 4], got (3, 5)'),
    (lambda: MLP(4, [8], 2)(torch.randn(3, 2, 4)), 'x must have shape [n, 4]'),
    (lambda: MLP(0, [8], 2), 'in_dim must be a positive int, got 0'),
    (lambda: MLP(4, [8], 2, activation='sigmoidal'), 'activation must be one of'),
    (lambda: MLP(4, [8], 2, dropout=1.5), 'dropout must be a number in [0, 1)'),
    (lambda: mlp_encoder(4, n_hidden=1.5), 'n_hidden must be an int >= 0'),
    (lambda: activation_layer('nope'), 'activation must be one of'),
    (lambda: TransformerEncoder(4, dim=10, n_heads=3), 'dim must be divisible by n_heads'),
    (lambda: TransformerEncoder(4, pool='cls'), "pool must be 'mean' or 'last'"),
    (lambda: TransformerEncoder(4, out_dim=0), 'out_dim must be a positive int'),
    (lambda: TransformerEncoder(4, dim=10, n_heads=2)(torch.randn(2, 3, 5)), 'x must have 4 features per time step'),
    (lambda: TransformerEncoder(4, dim=10, n_heads=2)(torch.randn(2, 4)), '[n, T, D] (rank 3)'),
    (lambda: TransformerEncoder(4, dim=10, n_heads=2)(torch.randn(2, 3, 4), padding=torch.ones(2, 4, dtype=torch.bool)),
     'padding must be a bool tensor of shape (2, 3)'),
    (lambda: GRUEncoder(4, pool='attention'), "pool must be 'last', 'mean' or 'flatten'"),
    (lambda: GRUEncoder(4, pool='flatten'), 'seq_len (required by pool="flatten") must be a positive int'),
    (lambda: GRUEncoder(4, pool='flatten', seq_len=5)(torch.randn(2, 6, 4)), "seq_len=5 time steps"),
    (lambda: GRUEncoder(4)(torch.randn(2, 6, 3)), 'x must have 4 features per time step'),
    (lambda: GRUEncoder(4)(torch.randn(2, 6, 4).long()), 'floating-point'),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as e: call()
    assert message in str(e.value), str(e.value)


def test_one_mlp_builder_for_encoders_heads_and_critics():
    "mlp_layers builds every MLP: MLP (backbones, heads) and the critics' mlp give its modules, parameters and outputs."
    from factorcl_nb.encoders import mlp_layers
    from factorcl_nb.critics import mlp, make_activation, SeparableCritic
    def built(make):
        torch.manual_seed(0)
        return make()
    x = torch.randn(5, 6)
    for make, ref in [(lambda: mlp_encoder(6, 3, 8, 2, 'gelu'), lambda: mlp_layers(6, [8, 8], 3, 'gelu')),
                      (lambda: ProjectionHead(6, 8, 3), lambda: mlp_layers(6, [8], 3)),
                      (lambda: mlp(6, 8, 3, 2, 'elu'), lambda: mlp_layers(6, [8, 8], 3, 'elu'))]:
        a, b = built(make), built(ref)
        net = a.net if isinstance(a, MLP) else a
        assert [type(l) for l in net] == [type(l) for l in b]
        assert all(torch.equal(p, q) for p, q in zip(net.state_dict().values(), b.state_dict().values()))
        assert torch.equal(a(x), b(x))
    sep = built(lambda: SeparableCritic(6, 4, hidden_dim=8, embed_dim=3, hidden_layers=2, activation='tanh'))
    ref = built(lambda: (mlp_layers(6, [8, 8], 3, 'tanh'), mlp_layers(4, [8, 8], 3, 'tanh')))
    assert all(torch.equal(p, q) for p, q in zip(sep.parameters(), [*ref[0].parameters(), *ref[1].parameters()]))
    # one activation map: the critics' names are the encoders' names
    assert make_activation is activation_layer and type(make_activation('elu')) is nn.ELU
    with pytest.raises(ValueError, match="activation must be one of .*'elu'.*got 'swish'"): mlp(6, 8, 3, activation='swish')
    with pytest.raises(ValueError, match='hidden_dims entries must be a positive int, got 0'): mlp_layers(6, [8, 0], 3)
    assert [type(l) for l in mlp_layers(6, [8], 3, dropout=0.2)] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
