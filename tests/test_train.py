"Tests of factorcl_nb.train: determinism, exact resume, the two optimisation phases, history, mixed precision, errors."
import copy, os, random
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from factorcl_nb.estimators import infonce_bound, nce_club_bound
from factorcl_nb.train import TrainConfig, fit, EpochBatchSampler, make_loader
from factorcl_nb.checkpoint import load_checkpoint, save_checkpoint, CHECKPOINT_NAME
from factorcl_nb.distributed import rank, world_size, is_main_process
from factorcl_nb.runner import small_factorcl_run   # also behind the plots of nbs/06_train.ipynb

# ---------------------------------------------------------------- a toy model that follows the contract

class Toy(nn.Module):
    """Two linear encoders, a learnable InfoNCE critic (main) and an NCE-CLUB critic (trained by critic_loss).
    Its augmentation draws from torch's global RNG (or its own generator), NumPy's and Python's."""
    def __init__(self, n_classes=None, noise=0.1, generator=None, fail_at=None):
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(6, 4), nn.Linear(5, 4)
        self.nce_weight = nn.Parameter(torch.eye(4))
        self.club_weight = nn.Parameter(torch.eye(4))
        self.head = nn.Linear(4, n_classes) if n_classes else None
        self.needs_labels, self.noise, self.generator, self.fail_at = n_classes is not None, noise, generator, fail_at
        self.calls, self.last_dtype = 0, None

    def embed(self, x1, x2):
        if self.noise:
            scale = self.noise * (1 + np.random.rand() + random.random())
            x1 = x1 + scale * torch.randn(x1.shape, generator=self.generator)
        z1, z2 = self.enc1(x1), self.enc2(x2)
        self.last_dtype = z1.dtype
        return z1, z2

    def loss(self, x1, x2, y=None):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at: raise RuntimeError('injected failure')
        z1, z2 = self.embed(x1, x2)
        terms = dict(nce=infonce_bound(z1 @ self.nce_weight @ z2.T), club=nce_club_bound(z1 @ self.club_weight @ z2.T))
        if self.needs_labels: terms['ce'] = F.cross_entropy(self.head(z1).float(), y)
        terms['loss'] = -terms['nce'] + terms['club'] + terms.get('ce', 0)
        return terms

    def critic_loss(self, x1, x2, y=None):
        z1, z2 = (z.detach() for z in self.embed(x1, x2))
        return -infonce_bound(z1 @ self.club_weight @ z2.T)

    def critic_parameters(self): return [self.club_weight]
    def main_parameters(self): return [p for n, p in self.named_parameters() if n != 'club_weight']


def toy_data(n=40, seed=0, labels=False):
    g = torch.Generator().manual_seed(seed); w = torch.randn(n, 3, generator=g)
    x1 = w @ torch.randn(3, 6, generator=g) + 0.1 * torch.randn(n, 6, generator=g)
    x2 = w @ torch.randn(3, 5, generator=g) + 0.1 * torch.randn(n, 5, generator=g)
    return (x1, x2, (w[:, 0] > 0).long()) if labels else (x1, x2)


def new_model(**kw):
    torch.manual_seed(0)
    return Toy(**kw)


BASE = dict(epochs=3, batch_size=8, lr=1e-2, progress=False, device='cpu')  # 40 samples: 5 steps per epoch, 15 in all
# the authors' schedule: one critic step after each main step, critic lr = lr, no warm-up
from factorcl_nb.train import AUTHORS_SCHEDULE as AUTHORS   # the paper's schedule


def same_weights(a, b): return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def terms_only(h): return h.drop(columns=['time']).reset_index(drop=True)

# ---------------------------------------------------------------- helpers

def test_distributed_fallbacks():
    assert (rank(), world_size(), is_main_process()) == (0, 1, True)


