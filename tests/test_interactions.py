"Interaction tasks: views hide every label from a linear probe, an MLP reads them, and the PID is exact."
import itertools, math, time

import pytest
import torch

from factorcl_nb.data.interactions import (
    LATENT_BITS, TASKS, TASK_BITS, InteractionData, decoding_error_bound, exact_pid,
    label_entropy, make_interactions, pid_table, probe_accuracies, task_label, walsh_basis,
    walsh_codebook)

PARTS = ('redundant', 'unique1', 'unique2', 'synergy')


@pytest.fixture(scope='module')
def data():
    return make_interactions(10000, seed=0)


# --- labels and layout ---------------------------------------------------------------

def test_labels_follow_their_definitions(data):
    b = data.bits
    assert torch.equal(data.labels['redundancy'], b['r'])
    assert torch.equal(data.labels['unique1'], b['u1'])
    assert torch.equal(data.labels['unique2'], b['u2'])
    assert torch.equal(data.labels['synergy'], b['b1'] ^ b['b2'])
    assert torch.equal(data.labels['mixed'], 4 * b['r'] + 2 * b['u1'] + (b['b1'] ^ b['b2']))
    assert set(data.labels) == set(TASKS)
    assert all(v.dtype == torch.int64 for v in data.labels.values())


def test_views_are_codebook_rows_plus_noise(data):
    assert data.x1.shape == data.x2.shape == (10000, 32)
    assert data.x1.dtype == data.x2.dtype == torch.float32
    for v, x, cb in ((1, data.x1, data.codebook1), (2, data.x2, data.codebook2)):
        res = x.double() - cb[data.view_patterns(v)]
        assert abs(float(res.std()) - 0.1) < 0.005
        # the nearest row gives the pattern back: the view determines its bits
        assert torch.equal(torch.cdist(x.double(), cb).argmin(1), data.view_patterns(v))


def test_each_view_sees_only_its_bits(data):
    # view 1's pattern is a function of (r, u1, b1, nuisance1): equal patterns, equal bits
    p1, p2 = data.view_patterns(1), data.view_patterns(2)
    for name in ('r', 'u1', 'b1'):
        assert (data.bits[name][p1 == 5] == data.bits[name][p1 == 5][0]).all()
    assert not (data.bits['u2'][p1 == 5] == data.bits['u2'][p1 == 5][0]).all()
    assert not (data.bits['u1'][p2 == 5] == data.bits['u1'][p2 == 5][0]).all()


def test_codebook_has_no_low_order_walsh_terms():
    H, order = walsh_basis(6)
    assert torch.allclose(H.T @ H, 64 * torch.eye(64, dtype=H.dtype))
    T = walsh_codebook(6, 16, torch.Generator().manual_seed(1))
    coef = H.T @ T / 64
    assert coef[order < 3].abs().max() < 1e-12 and coef[order >= 3].abs().max() > 0.05
    bits = torch.tensor(list(itertools.product([0, 1], repeat=6)))
    for i, j in itertools.combinations(range(6), 2):
        for a, b in itertools.product((0, 1), repeat=2):
            m = T[(bits[:, i] == a) & (bits[:, j] == b)].mean(0)
            assert (m - T.mean(0)).abs().max() < 1e-12
    assert torch.cdist(T, T).add(1e9 * torch.eye(64, dtype=T.dtype)).min() > 0.5  # injective


def test_deterministic_per_seed_and_split():
    a, b = make_interactions(300, seed=5), make_interactions(300, seed=5)
    assert torch.equal(a.x1, b.x1) and torch.equal(a.labels['mixed'], b.labels['mixed'])
    assert not torch.equal(a.x1, make_interactions(300, seed=6).x1)
    tr, te = a.split(0.25, seed=2)
    assert (len(tr), len(te)) == (225, 75) and isinstance(te, InteractionData)
    assert torch.equal(te.labels['synergy'], task_label('synergy', te.bits))
    assert torch.equal(torch.cdist(te.x2.double(), te.codebook2).argmin(1), te.view_patterns(2))


def test_generation_is_fast():
    make_interactions(100)
    t0 = time.perf_counter(); make_interactions(10000, seed=1)
    assert time.perf_counter() - t0 < 1.0


def test_noise_bound(data):
    assert decoding_error_bound(data, 1, log10=True) < -12
    noisy = make_interactions(2000, seed=0, noise=1.0)
    bound = decoding_error_bound(noisy, 1)
    nearest = torch.cdist(noisy.x1.double(), noisy.codebook1).argmin(1)
    err = float((nearest != noisy.view_patterns(1)).float().mean())
    assert 0 < err <= bound + 0.02
    assert math.isclose(bound, 10 ** decoding_error_bound(noisy, 1, log10=True), rel_tol=1e-9)


