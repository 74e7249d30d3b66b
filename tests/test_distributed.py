"""Data parallelism with global negatives: two processes (gloo, CPU) with b samples each compute what one process
computes with 2b (losses, main and critic gradients, a short `fit`), resume exactly, and misuse fails clearly."""
import os, socket, time
import pytest
import torch
import torch.multiprocessing as mp

from factorcl_nb.distributed import (gather_batch, gather_with_grad, local_batch_size, world_size, is_distributed,
                                     TORCHRUN_ENV)
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.models import METHODS, make_model
from factorcl_nb.train import EpochBatchSampler, fit
from factorcl_nb.checkpoint import load_checkpoint

WORLD, LOCAL = 2, 6                      # two processes with 6 samples each = one process with 12
SMALL = dict(proj_dim=8, head_hidden=16, critic_hidden=16, critic_layers=1)
FIT = dict(epochs=2, batch_size=8, lr=1e-2, progress=False, device='cpu', log_every=1)   # 21 samples: batches 8, 8, 5
ONE_CRITIC_STEP = dict(critic_max_steps=1)   # exactly one critic step per main step (no catching up)

def deterministic_augment(x1, x2):
    "A fixed per-sample transform: both runs see the same augmented views whatever the process."
    return 0.9 * x1 + 0.1, x2.flip(1)

def build(method, double=True):
    torch.manual_seed(0)
    encoders = [mlp_encoder(10, out_dim=16, hidden_dim=16, n_hidden=1), mlp_encoder(12, out_dim=16, hidden_dim=16, n_hidden=1)]
    m = make_model(method, encoders, 16, n_classes=3, unique_augment=deterministic_augment,
                   independent_augment=deterministic_augment, **SMALL)
    return m.double() if double else m

def data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 10, generator=g, dtype=torch.float64), torch.randn(n, 12, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=g))

def losses_and_gradients(model, x1, x2, y, average=lambda params: None):
    "The loss terms, the gradients of the main loss (every parameter) and of the critic loss, averaged by `average`."
    y = y if model.needs_labels else None
    params = dict(model.named_parameters())
    terms = model.loss(x1, x2, y)
    terms['loss'].backward(); average(list(params.values()))
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in params.items()}
    model.zero_grad(set_to_none=True)
    critic = model.critic_loss(x1, x2, y)
    critic_grads = {}
    if critic is not None:
        critic.backward(); average(model.critic_parameters())
        critic_grads = {k: p.grad.clone() for k, p in params.items() if p.grad is not None}
    return {k: v.detach() for k, v in terms.items()}, grads, critic, critic_grads

def weights(model): return {k: v.detach().clone() for k, v in model.state_dict().items()}

# ---------------------------------------------------------------- what each of the two processes runs

