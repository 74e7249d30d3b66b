"""FactorCL-SSL training step: factorcl_nb against a naive implementation of the same math, in the same process.

    python benchmarks/train_step.py              # batch 256, the authors' synthetic architecture (several minutes)
    python benchmarks/train_step.py --accuracy   # also: probe accuracy after float32 vs bf16 training (~1-2 min)
    python benchmarks/train_step.py --smoke      # tiny sizes (seconds), for the tests
    python benchmarks/train_step.py --batch 1024 --chunk-size 128 --impls concat concat-bf16 --repeat 1 --no-memory

Besides the time, each implementation's FLOPs are counted (torch.utils.flop_counter, one step) and set beside the
FLOPs a step cannot avoid: the pairwise hidden-to-hidden products of the concat critics (per pair and critic
2 h^2 per h x h layer forward, the same for the gradient to the input, and again for the weight gradient of the
critics trained in that step: the main step runs the 6 critics forward and backward to their inputs and trains the
4 InfoNCE critics with the encoders (they are main parameters; only the 2 NCE-CLUB critics are frozen there), the
critic step runs the 2 NCE-CLUB critics with weight gradients). The floor is that count at this machine's matmul
throughput, measured in the same run (interleaved with the steps) at the critics' shape [n*m or chunk*m, h] @ [h, h].

One step = what factorcl_nb.train.fit does per batch: `--critic-steps` critic steps on `model.critic_loss` (main
parameters frozen, own Adam; default: TrainConfig's critic_steps, run before the main step when its critic_first is
set) and a main step on `model.loss` (the NCE-CLUB critics frozen, own Adam). Architecture (the authors' synthetic one):
encoders MLP 100-512-512-512-128, projection heads 128-128-128, concat critics with two hidden layers of 512 on
the 128-d projections (256-d on the conditional terms' [z, z'] pairs), views of 100 features.

The naive step is written below in the style of the authors' code: every concat critic scores the tiled
[n, n, dx + dy] input, and the augmentation loops over the samples in Python, drawing one transform (Gaussian
noise, mixup or identity) per sample. It has the same parameters as our model (`NaiveFactorCLSSL.from_model`
copies them) and computes the same loss (tests/test_benchmarks.py checks it in float64 on identical views).

Times: median of several steps, the implementations interleaved. Memory: increase of the peak RSS during one step,
each case in a fresh process (benchmarks/common.py), so one case's allocations do not hide another's.
"""
import argparse, math, os, sys, time
from pathlib import Path
import numpy as np
import torch
from torch import nn
sys.path.insert(0, str(Path(__file__).parent)); sys.path.insert(0, str(Path(__file__).parents[1]))
from common import timeit_interleaved, isolated_run, _status_mb
from factorcl_nb.augment import feature_augment
from factorcl_nb.encoders import mlp_encoder, ProjectionHead
from factorcl_nb.models import FactorCL, independent
from factorcl_nb.train import TrainConfig, make_optimization, main_step, critic_phase, frozen, fit
from factorcl_nb.critics import ConcatCritic

ARCHS = {  # 'full': the authors' synthetic model; 'smoke': the same shape of model, tiny, for the tests
    'full': dict(in_dim=100, hidden=512, n_hidden=3, embed=128, proj=128, head_hidden=128, critic_hidden=512, critic_layers=2),
    'smoke': dict(in_dim=12, hidden=32, n_hidden=2, embed=16, proj=8, head_hidden=16, critic_hidden=32, critic_layers=2),
}
IMPLS = {'naive': 'naive (tiled, per-sample aug)', 'naive-bf16': 'naive, bf16 autocast',
         'concat-modules': 'ours concat modules float32', 'concat-modules-bf16': 'ours concat modules bf16',
         'concat': 'ours concat float32', 'concat-bf16': 'ours concat bf16 autocast', 'separable': 'ours separable float32'}