# --- linear probe vs MLP ---------------------------------------------------------------

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_linear_probe_near_chance_mlp_decodes(seed):
    acc = probe_accuracies(seeds=(seed,)).set_index('task')
    for t in ('unique1', 'unique2', 'synergy'):
        assert acc.loc[t, 'linear'] <= 0.60, acc
    assert (acc.mlp >= 0.95).all(), acc


# --- exact PID -------------------------------------------------------------------------

HAND = {'redundancy': (1, 0, 0, 0), 'unique1': (0, 1, 0, 0), 'unique2': (0, 0, 1, 0),
        'synergy': (0, 0, 0, 1), 'mixed': (1, 1, 0, 1)}


@pytest.fixture(scope='module')
def pid():
    return pid_table()


def test_pid_parts_sum_to_total(pid):
    for t in TASKS:
        assert abs(sum(pid.loc[t, p] for p in PARTS) - pid.loc[t, 'total']) < 1e-4


@pytest.mark.parametrize('task', list(HAND))
def test_pid_matches_hand_values(pid, task):
    for p, want in zip(PARTS, HAND[task]):
        assert abs(pid.loc[task, p] - want) < 1e-4, (task, p, pid.loc[task, p])
    assert abs(pid.loc[task, 'entropy'] - label_entropy(task)) < 1e-9
    assert abs(pid.loc[task, 'total'] - label_entropy(task)) < 1e-9   # labels are functions of bits


def test_pid_is_deterministic(pid):
    # dit's default solver sometimes stops far from the minimum on XOR; exact_pid must not
    for _ in range(8):
        got = exact_pid('synergy')
        assert all(abs(got[p] - pid.loc['synergy', p]) < 1e-9 for p in PARTS), got


def test_unread_bits_do_not_change_pid(pid):
    full = exact_pid('unique1', relevant_only=False)
    for p in PARTS:
        assert abs(full[p] - pid.loc['unique1', p]) < 1e-4


# --- argument validation ---------------------------------------------------------------

@pytest.mark.parametrize('kwargs, msg', [
    (dict(n_samples=0), "n_samples must be an int >= 1, got 0"),
    (dict(n_samples=True), "n_samples must be an int >= 1, got True"),
    (dict(seed=-1), "seed must be an int >= 0, got -1"),
    (dict(seed=1.5), "seed must be an int >= 0, got 1.5"),
    (dict(view_dim=0), "view_dim must be an int >= 1, got 0"),
    (dict(n_nuisance=0), "n_nuisance must be an int in [1, 8], got 0"),
    (dict(n_nuisance=9), "n_nuisance must be an int in [1, 8], got 9"),
    (dict(noise=-0.1), "noise must be a finite number >= 0, got -0.1"),
    (dict(noise=float('nan')), "noise must be a finite number >= 0, got nan"),
    (dict(noise='0.1'), "noise must be a finite number >= 0, got '0.1'"),
])
def test_make_interactions_errors(kwargs, msg):
    with pytest.raises(ValueError) as e: make_interactions(**{'n_samples': 10, **kwargs})
    assert msg in str(e.value)


def test_other_errors(data):
    with pytest.raises(ValueError, match=r"task must be one of .*, got 'xor'"): exact_pid('xor')
    with pytest.raises(ValueError, match="task must be one of"): label_entropy('and')
    with pytest.raises(ValueError, match="task must be one of"): task_label('or', data.bits)
    with pytest.raises(ValueError, match="task must be one of"):
        probe_accuracies(seeds=(0,), tasks=('xor',))
    with pytest.raises(ValueError, match=r"bits must hold .* missing \['b2'\]"):
        task_label('synergy', {'b1': data.bits['b1']})
    with pytest.raises(ValueError, match=r"test_size must be in \(0, 1\), got 0"): data.split(0)
    with pytest.raises(ValueError, match="view must be 1 or 2, got 3"): data.view_patterns(3)
    with pytest.raises(ValueError, match="view must be 1 or 2, got 0"):
        decoding_error_bound(data, 0)
    with pytest.raises(ValueError, match=r"n_bits must be an int in \[4, 16\]"):
        walsh_codebook(3, 8)
    with pytest.raises(ValueError, match="dim must be a positive int, got 0"):
        walsh_codebook(5, 0)
    with pytest.raises(ValueError, match=r"min_order must be an int in \[0, 3\], got 4"):
        walsh_codebook(5, 8, min_order=4)
    with pytest.raises(ValueError, match="n_train must be an int >= 1, got 0"):
        probe_accuracies(seeds=(0,), n_train=0)
    with pytest.raises(ValueError, match="seed and n_samples are set by"):
        probe_accuracies(seeds=(0,), seed=3)
    assert set(TASK_BITS) == set(TASKS) and all(set(v) <= set(LATENT_BITS) for v in TASK_BITS.values())