def test_sampler_order_is_a_function_of_seed_and_epoch():
    a, b = EpochBatchSampler(23, 5, seed=4), EpochBatchSampler(23, 5, seed=4)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert sorted(sum(list(a), [])) == list(range(23))
    # batch_size is the global batch: process r takes the r-th contiguous part of each batch (last batch of 5: 3 + 2)
    shards = [list(EpochBatchSampler(23, 6, seed=4, shard=r, num_shards=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4
    assert [a + b for a, b in zip(*shards)] == list(EpochBatchSampler(23, 6, seed=4))

# ---------------------------------------------------------------- determinism

def test_same_seed_same_weights_different_seed_different_weights():
    runs = []
    for seed in (0, 0, 1):
        m = new_model(); fit(m, toy_data(), seed=seed, **BASE); runs.append(m)
    assert same_weights(runs[0], runs[1])
    assert not same_weights(runs[0], runs[2])

# ---------------------------------------------------------------- exact resume

@pytest.fixture(scope='module')
def uninterrupted():
    m = new_model(); h = fit(m, toy_data(), log_every=1, **BASE)
    return m, h


@pytest.mark.parametrize('stop', [7, 10])   # mid-epoch (position 2 of epoch 1) and at the epoch boundary
def test_resume_after_max_steps_is_exact(tmp_path, uninterrupted, stop):
    full, full_hist = uninterrupted
    m = new_model(); fit(m, toy_data(), log_every=1, max_steps=stop, checkpoint_dir=str(tmp_path), **BASE)
    ck = load_checkpoint(tmp_path)
    assert (ck['step'], ck['epoch'], ck['position']) == (stop, stop // 5, stop % 5)
    assert same_weights(m, full) is False
    resumed = Toy()                            # other initial weights: they come from the checkpoint
    h = fit(resumed, toy_data(), resume=tmp_path, max_steps=None)
    assert same_weights(resumed, full)
    assert terms_only(h).equals(terms_only(full_hist))   # every logged term of every step, identical


@pytest.mark.parametrize('every', [3, 5])     # crash at step 12; last checkpoint at step 9 (mid-epoch) or 10 (epoch boundary)
def test_resume_after_a_crash_is_exact(tmp_path, uninterrupted, every):
    full, _ = uninterrupted
    m = new_model(fail_at=12)
    with pytest.raises(RuntimeError, match='injected failure'):
        fit(m, toy_data(), checkpoint_dir=str(tmp_path), checkpoint_every=every, **BASE)
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)['step'] == (11 // every) * every
    resumed = Toy(fail_at=12)   # the same settings as the checkpoint's model; its 5 or 6 remaining steps never reach call 12
    fit(resumed, toy_data(), resume=tmp_path)
    assert same_weights(resumed, full)
    assert [f for f in os.listdir(tmp_path)] == [CHECKPOINT_NAME]   # atomic writes leave no temporary file


def test_resume_covers_a_generator_owned_by_the_model(tmp_path):
    def model(): return new_model(generator=torch.Generator().manual_seed(5))
    full = model(); fit(full, toy_data(), **BASE)
    m = model(); fit(m, toy_data(), max_steps=8, checkpoint_dir=str(tmp_path), **BASE)
    m.generator.manual_seed(123)              # disturb it: the checkpoint must restore it
    resumed = model(); resumed.generator.manual_seed(99)
    fit(resumed, toy_data(), resume=tmp_path, max_steps=None)
    assert same_weights(resumed, full)


class NoisyPairs(Dataset):
    "A Dataset that augments in __getitem__ with the global torch RNG."
    def __init__(self, x1, x2): self.x1, self.x2 = x1, x2
    def __len__(self): return len(self.x1)
    def __getitem__(self, i): return self.x1[i] + 0.05 * torch.randn(6), self.x2[i]


@pytest.mark.parametrize('kind', ['dataset', 'loader', 'loader with generator'])
def test_resume_mid_epoch_with_a_dataset_or_a_user_dataloader(tmp_path, kind):
    def data():
        ds = NoisyPairs(*toy_data())
        if kind == 'dataset': return ds
        g = torch.Generator().manual_seed(1) if kind == 'loader with generator' else None  # None: shuffles with the global RNG
        return DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    full = new_model(); fit(full, data(), **BASE)
    m = new_model(); fit(m, data(), max_steps=7, checkpoint_dir=str(tmp_path), **BASE)
    resumed = Toy(); fit(resumed, data(), resume=tmp_path, max_steps=None)
    assert same_weights(resumed, full)


def test_resume_can_extend_the_number_of_epochs(tmp_path):
    "Without warm-up the schedule does not depend on the run's length (a warm-up is capped at a tenth of it)."
    five = new_model(); fit(five, toy_data(), **{**BASE, 'epochs': 5}, **AUTHORS)
    m = new_model(); fit(m, toy_data(), checkpoint_dir=str(tmp_path), **BASE, **AUTHORS)
    resumed = Toy(); fit(resumed, toy_data(), resume=tmp_path, epochs=5)
    assert same_weights(resumed, five)


def test_resume_with_an_incompatible_config_or_data_fails(tmp_path):
    fit(new_model(), toy_data(), max_steps=3, checkpoint_dir=str(tmp_path), **BASE)
    with pytest.raises(ValueError, match=r"cannot resume with a different configuration: lr=0.01 in the checkpoint but 0.001 now"):
        fit(Toy(), toy_data(), resume=tmp_path, lr=1e-3)
    with pytest.raises(ValueError, match='batch_size'):
        fit(Toy(), toy_data(), TrainConfig(**{**BASE, 'batch_size': 4}), resume=tmp_path)
    with pytest.raises(ValueError, match='data.rows: 40 in the checkpoint, 80 now'):
        fit(Toy(), toy_data(n=80), resume=tmp_path)
    with pytest.raises(ValueError, match='model.needs_labels: False in the checkpoint, True now'):
        fit(Toy(n_classes=2), toy_data(labels=True), resume=tmp_path)
    with pytest.raises(FileNotFoundError, match='no checkpoint at'):
        fit(Toy(), toy_data(), resume=tmp_path / 'missing')

# ---------------------------------------------------------------- checkpoints that cannot lose work

def test_unusable_checkpoint_dir_fails_before_the_first_step(tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    m = new_model()
    with pytest.raises(ValueError, match=r"checkpoint_dir='.*a_file' is a file, not a folder"):
        fit(m, toy_data(), checkpoint_dir=tmp_path / 'a_file', **BASE)
    with pytest.raises(ValueError, match=r"checkpoint_dir='.*a_file/sub' is not a writable folder"):
        fit(m, toy_data(), checkpoint_dir=tmp_path / 'a_file' / 'sub', **BASE)
    assert m.calls == 0                                  # nothing was trained (and lost)


def test_a_fresh_run_does_not_replace_another_runs_checkpoint(tmp_path):
    fit(new_model(), toy_data(), checkpoint_dir=tmp_path, **BASE)                  # 15 steps
    with pytest.raises(ValueError, match=r"already holds last.pt of another run.*resume=.*overwrite=True"):
        fit(new_model(), toy_data(), checkpoint_dir=tmp_path, max_steps=4, **BASE)
    assert load_checkpoint(tmp_path)['step'] == 15                                    # untouched
    fit(Toy(), toy_data(), resume=tmp_path, epochs=4)                                 # continuing it is allowed
    assert load_checkpoint(tmp_path)['step'] == 20
    fit(new_model(), toy_data(), checkpoint_dir=tmp_path, max_steps=4, overwrite=True, **BASE)
    assert load_checkpoint(tmp_path)['step'] == 4


def test_resume_refuses_another_model_or_other_data_of_the_same_shape(tmp_path):
    from factorcl_nb.encoders import mlp_encoder
    from factorcl_nb.models import make_model, independent
    from factorcl_nb.augment import feature_augment
    fit(new_model(), toy_data(), max_steps=3, checkpoint_dir=tmp_path, **BASE)
    with pytest.raises(ValueError, match=r"model.noise: 0.1 in the checkpoint, 0.2 now"):
        fit(Toy(noise=0.2), toy_data(), resume=tmp_path)
    with pytest.raises(ValueError, match=r"data.hash: '\w+' in the checkpoint, '\w+' now"):
        fit(Toy(), toy_data(seed=1), resume=tmp_path)                                 # same size, other values
    # the paper's models: another removal_weight, or another augmentation, with the same shapes
    def model(**kw):
        torch.manual_seed(0)
        return make_model('FactorCL-SSL', [mlp_encoder(6, 4, 8, 1), mlp_encoder(5, 4, 8, 1)], 4, proj_dim=4,
                          head_hidden=4, critic_hidden=4, **kw)
    d = tmp_path / 'paper'
    fit(model(), toy_data(), max_steps=3, checkpoint_dir=d, **BASE)
    with pytest.raises(ValueError, match=r"model.removal_weight: 1.0 in the checkpoint, 2.0 now"):
        fit(model(removal_weight=2.0), toy_data(), resume=d)
    with pytest.raises(ValueError, match=r"model._augment: .*'std': 0.1.* in the checkpoint, .*'std': 0.3.* now"):
        fit(model(unique_augment=independent(feature_augment(0.3))), toy_data(), resume=d)
    fit(model(), toy_data(), resume=d)                                                # the same model resumes
    # a setting created lazily at the first step (None before) does not block resuming the same model object
    m = new_model(); m.lazy = None
    fit(m, toy_data(), max_steps=3, checkpoint_dir=tmp_path / 'lazy', **BASE)
    resumed = Toy(); resumed.lazy = 'created at the first step'
    fit(resumed, toy_data(), resume=tmp_path / 'lazy')


def test_temporary_files_of_killed_saves_are_removed(tmp_path):
    for i in range(3): (tmp_path / f'.{CHECKPOINT_NAME}.killed{i}.tmp').write_bytes(b'x' * 1000)
    (tmp_path / 'notes.txt').write_text('kept')
    with pytest.warns(UserWarning, match=r'removed 3 temporary file\(s\)'):
        fit(new_model(), toy_data(), checkpoint_dir=tmp_path, max_steps=2, **BASE)
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_NAME, 'notes.txt']


def test_damaged_checkpoints_are_reported_never_loaded(tmp_path):
    fit(new_model(), toy_data(), max_steps=3, checkpoint_dir=tmp_path, **BASE)
    path = tmp_path / CHECKPOINT_NAME
    good = path.read_bytes()
    def refused(raw, match):
        path.write_bytes(raw)
        with pytest.raises(ValueError, match=match) as e: load_checkpoint(tmp_path)
        assert str(path) in str(e.value) and 'weights_only' not in str(e.value) and 'overwrite=True' in str(e.value)
        with pytest.raises(ValueError, match=match): fit(Toy(), toy_data(), resume=tmp_path)
    rng = np.random.default_rng(0)
    for pos in rng.choice(np.arange(100, len(good)), 20, replace=False):             # 20 single-bit flips
        flipped = bytearray(good); flipped[pos] ^= 1 << int(rng.integers(8))
        refused(bytes(flipped), 'does not match the checksum')
    refused(good[:len(good) // 2], 'does not match the checksum')                     # truncated
    refused(b'', 'does not start like a checkpoint')                                   # empty
    refused(b'PK\x03\x04 not a zip', r'torch cannot read it')                         # damaged old-format file
    path.write_bytes(good); assert load_checkpoint(tmp_path)['step'] == 3


# ---------------------------------------------------------------- the two phases

def test_critic_parameters_move_only_in_critic_steps():
    m = new_model(); club0, enc0 = m.club_weight.detach().clone(), m.enc1.weight.detach().clone()
    fit(m, toy_data(), critic_steps=0, **BASE)
    assert torch.equal(m.club_weight, club0) and not torch.equal(m.enc1.weight, enc0)
    one, two = new_model(), new_model()
    fit(one, toy_data(), critic_steps=1, **BASE); fit(two, toy_data(), critic_steps=2, **BASE)
    assert not torch.equal(one.club_weight, club0) and not torch.equal(one.club_weight, two.club_weight)


class Lagging(Toy):
    "A Toy whose critic reports its own InfoNCE: below 0 (lagging) for the first `lag` critic steps of every batch."
    def __init__(self, lag, **kw):
        super().__init__(**kw); self.lag, self.critic_calls, self.batch_calls = lag, 0, 0
    def loss(self, x1, x2, y=None):
        self.batch_calls = 0   # a main step: the next critic steps start a new count
        return super().loss(x1, x2, y)
    def critic_terms(self, x1, x2, y=None):
        self.critic_calls += 1; self.batch_calls += 1
        infonce = torch.tensor(-1.0 if self.batch_calls <= self.lag else 0.5)
        return dict(loss=self.critic_loss(x1, x2, y), club_infonce=infonce)


@pytest.mark.parametrize('steps, most, lag, per_step', [
    (2, 6, 0, 2),    # never lagging: exactly critic_steps
    (2, 6, 3, 4),    # InfoNCE < 0 before steps 1-3: a 4th step starts from a valid critic, then stop
    (2, 6, 9, 6),    # always lagging: capped at critic_max_steps
    (3, 2, 9, 3),    # critic_max_steps below critic_steps: exactly critic_steps
    (0, 6, 9, 0),    # no critic step at all: nothing to look at, none taken
])
def test_critic_steps_continue_while_a_critic_lags(steps, most, lag, per_step):
    "fit takes critic_steps critic steps, then more (up to critic_max_steps in all) while the last one began with an InfoNCE < 0."
    m = Lagging(lag)
    h = fit(m, toy_data(), critic_steps=steps, critic_max_steps=most, log_every=1, **BASE)
    assert m.critic_calls == 15 * per_step                      # 15 main steps
    if per_step: assert h.critic_steps.tolist() == [per_step] * 15
    else: assert 'critic_steps' not in h


def test_the_authors_schedule_takes_one_critic_step_even_when_lagging():
    m = Lagging(lag=9)
    fit(m, toy_data(), **{**BASE, **AUTHORS})
    assert m.critic_calls == 15


class HeavyPenalty(Toy):
    "A main loss whose NCE-CLUB penalty is weighted 100x: a leak of its gradient into the critic would dominate."
    def loss(self, x1, x2, y=None):
        t = super().loss(x1, x2, y); t['loss'] = t['loss'] + 99 * t['club']
        return t


def test_steps_equal_a_manual_reference_without_gradient_leaks():
    "Each step: Adam on `loss` w.r.t. the main parameters only, then Adam on `critic_loss` w.r.t. the critic only."
    x1, x2 = toy_data(16)
    torch.manual_seed(0); m = HeavyPenalty(noise=0.)
    torch.manual_seed(0); ref = HeavyPenalty(noise=0.)
    fit(m, (x1, x2), epochs=3, batch_size=16, shuffle=False, lr=1e-2, critic_lr=3e-2, progress=False, **AUTHORS)
    main, critic = ref.main_parameters(), ref.critic_parameters()
    main_opt, critic_opt = torch.optim.Adam(main, lr=1e-2), torch.optim.Adam(critic, lr=3e-2)
    for _ in range(3):
        for p, g in zip(main, torch.autograd.grad(ref.loss(x1, x2)['loss'], main)): p.grad = g
        main_opt.step()
        for p, g in zip(critic, torch.autograd.grad(ref.critic_loss(x1, x2), critic)): p.grad = g
        critic_opt.step()
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_default_schedule_is_the_authors_for_a_model_that_does_not_report_lagging():
    "Without critic_terms no critic can be seen lagging: the default trains exactly as the authors' schedule."
    a, b = new_model(), new_model()
    ha, hb = fit(a, toy_data(), **BASE), fit(b, toy_data(), **{**BASE, **AUTHORS})
    assert same_weights(a, b) and terms_only(ha).equals(terms_only(hb))


def test_critic_first_schedule_with_warmup_equals_a_manual_reference():
    "critic_first: each step, `critic_steps` critic updates (lr x critic_lr_factor) first, then the main update at main_lr(step)."
    from factorcl_nb.train import main_lr
    x1, x2 = toy_data(16)
    torch.manual_seed(0); m = HeavyPenalty(noise=0.)
    torch.manual_seed(0); ref = HeavyPenalty(noise=0.)
    cfg = TrainConfig(epochs=20, batch_size=16, shuffle=False, lr=1e-2, progress=False, critic_steps=3, critic_first=True,
                      critic_lr_factor=5.0, critic_warmup=2, lr_warmup=2)
    assert cfg.critic_lr is None
    h = fit(m, (x1, x2), cfg, log_every=1)
    main, critic = ref.main_parameters(), ref.critic_parameters()
    main_opt, critic_opt = torch.optim.Adam(main, lr=1e-2), torch.optim.Adam(critic, lr=cfg.critic_lr_factor * 1e-2)
    start = [p.detach().clone() for p in main], [p.detach().clone() for p in critic]
    for t in range(20):
        for _ in range(3):
            for p, g in zip(critic, torch.autograd.grad(ref.critic_loss(x1, x2), critic)): p.grad = g
            critic_opt.step()
        for g_ in main_opt.param_groups: g_['lr'] = main_lr(cfg, t, 20)
        for p, g in zip(main, torch.autograd.grad(ref.loss(x1, x2)['loss'], main)): p.grad = g
        main_opt.step()
        if t == 1:   # end of the critic warm-up: the main parameters have not moved, the critic has
            assert all(torch.equal(p, q) for p, q in zip(main, start[0])) and not torch.equal(critic[0], start[1][0])
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert [main_lr(cfg, t, 20) for t in range(6)] == [0, 0, 1e-2 / 3, 2e-2 / 3, 1e-2, 1e-2]


def test_grad_clip_clips():
    "Adam's first step moves a weight by about lr; a gradient clipped far below Adam's eps hardly moves it."
    w0 = new_model().enc1.weight.detach().clone()
    a, b = new_model(noise=0.), new_model(noise=0.)
    fit(a, toy_data(16), epochs=1, batch_size=16, lr=1e-2, progress=False, **AUTHORS)
    fit(b, toy_data(16), epochs=1, batch_size=16, lr=1e-2, grad_clip=1e-12, progress=False, **AUTHORS)
    assert (a.enc1.weight - w0).abs().max() > 1e-3 and (b.enc1.weight - w0).abs().max() < 1e-5

# ---------------------------------------------------------------- history

def test_history_has_every_term_per_logged_step():
    h = fit(new_model(n_classes=2), toy_data(labels=True), log_every=4, **BASE)
    assert list(h.columns) == ['step', 'epoch', 'time', 'nce', 'club', 'ce', 'loss', 'critic_loss']
    assert h.step.tolist() == [4, 8, 12, 15]           # every 4 steps, and the last
    assert h.epoch.tolist() == [0, 1, 2, 2]
    assert h.time.is_monotonic_increasing
    assert np.allclose(h.loss, -h.nce + h.club + h.ce, atol=1e-5)
    assert fit(new_model(), toy_data(), critic_steps=0, **BASE).columns.tolist()[-1] == 'loss'


def test_progress_bar_shows_the_loss(capsys):
    fit(new_model(), toy_data(), **{**BASE, 'progress': True, 'log_every': 1})
    assert 'loss=' in capsys.readouterr().err

# ---------------------------------------------------------------- devices, precision, loading

def test_bf16_autocast_on_cpu():
    m = new_model(n_classes=2)
    h = fit(m, toy_data(labels=True), amp='bf16', log_every=1, **BASE)
    assert m.last_dtype == torch.bfloat16 and m.enc1.weight.dtype == torch.float32
    assert np.isfinite(h[['loss', 'nce', 'club', 'ce', 'critic_loss']].values).all()
    m = new_model(); fit(m, toy_data(), amp='auto', **BASE)
    assert m.last_dtype == torch.float32                # 'auto' is full precision on the CPU


def test_worker_processes_give_the_same_result():
    a, b = new_model(), new_model()
    fit(a, toy_data(), **{**BASE, 'epochs': 1}); fit(b, toy_data(), num_workers=1, **{**BASE, 'epochs': 1})
    assert same_weights(a, b)

# ---------------------------------------------------------------- errors

def test_errors_on_bad_data():
    x1, x2 = toy_data()
    with pytest.raises(ValueError, match='needs labels'):
        fit(Toy(n_classes=2), (x1, x2), **BASE)
    with pytest.raises(ValueError, match='needs labels'):            # found in the first batch of a Dataset
        fit(Toy(n_classes=2), torch.utils.data.TensorDataset(x1, x2), **BASE)
    with pytest.raises(ValueError, match='same number of samples.*x1: 40, x2: 39'):
        fit(Toy(), (x1, x2[:39]), **BASE)
    with pytest.raises(ValueError, match='got ndarray'):
        fit(Toy(), x1.numpy(), **BASE)
    with pytest.raises(ValueError, match='method loss'):
        fit(nn.Linear(2, 2), (x1, x2), **BASE)


def test_nan_in_a_batch_names_the_step_and_the_input():
    x1, x2 = toy_data(); x1[21, 2] = float('nan')                   # third batch of 8 when not shuffled
    m = new_model(); w = m.enc1.weight.detach().clone()
    with pytest.raises(ValueError, match=r'non-finite loss at step 3: nce=nan.*the batch has NaN or inf in x1'):
        fit(m, (x1, x2), shuffle=False, **BASE, **AUTHORS)
    assert torch.isfinite(m.enc1.weight).all() and not torch.equal(m.enc1.weight, w)   # two good steps were taken
    with pytest.raises(ValueError, match=r'non-finite critic_loss at step 3: .*the batch has NaN or inf in x1'):
        fit(new_model(), (x1, x2), shuffle=False, critic_first=True, **BASE)   # with critic_first the critic step sees it first


def test_divergence_names_the_term():
    class Diverges(Toy):
        def loss(self, x1, x2, y=None):
            t = super().loss(x1, x2, y); t['club'] = t['club'] + float('inf'); t['loss'] = t['loss'] + t['club']
            return t
    with pytest.raises(ValueError, match=r'non-finite loss at step 1: club=.*inf.*training diverged'):
        fit(Diverges(), toy_data(), **BASE)


@pytest.mark.parametrize('bad, match', [
    (dict(epochs=0), 'TrainConfig.epochs must be an int >= 1, got 0'),
    (dict(batch_size=1.5), 'TrainConfig.batch_size'),
    (dict(lr=0), 'TrainConfig.lr must be a number > 0'),
    (dict(critic_lr=-1), 'TrainConfig.critic_lr'),
    (dict(critic_steps=-1), 'TrainConfig.critic_steps'),
    (dict(weight_decay=-0.1), 'TrainConfig.weight_decay'),
    (dict(grad_clip=float('nan')), 'TrainConfig.grad_clip'),
    (dict(amp='fp8'), 'TrainConfig.amp must be one of'),
    (dict(seed=-1), 'TrainConfig.seed'),
    (dict(shuffle=1), 'TrainConfig.shuffle must be True or False'),
    (dict(checkpoint_every=5), 'set checkpoint_dir'),
    (dict(log_every=0), 'TrainConfig.log_every'),
    (dict(max_steps=0), 'TrainConfig.max_steps'),
    (dict(num_workers=-1), 'TrainConfig.num_workers'),
    (dict(pin_memory='yes'), 'TrainConfig.pin_memory'),
    (dict(device=3), 'TrainConfig.device'),
])
def test_bad_config_values(bad, match):
    with pytest.raises(ValueError, match=match): TrainConfig(**bad)
    with pytest.raises(ValueError, match=match): fit(Toy(), toy_data(), **{**BASE, **bad})


def test_bad_settings_at_fit_time():
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['epoch'\]"):
        fit(Toy(), toy_data(), epoch=3)
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device"):
        fit(Toy(), toy_data(), **{**BASE, 'amp': 'fp16'})
    with pytest.raises(ValueError, match='no batch to train on'):
        fit(Toy(), toy_data(), **{**BASE, 'batch_size': 64, 'drop_last': True})
    with pytest.raises(ValueError, match='config must be a TrainConfig'):
        fit(Toy(), toy_data(), config=dict(epochs=1))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            fit(Toy(), toy_data(), **{**BASE, 'device': 'cuda'})


# ---------------------------------------------------------------- input dtypes and a last batch of one

def paper_model(method='FactorCL-SUP'):
    from factorcl_nb.encoders import mlp_encoder
    from factorcl_nb.models import make_model
    torch.manual_seed(0)
    return make_model(method, [mlp_encoder(6, 4, 8, 1), mlp_encoder(5, 4, 8, 1)], 4, n_classes=2, proj_dim=4,
                      head_hidden=4, critic_hidden=4)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32])
def test_features_of_any_float_or_integer_dtype_are_cast(dtype):
    x1, x2, y = toy_data(labels=True)
    cast = lambda x: (x * 10).round().to(dtype) if not dtype.is_floating_point else x.to(dtype)
    h = fit(paper_model(), (cast(x1), cast(x2), y), **BASE)
    reference = fit(paper_model(), (cast(x1).float(), cast(x2).float(), y), **BASE)
    assert np.isfinite(h['loss']).all()
    assert h.drop(columns='time').equals(reference.drop(columns='time'))   # exactly as if given float32


@pytest.mark.parametrize('dtype', [torch.int32, torch.uint8, torch.int8, torch.bool])
def test_integer_and_bool_labels_are_class_ids(dtype):
    x1, x2, y = toy_data(labels=True)
    h = fit(paper_model(), (x1, x2, y.to(dtype)), **BASE)
    assert h.drop(columns='time').equals(fit(paper_model(), (x1, x2, y), **BASE).drop(columns='time'))


def test_float_labels_are_refused_by_name():
    x1, x2, y = toy_data(labels=True)
    with pytest.raises(ValueError, match=r'y must be a 1-d integer tensor of class ids, got torch.float32'):
        fit(paper_model(), (x1, x2, y.float()), **BASE)


@pytest.mark.parametrize('method', ['FactorCL-SSL', 'FactorCL-SUP', 'SimCLR'])
def test_a_last_batch_of_one_sample_is_dropped_and_said(method):
    x1, x2, y = toy_data(n=41, labels=True)                                   # 41 = 5 * 8 + 1
    with pytest.warns(UserWarning, match=r'would hold a single sample \(41 samples, batch_size=8\).*it is dropped'):
        h = fit(paper_model(method), (x1, x2, y), log_every=1, **BASE)
    assert list(h['step']) == list(range(1, 16)) and np.isfinite(h['loss']).all()   # 3 epochs of 5 full batches


# ---------------------------------------------------------------- the NCE-CLUB critics keep up

@pytest.mark.parametrize('method', ['FactorCL-SUP', 'FactorCL-SSL'])
def test_default_critics_give_valid_bounds_after_warmup(method):
    "With the default schedule, >= 95% of the steps after warm-up have 0 <= InfoNCE <= NCE-CLUB for every NCE-CLUB critic."
    from factorcl_nb.train import bound_validity
    c = TrainConfig()
    h = small_factorcl_run(method)
    assert {'shared_club_infonce', 'unique_club_infonce'} <= set(h.columns)
    assert (h.shared_club_infonce <= h.shared_club + 1e-6).all() and (h.unique_club_infonce <= h.unique_club + 1e-6).all()
    share = bound_validity(h, after=c.critic_warmup + c.lr_warmup)
    assert set(share) == {'shared_club', 'unique_club'} and min(share.values()) >= 0.95, share