DEFAULT_IMPLS = ['naive', 'concat-modules', 'concat-modules-bf16', 'concat', 'concat-bf16', 'separable']

# ----------------------------------------------------------------------------------------------- our model
def build_model(critic='concat', size='full', chunk_size=None, augment=None, seed=0, mode='ssl') -> FactorCL:
    "FactorCL-SSL (or -SUP, binary labels) with the authors' synthetic architecture (`size='full'`), built from `seed`."
    a = ARCHS[size]
    torch.manual_seed(seed)
    encoders = [mlp_encoder(a['in_dim'], a['embed'], a['hidden'], a['n_hidden']) for _ in range(2)]
    return FactorCL(encoders, a['embed'], mode=mode, n_classes=2 if mode == 'sup' else None, proj_dim=a['proj'],
                    head_hidden=a['head_hidden'], critic=critic, critic_hidden=a['critic_hidden'],
                    critic_layers=a['critic_layers'], chunk_size=chunk_size,
                    augment=None if mode == 'sup' else augment or independent(feature_augment()))

# ----------------------------------------------------------------------------------------------- naive model
def naive_augment(x, choices=('noise', 'mixup', 'identity'), std=0.1, alpha=1.0):
    "Per-sample Python loop: each sample draws one transform from `choices` (as the authors' augmentation does)."
    n, rows = len(x), []
    for i in range(n):
        kind = choices[int(torch.randint(len(choices), ()))]
        if kind == 'noise': rows.append(x[i] + std * torch.randn_like(x[i]))
        elif kind == 'mixup':
            j = int(torch.randint(n - 1, ())); j += j >= i                 # a partner other than i
            lam = float(np.random.beta(alpha, alpha))
            rows.append(lam * x[i] + (1 - lam) * x[j])
        else: rows.append(x[i])
    return torch.stack(rows)

class TiledConcatCritic(nn.Module):
    "Concat critic as the authors write it: the MLP runs on every tiled pair, input [n, n, x_dim + y_dim]."
    def __init__(self, x_dim, y_dim, hidden, layers):
        super().__init__()
        dims, mods = [x_dim + y_dim] + [hidden] * layers, []
        for a, b in zip(dims[:-1], dims[1:]): mods += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*mods, nn.Linear(hidden, 1))

    def forward(self, x, y):
        n = len(x)
        pairs = torch.cat([x[:, None, :].repeat(1, n, 1), y[None, :, :].repeat(n, 1, 1)], dim=2)
        return self.net(pairs).squeeze(-1)

def naive_infonce(scores): return (scores.diagonal() - scores.logsumexp(1)).mean() + math.log(len(scores))
def naive_nce_club(scores): return scores.diagonal().mean() - scores.mean()