def worker(rank, port, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from factorcl_nb.distributed import init_distributed, average_gradients, rank as get_rank
    assert init_distributed() and get_rank() == rank and world_size() == WORLD   # the path fit takes under torchrun
    res = {}
    x1, x2, y = (t[rank * LOCAL:(rank + 1) * LOCAL] for t in data(WORLD * LOCAL))   # this process's part of the batch
    for method in METHODS:
        res[method] = losses_and_gradients(build(method), x1, x2, y, average_gradients)
    # a short fit: FactorCL-SUP and FactorCL-SSL (deterministic augmentation), the last batch split 3 + 2
    for method in ('FactorCL-SUP', 'FactorCL-SSL'):
        m = build(method); h = fit(m, data(21), **FIT, **ONE_CRITIC_STEP, checkpoint_dir=os.path.join(out, method))
        res[f'fit {method}'] = weights(m), h.drop(columns='time')
    # the default schedule: extra critic steps while a critic lags, decided on the InfoNCE averaged over processes
    m = build('FactorCL-SSL'); res['fit catching up'] = fit(m, data(21), **FIT).drop(columns='time')
    # exact resume with random augmentations (each process draws its own) stopped mid-epoch
    m = build('FactorCL-SSL'); m._augment = None        # the default: independent random feature augmentation
    fit(m, data(21), **FIT); res['random full'] = weights(m)
    m = build('FactorCL-SSL'); m._augment = None
    d = os.path.join(out, 'resume')
    fit(m, data(21), **FIT, max_steps=4, checkpoint_dir=d); fit(m, data(21), resume=d, max_steps=None)
    res['random resumed'], res['seed'] = weights(m), torch.initial_seed()
    # misuse inside a group of two
    for name, call in [('odd batch', lambda: fit(build('SimCLR'), data(21), **{**FIT, 'batch_size': 9})),
                       ('ragged', lambda: gather_batch(torch.zeros(3, 2), torch.zeros(4)))]:
        try: call(); res[name] = None
        except ValueError as e: res[name] = str(e)
    torch.save(res, os.path.join(out, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run_two_processes(out, fn=None):
    "Run `fn` (default `worker`) on two processes writing into `out`; kill them if not finished within 120 s."
    ctx = mp.spawn(fn or worker, args=(free_port(), out), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline: raise TimeoutError('the two processes did not finish within 120 s')
    finally:
        for p in ctx.processes:
            if p.is_alive(): p.kill()

@pytest.fixture(scope='session')
def two_processes(tmp_path_factory):
    "Each of the two processes' results (rank 0, rank 1) and their folder; computed once even under pytest-xdist."
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base) / 'ddp'   # shared by the xdist workers
    out.mkdir(exist_ok=True)
    done, failed = out / 'done', out / 'failed'
    try: os.close(os.open(out / 'claimed', os.O_CREAT | os.O_EXCL)); mine = True   # first worker runs the processes
    except FileExistsError: mine = False
    if mine:
        try: run_two_processes(str(out)); done.touch()
        except BaseException as e: failed.write_text(f"{type(e).__name__}: {e}"); raise
    deadline = time.monotonic() + 180
    while not (done.exists() or failed.exists()):
        if time.monotonic() > deadline: raise TimeoutError('waited 180 s for the two processes run by another test worker')
        time.sleep(0.2)
    if failed.exists(): pytest.fail(f"the two processes failed: {failed.read_text()}")
    return [torch.load(out / f'rank{r}.pt', weights_only=False) for r in range(WORLD)], str(out)

def close(a, b, tol=1e-10):
    if a is None or b is None: return a is None and b is None
    return torch.allclose(a, b, rtol=tol, atol=tol)

# ---------------------------------------------------------------- the catch-up decision with opposite signs

# Each scenario: (rank 0's critic InfoNCE, rank 1's). Their mean decides for both: (-0.25 + 1.0) / 2 > 0, so neither
# lags; (0.25 - 1.0) / 2 < 0, so both lag and take all MOST steps. Decided per process, rank 0 would take MOST steps in
# the first scenario and rank 1 one step, and the two processes would no longer run the same collectives.
OPPOSITE_SIGNS = {'only rank 0 below 0': (-0.25, 1.0), 'only rank 1 below 0': (0.25, -1.0)}
MOST = 5

def lagging_worker(rank, port, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import types
    from factorcl_nb import train
    from factorcl_nb.distributed import init_distributed
    assert init_distributed() and world_size() == WORLD
    res, real_step = {}, train.critic_step
    for name, values in OPPOSITE_SIGNS.items():
        # a critic step that reports this process's InfoNCE; critic_phase and lagging are the real ones
        train.critic_step = lambda o, batch, step, v=values[rank]: dict(loss=torch.tensor(-v), x_infonce=torch.tensor(v))
        res[name] = dict(lagging=train.lagging(dict(x_infonce=torch.tensor(values[rank]))),
                         phase=train.critic_phase(types.SimpleNamespace(critic_opt=True), None, 1, 1, MOST))
    train.critic_step = real_step
    torch.save(res, os.path.join(out, f'lagging{rank}.pt'))
    torch.distributed.destroy_process_group()

def test_a_critic_lagging_on_one_process_only_gives_both_the_same_critic_steps(tmp_path):
    run_two_processes(str(tmp_path), lagging_worker)
    r0, r1 = (torch.load(tmp_path / f'lagging{r}.pt', weights_only=False) for r in range(WORLD))
    for name, values in OPPOSITE_SIGNS.items():
        lags = sum(values) / WORLD < 0
        assert min(values) < 0 < max(values)                          # the local decisions would differ
        steps = [r0[name]['phase']['critic_steps'], r1[name]['phase']['critic_steps']]
        assert steps == [MOST if lags else 1] * WORLD, f"{name}: critic steps {steps} on ranks 0, 1"
        assert r0[name]['lagging'] is r1[name]['lagging'] is lags, name


# ---------------------------------------------------------------- two processes == one process with the global batch

# InfMasking draws its random token masks on each process from that process's generator, so two processes cannot
# reproduce one process's draw over the global batch: its comparison would test the random stream, not the gather
SAME_DRAWS = [m for m in METHODS if m != 'InfMasking']

@pytest.mark.parametrize('method', SAME_DRAWS)
def test_two_processes_give_the_losses_and_gradients_of_one_with_the_global_batch(two_processes, method):
    results, _ = two_processes
    terms, grads, critic, critic_grads = losses_and_gradients(build(method), *data(WORLD * LOCAL))
    for r, res in enumerate(results):
        t, g, c, cg = res[method]
        assert set(t) == set(terms)
        for k in terms: assert close(t[k], terms[k]), f"rank {r}: {method} term {k}: {float(t[k])} vs {float(terms[k])}"
        for k in grads: assert close(g[k], grads[k]), f"rank {r}: {method} main-loss gradient of {k} differs"
        assert (c is None) == (critic is None)
        if critic is not None:
            assert close(c.detach(), critic.detach())
            assert set(cg) == set(critic_grads)
            for k in critic_grads: assert close(cg[k], critic_grads[k]), f"rank {r}: {method} critic gradient of {k} differs"

def test_the_comparison_is_sharp():
    "Plain data parallelism (local negatives, the mean of the per-process losses) gives other gradients."
    x1, x2, y = data(WORLD * LOCAL)
    _, full, _, _ = losses_and_gradients(build('FactorCL-SUP'), x1, x2, y)
    halves = [losses_and_gradients(build('FactorCL-SUP'), *(t[r * LOCAL:(r + 1) * LOCAL] for t in (x1, x2, y)))[1] for r in range(WORLD)]
    local = {k: (halves[0][k] + halves[1][k]) / 2 for k in full}
    assert not all(close(local[k], full[k], 1e-3) for k in full)

@pytest.mark.parametrize('method', ['FactorCL-SUP', 'FactorCL-SSL'])
def test_fit_on_two_processes_ends_with_the_weights_of_one(two_processes, method):
    results, _ = two_processes
    m = build(method); h = fit(m, data(21), **FIT, **ONE_CRITIC_STEP)
    ref = weights(m)
    for r, res in enumerate(results):
        w, hist = res[f'fit {method}']
        # 1e-8: the InfoNCE critics' last bias has zero gradient in exact arithmetic (scores are shift-invariant),
        # so Adam turns rounding noise (~1e-17 over eps=1e-8) into differences of ~1e-10; one step would be lr=1e-2
        for k in ref: assert close(w[k], ref[k], 1e-8), f"rank {r}: {method} weight {k} differs after fit"
        assert list(hist.step) == list(h.step) == list(range(1, 7))
        assert torch.allclose(torch.tensor(hist.loss.values), torch.tensor(h.loss.values), rtol=1e-5)
    w0, w1 = (res[f'fit {method}'][0] for res in results)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)       # the copies stay identical

def test_two_processes_take_the_critic_steps_of_one(two_processes):
    "Whether a critic lags is decided on the InfoNCE averaged over processes: both take the steps one process takes."
    results, _ = two_processes
    h = fit(build('FactorCL-SSL'), data(21), **FIT)
    assert h.critic_steps.max() > 1            # the critics lagged (no information in this data) and caught up
    for r, res in enumerate(results):
        hist = res['fit catching up']
        assert list(hist.critic_steps) == list(h.critic_steps), f"rank {r}: {list(hist.critic_steps)} vs {list(h.critic_steps)}"
        assert torch.allclose(torch.tensor(hist.loss.values), torch.tensor(h.loss.values), rtol=1e-5)
    # the weights are not compared: at a flat optimum (no information to find) up to 20 Adam steps per batch turn
    # rounding noise of the near-zero critic gradients into weight differences of ~1e-8


def test_resume_on_two_processes_is_exact_with_per_process_augmentations(two_processes):
    results, _ = two_processes
    for res in results:
        assert all(torch.equal(res['random full'][k], res['random resumed'][k]) for k in res['random full'])
    assert [res['seed'] for res in results] == [0, 1]      # each process draws its own augmentations

def test_checkpoint_of_two_processes_records_them_and_refuses_one(two_processes):
    _, out = two_processes
    ckpt = load_checkpoint(os.path.join(out, 'FactorCL-SUP'))
    assert ckpt['world_size'] == WORLD and len(ckpt['rank_rng']) == WORLD
    with pytest.raises(ValueError, match=r'written by a run of 2 process\(es\), this run has 1'):
        fit(build('FactorCL-SUP'), data(21), resume=os.path.join(out, 'FactorCL-SUP'))

# ---------------------------------------------------------------- misuse

def test_misuse_in_a_group_of_two_is_named(two_processes):
    results, _ = two_processes
    for res in results:
        assert 'batch_size=9 is the global batch (samples per step over all 2 processes) and must be divisible by 2' in res['odd batch']
        assert 'same local batch along dim 0' in res['ragged']

def test_misuse_without_a_group_is_named():
    assert not is_distributed() and not any(k in os.environ for k in TORCHRUN_ENV[:1])
    z = torch.randn(4, 2)
    assert gather_with_grad(z) is z
    with pytest.raises(ValueError, match='require_distributed=True but torch.distributed has no initialised process group'):
        gather_with_grad(z, require_distributed=True)
    with pytest.raises(ValueError, match='must be divisible by 4'): local_batch_size(10, 4)
    with pytest.raises(ValueError, match=r'the last batch of each epoch has 1 sample\(s\).*fewer than the 2 processes'):
        EpochBatchSampler(17, 8, shard=0, num_shards=2)
    with pytest.raises(ValueError, match='batch_size=7 is the global batch'):
        EpochBatchSampler(20, 7, shard=1, num_shards=2)