class NaiveFactorCLSSL(nn.Module):
    "FactorCL-SSL (paper eq. 8, 9, 16, removal terms counted once) with tiled concat critics and a per-sample augmentation loop."
    CRITIC_TERMS = ('shared_nce', 'shared_club', 'unique_nce_x1', 'unique_nce_x2', 'unique_club', 'unique_cond_nce')
    def __init__(self, size='full', augment_choices=('noise', 'mixup', 'identity')):
        super().__init__()
        a, self.augment_choices = ARCHS[size], augment_choices
        self.encoders = nn.ModuleList([mlp_encoder(a['in_dim'], a['embed'], a['hidden'], a['n_hidden']) for _ in range(2)])
        head = lambda: ProjectionHead(a['embed'], a['head_hidden'], a['proj'])
        self.shared_x1, self.shared_x2, self.unique_x1, self.unique_x2 = head(), head(), head(), head()
        p = a['proj']
        dims = dict(shared_nce=(p, p), shared_club=(2 * p, 2 * p), unique_nce_x1=(p, p), unique_nce_x2=(p, p),
                    unique_club=(p, p), unique_cond_nce=(2 * p, 2 * p))
        self.critics = nn.ModuleDict({k: TiledConcatCritic(*dims[k], a['critic_hidden'], a['critic_layers'])
                                      for k in self.CRITIC_TERMS})

    @classmethod
    def from_model(cls, model:FactorCL, size='full', **kwargs):
        "A naive model holding copies of `model`'s parameters (same shapes, checked)."
        naive = cls(size, **kwargs).to(next(model.parameters()).dtype)
        with torch.no_grad():
            for name in ('encoders', 'shared_x1', 'shared_x2', 'unique_x1', 'unique_x2'):
                getattr(naive, name).load_state_dict(getattr(model, name).state_dict())
            for name, tiled in naive.critics.items():
                ours = getattr(model, name).critic
                src, dst = [ours.first.weight, ours.first.bias, *ours.rest.parameters()], list(tiled.parameters())
                assert [s.shape for s in src] == [d.shape for d in dst], f"{name}: parameter shapes differ"
                for d, s in zip(dst, src): d.copy_(s)
        return naive

    def factors(self, x1, x2):
        h1, h2 = self.encoders[0](x1), self.encoders[1](x2)
        return self.shared_x1(h1), self.shared_x2(h2), self.unique_x1(h1), self.unique_x2(h2)

    def augmented_factors(self, x1, x2):
        return self.factors(naive_augment(x1, self.augment_choices), naive_augment(x2, self.augment_choices))

    def loss(self, x1, x2):
        s1, s2, u1, u2 = self.factors(x1, x2)
        s1a, s2a, u1a, u2a = self.augmented_factors(x1, x2)
        f, cat = self.critics, torch.cat
        t = dict(shared_nce=naive_infonce(f['shared_nce'](s1, s2)),
                 shared_club=naive_nce_club(f['shared_club'](cat([s1, s1a], 1), cat([s2, s2a], 1))),
                 unique_nce_x1=naive_infonce(f['unique_nce_x1'](u1, u1a)),
                 unique_nce_x2=naive_infonce(f['unique_nce_x2'](u2, u2a)),
                 unique_club=naive_nce_club(f['unique_club'](u1, u2)),
                 unique_cond_nce=naive_infonce(f['unique_cond_nce'](cat([u1, u1a], 1), cat([u2, u2a], 1))))
        t['loss'] = -(t['shared_nce'] - t['shared_club'] + t['unique_nce_x1'] + t['unique_nce_x2']
                      + t['unique_cond_nce'] - t['unique_club'])
        return t

    def critic_loss(self, x1, x2):
        with torch.no_grad():
            s1, s2, u1, u2 = self.factors(x1, x2)
            s1a, s2a, _, _ = self.augmented_factors(x1, x2)
        f, cat = self.critics, torch.cat
        return (-naive_infonce(f['shared_club'](cat([s1, s1a], 1), cat([s2, s2a], 1)))
                - naive_infonce(f['unique_club'](u1, u2)))

    def critic_parameters(self): return [*self.critics['shared_club'].parameters(), *self.critics['unique_club'].parameters()]
    def main_parameters(self):
        ids = {id(p) for p in self.critic_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

def naive_train_step(model, main_opt, critic_opt, x1, x2, bf16=False, critic_steps=1, critic_first=False):
    "Main step (critics frozen) and `critic_steps` critic steps (main parameters frozen), as factorcl_nb.train does."
    cast = lambda: torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16)
    def critic_phase():
        closs = None
        for _ in range(critic_steps):
            critic_opt.zero_grad(set_to_none=True)
            with frozen(model.main_parameters()):
                with cast(): closs = model.critic_loss(x1, x2)
                closs.backward(); critic_opt.step()
        return closs
    if critic_first: closs = critic_phase()
    main_opt.zero_grad(set_to_none=True)
    with frozen(model.critic_parameters()):
        with cast(): loss = model.loss(x1, x2)['loss']
        loss.backward(); main_opt.step()
    if not critic_first: closs = critic_phase()
    return loss.detach(), None if closs is None else closs.detach()

# ----------------------------------------------------------------------------------------------- one step
def make_step(impl='concat', n=256, size='full', chunk_size=None, seed=0, lr=1e-4, block_pairs=None, return_model=False,
              critic_steps=1, critic_first=False):
    """A closure running one FactorCL-SSL training step of `impl` (a key of IMPLS) on a fixed random batch of `n`:
    a main step and `critic_steps` critic steps (before it when `critic_first`, as fit orders them).
    'concat-modules*': the concat critics run module by module (ConcatCritic(fused=False), the implementation
    before the fused PairMLP); `block_pairs` sets the fused critics' block size. `return_model`: (step, model)."""
    if impl not in IMPLS: raise ValueError(f"impl must be one of {list(IMPLS)}, got {impl!r}")
    model = build_model('separable' if impl == 'separable' else 'concat', size, chunk_size, seed=seed)
    for m in model.modules():
        if isinstance(m, ConcatCritic):
            m.fused = m.fused and not impl.startswith('concat-modules')
            if block_pairs is not None: m.block_pairs = block_pairs
    g = torch.Generator().manual_seed(seed + 1)
    x1, x2 = torch.randn(2, n, ARCHS[size]['in_dim'], generator=g)
    if impl.startswith('naive'):
        naive = NaiveFactorCLSSL.from_model(model, size)
        main_opt, critic_opt = torch.optim.Adam(naive.main_parameters(), lr), torch.optim.Adam(naive.critic_parameters(), lr)
        step = lambda: naive_train_step(naive, main_opt, critic_opt, x1, x2, bf16=impl.endswith('bf16'),
                                        critic_steps=critic_steps, critic_first=critic_first)
        return (step, model) if return_model else step
    config = TrainConfig(lr=lr, device='cpu', amp='bf16' if impl.endswith('bf16') else 'off', progress=False)
    o = make_optimization(model, config, torch.device('cpu'))
    def step():
        if critic_first: critic_phase(o, (x1, x2), 1, critic_steps)
        main_step(o, (x1, x2), 1)
        if not critic_first: critic_phase(o, (x1, x2), 1, critic_steps)
    return (step, model) if return_model else step

# ----------------------------------------------------------------------------------------------- FLOPs and floor
MAIN_TERMS = ('shared_nce', 'shared_club', 'unique_nce_x1', 'unique_nce_x2', 'unique_club', 'unique_cond_nce')
CRITIC_STEP_TERMS = ('shared_club', 'unique_club')

def hidden_layers_of(critic:ConcatCritic):
    "The h x h layers of a concat critic, as (h_in, h_out) pairs (the first layer is per sample, the last is h x 1)."
    lins = [l for l in critic.rest if isinstance(l, nn.Linear)]
    return [(l.in_features, l.out_features) for l in lins[:-1]]

def trained_in(params, name, model:FactorCL) -> bool:
    "Whether the critic of term `name` has its weights among `params` (so that step needs their gradient)."
    ids = {id(p) for p in params}
    return all(id(p) in ids for p in getattr(model, name).critic.parameters())

def necessary_flops(model:FactorCL, n:int, critic_steps:int=1) -> float:
    """FLOPs of one step that no implementation can avoid: the pairwise h x h products of the concat critics,
    2 h_in h_out per pair and layer, counted once forward and once for the input gradient of every critic a step
    runs, and once more for the weight gradient of the critics that step trains: in the main step the critics
    whose weights are `model.main_parameters()` (the InfoNCE critics), in each of the `critic_steps` critic steps
    the NCE-CLUB critics."""
    per = lambda name: n * n * sum(2 * a * b for a, b in hidden_layers_of(getattr(model, name).critic))
    main = model.main_parameters()
    return (sum((3 if trained_in(main, t, model) else 2) * per(t) for t in MAIN_TERMS)
            + critic_steps * sum(3 * per(t) for t in CRITIC_STEP_TERMS))

def executed_flops(step) -> float:
    "FLOPs one call of `step` executes, as torch.utils.flop_counter counts them (matmul-like ops)."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: step()
    return float(fc.get_total_flops())

def matmul_probe(rows:int, h:int, dtype, calls=2):
    "A closure running `calls` products [rows, h] @ [h, h] in `dtype`, and the FLOPs it executes."
    g = torch.Generator().manual_seed(0)
    a, w = torch.randn(rows, h, generator=g).to(dtype), torch.randn(h, h, generator=g).to(dtype)
    def run():
        for _ in range(calls): a @ w
    return run, calls * 2.0 * rows * h * h

# ----------------------------------------------------------------------------------------------- accuracy
def synthetic_task(n, seed=0, shared=10, unique=6, dim=100):
    "Authors' synthetic generator: w ~ N(0, 0.5 I), view i = [w_s, w_i] @ A_i (A_i uniform [0, 1]), y = 1[mean(w) >= 0]."
    g = torch.Generator().manual_seed(seed)
    ws, w1, w2 = (math.sqrt(0.5) * torch.randn(n, k, generator=g) for k in (shared, unique, unique))
    a1, a2 = torch.rand(shared + unique, dim, generator=g), torch.rand(shared + unique, dim, generator=g)
    x1, x2 = torch.cat([ws, w1], 1) @ a1, torch.cat([ws, w2], 1) @ a2
    y = (torch.sigmoid(torch.cat([ws, w1, w2], 1).mean(1)) >= 0.5).long()   # all latents label-relevant
    return x1, x2, y

def probe_accuracy(model, train, test):
    "Logistic regression on the concatenated factors [s1, s2, u1, u2] of un-augmented views: test accuracy."
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.pipeline import make_pipeline
    feats = lambda d: torch.cat([model.embed(d[0], d[1])[k] for k in ('s1', 's2', 'u1', 'u2')], 1).float().numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats(train), train[2].numpy())
    return float(clf.score(feats(test), test[2].numpy()))

def accuracy_check(mode='sup', size='full', n_train=1024, n_test=1024, epochs=2, batch_size=64, lr=1e-3, seed=0):
    "Train FactorCL (concat critics) in float32 and in bf16 from the same seed; probe accuracy of each."
    x1, x2, y = synthetic_task(n_train + n_test, seed, dim=ARCHS[size]['in_dim'])
    mean1, std1, mean2, std2 = x1[:n_train].mean(0), x1[:n_train].std(0), x2[:n_train].mean(0), x2[:n_train].std(0)
    x1, x2 = (x1 - mean1) / std1, (x2 - mean2) / std2
    train, test = (x1[:n_train], x2[:n_train], y[:n_train]), (x1[n_train:], x2[n_train:], y[n_train:])
    build = lambda: build_model('concat', size, seed=seed, mode=mode)
    rows = [('untrained (same init)', None, probe_accuracy(build().eval(), train, test), 0.0)]
    for amp in ('off', 'bf16'):
        model = build()
        t = time.perf_counter()
        hist = fit(model, train if mode == 'sup' else train[:2], epochs=epochs, batch_size=batch_size, lr=lr, amp=amp,
                   device='cpu', seed=seed, progress=False, log_every=10**9)
        rows.append(('float32' if amp == 'off' else 'bf16 autocast', float(hist['loss'].iloc[-1]),
                     probe_accuracy(model.eval(), train, test), time.perf_counter() - t))
    return rows

# ----------------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--chunk-size', type=int, default=None, help='rows per chunk of the concat critics (ours; naive ignores it)')
    ap.add_argument('--critic-steps', type=int, default=TrainConfig.critic_steps,
                    help=f"critic steps per batch (default: TrainConfig's, {TrainConfig.critic_steps}; the authors: 1)")
    ap.add_argument('--block-pairs', type=int, default=None, help="fused concat critics: pairs per block (default: the critic's)")
    ap.add_argument('--impls', nargs='+', choices=list(IMPLS), default=None, help=f'implementations (default {DEFAULT_IMPLS})')
    ap.add_argument('--repeat', type=int, default=5, help='timed steps per implementation (median reported)')
    ap.add_argument('--warmup', type=int, default=1, help='untimed steps per implementation first (the FLOP count is one more)')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--naive-bf16', action='store_true', help='also time the naive step under bf16 autocast')
    ap.add_argument('--no-memory', action='store_true', help='skip the isolated peak-memory processes')
    ap.add_argument('--no-flops', action='store_true', help='skip counting the FLOPs of each implementation')
    ap.add_argument('--accuracy', action='store_true', help='probe accuracy after float32 vs bf16 training')
    ap.add_argument('--accuracy-mode', choices=['sup', 'ssl'], default='sup', help='FactorCL mode of the accuracy check')
    ap.add_argument('--smoke', action='store_true', help='tiny model and batch (seconds), for the tests')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    size = 'smoke' if a.smoke else 'full'
    n = 32 if a.smoke else a.batch
    repeat, warmup = (1, 1) if a.smoke else (a.repeat, a.warmup)
    arch = ARCHS[size]
    impls = a.impls or (DEFAULT_IMPLS[:1] + (['naive-bf16'] if a.naive_bf16 else []) + DEFAULT_IMPLS[1:])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; machine load average at start "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} (shared machine: times are noisy, ratios and shares are the figure)")
    order = 'before' if TrainConfig.critic_first else 'after'
    print(f"FactorCL-SSL training step (main step + {a.critic_steps} critic step{'s' * (a.critic_steps != 1)}, {order} it as fit "
          f"orders them), batch {n}, views of {arch['in_dim']} features; "
          f"encoders {arch['in_dim']}-{'-'.join([str(arch['hidden'])] * arch['n_hidden'])}-{arch['embed']}, "
          f"critics {arch['critic_layers']} x {arch['critic_hidden']} hidden" + (f", chunk_size {a.chunk_size}" if a.chunk_size else ''))
    kw = dict(n=n, size=size, chunk_size=a.chunk_size, block_pairs=a.block_pairs, critic_steps=a.critic_steps,
              critic_first=TrainConfig.critic_first)
    built = {k: make_step(k, return_model=True, **kw) for k in impls}
    steps = {k: v[0] for k, v in built.items()}
    model = next(iter(built.values()))[1]
    need = necessary_flops(model, n, a.critic_steps)
    h = arch['critic_hidden']
    rows = n * (min(a.chunk_size, n) if a.chunk_size else n)
    probes = {dt: matmul_probe(rows, h, getattr(torch, dt)) for dt in ('float32', 'bfloat16')}
    flops = {k: (None if a.no_flops else executed_flops(steps[k])) for k in impls}
    rss = {}
    def with_rss(k, fn):
        "`fn` with the peak-RSS increase of its calls recorded (in this process; Linux)."
        def run():
            try:
                with open('/proc/self/clear_refs', 'w') as f: f.write('5')
                before = _status_mb('VmRSS'); fn(); rss[k] = max(rss.get(k, 0.0), _status_mb('VmHWM') - before)
            except OSError: fn()
        return run
    timed = {k: with_rss(k, fn) for k, fn in steps.items()}
    timed.update({f'matmul {dt}': fn for dt, (fn, _) in probes.items()})
    times = timeit_interleaved(timed, repeat=repeat, warmup=warmup)
    thru = {dt: probes[dt][1] / times[f'matmul {dt}'] for dt in probes}
    floor = {dt: need / thru[dt] for dt in thru}
    print(f"\n  matmul [{rows} x {h}] @ [{h} x {h}] measured in this run: float32 {thru['float32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {thru['bfloat16'] / 1e9:.0f} GFLOP/s")
    print(f"  necessary FLOPs per step (pairwise h x h products of the concat critics): {need / 1e9:.1f} GFLOP -> "
          f"floor {floor['float32']:.2f} s float32, {floor['bfloat16']:.2f} s bf16")
    mem = {k: (dict(status='skipped') if a.no_memory else isolated_run('train_step', 'make_step', dict(impl=k, **kw)))
           for k in impls}
    mb = {k: m.get('peak_increase_mb') for k, m in mem.items()}
    base = 'naive' if 'naive' in impls else impls[0]
    print(f"\n  {'implementation':<32} {'ms/step':>10} {'speed-up vs ' + base:>20} {'GFLOP run':>10} {'necessary':>10} "
          f"{'floor ms':>9} {'share of floor':>15} {'peak MB':>9} {'memory vs naive':>16} {'RSS+ MB':>8}")
    share = {}
    for k in impls:
        speed = times[base] / times[k]
        dt = 'bfloat16' if k.endswith('bf16') else 'float32'
        share[k] = floor[dt] / times[k]
        mem_ratio = f"{mb[k] / mb['naive']:15.2f}x" if (mb[k] is not None and mb.get('naive')) else f"{'n/a':>16}"
        peak = f"{mb[k]:9.0f}" if mb[k] is not None else f"{'n/a':>9}"
        note = '' if mem[k]['status'] in ('ok', 'skipped') else f"   memory: {mem[k]['status']}: {mem[k].get('message', '')}"
        fl = f"{flops[k] / 1e9:10.1f}" if flops[k] is not None else f"{'n/a':>10}"
        print(f"  {IMPLS[k]:<32} {times[k] * 1e3:10.1f} {speed:19.2f}x {fl} {need / 1e9:10.1f} {floor[dt] * 1e3:9.0f} "
              f"{share[k]:14.0%} {peak} {mem_ratio} {rss.get(k, float('nan')):8.0f}{note}")
    print("  (share of floor = necessary FLOPs at the measured matmul throughput of the step's dtype / step time; "
          "RSS+ = largest peak-RSS increase of a timed step, in this process)")
    print("\n  targets (issue 13)" + (" (smoke sizes: not meaningful)" if a.smoke else ''))
    targets = [('concat', 'float32 >= 85% of its floor', lambda s: s >= 0.85), ('concat-bf16', 'bf16 >= 50% of its floor', lambda s: s >= 0.5)]
    if a.chunk_size: targets = [(k, 'chunked: step <= 2x its floor', lambda s: s >= 0.5) for k in ('concat', 'concat-bf16')]
    for k, target, met in targets:
        if k in share:
            print(f"    {IMPLS[k]:<30} {share[k]:6.0%} of floor  {'met' if met(share[k]) else 'NOT met'} ({target})")
    if any(m['status'] == 'error' for m in mem.values()): sys.exit("a memory measurement failed (see 'memory: error' above)")
    if a.accuracy:
        kw = dict(size='smoke', n_train=256, n_test=128, epochs=1, batch_size=32) if a.smoke else {}
        kw['mode'] = a.accuracy_mode
        print(f"\nbf16 accuracy check: FactorCL-{a.accuracy_mode.upper()} (concat critics) trained briefly on the synthetic "
              "task from the same seed; probe: logistic regression on [s1, s2, u1, u2] of held-out samples")
        print(f"  {'training':<24} {'final loss':>11} {'probe accuracy':>15} {'train s':>8}")
        rows = accuracy_check(**kw)
        for name, loss, acc, sec in rows:
            print(f"  {name:<24} {'' if loss is None else f'{loss:11.4f}':>11} {acc:15.3f} {sec:8.1f}")
        acc = {name: a for name, _, a, _ in rows}
        diff = acc['bf16 autocast'] - acc['float32']
        print(f"  accuracy bf16 - float32: {diff:+.3f}  {'met' if diff >= -0.01 else 'NOT met'} "
              "(target: bf16 at most 1 point below float32; one seed, see benchmarks/bf16_accuracy.py for several)")

if __name__ == '__main__': main()
