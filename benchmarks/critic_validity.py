"""Do the NCE-CLUB critics keep up? Share of logged steps with 0 <= InfoNCE <= NCE-CLUB, per critic, before/after.

    python benchmarks/critic_validity.py                  # quick synthetic setting, 3 seeds, old vs new defaults
    python benchmarks/critic_validity.py --seeds 0 --epochs 2 --out /tmp/cv   # a fast look

For FactorCL-SUP and FactorCL-SSL on `make_synthetic` (the quick setting of nbs/experiments/synthetic_probe.ipynb:
6000 samples, 8 epochs, separable critics), train once per (settings, method, seed) with a history row at every
step. Each NCE-CLUB critic logs its own InfoNCE and its NCE-CLUB value from one score matrix at the main step,
i.e. exactly the critic the encoders are trained against. A step is *valid* for a critic when
0 <= InfoNCE <= NCE-CLUB; the share is taken over the steps after the warm-up. Writes figures/critic_validity.png
and figures/critic_validity.csv (atomically) unless --out says otherwise.
"""
import argparse, io, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).parents[1]))
from factorcl_nb.core import atomic_write
from factorcl_nb.data.synthetic import synthetic_setting
from factorcl_nb.runner import build_encoders
from factorcl_nb.models import make_model
from factorcl_nb.train import TrainConfig, fit, bound_validity

CRITICS = ('shared_club', 'unique_club')
# the authors' schedule (one critic step per main step at the main lr, no warm-up) and this package's defaults
PAPER = dict(critic_steps=1, critic_max_steps=1, critic_first=False, critic_lr=None, critic_lr_factor=1.0, critic_warmup=0, lr_warmup=0)
OURS = {k: getattr(TrainConfig(), k) for k in PAPER}
QUICK = dict(encoder=dict(embed_dim=64, hidden_dim=256, n_hidden=2),
             model=dict(proj_dim=64, head_hidden=64, critic_hidden=256, critic_layers=1))

def synthetic(n, seed):
    "Standardised train split of the synthetic data and its unique latent augmentation (`synthetic_setting`, as in synthetic_probe)."
    st = synthetic_setting(n, seed=seed)
    return st.train_views, st.augment(unique=True, std=0.5)


def run(method, seed, schedule, n=6000, epochs=8, critic='separable', lr=1e-3, batch_size=256):
    "History (one row per step) of one training run."
    (x1, x2, y), aug = synthetic(n, seed)
    torch.manual_seed(seed)
    net = make_model(method, build_encoders((x1.shape[1], x2.shape[1]), **QUICK['encoder']), QUICK['encoder']['embed_dim'],
                     n_classes=2, unique_augment=aug, critic=critic, **QUICK['model'])
    data = (x1, x2, y) if net.needs_labels else (x1, x2)
    return fit(net, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, log_every=1, progress=False,
               device='cpu', **schedule)

def cached_run(cache, method, seed, schedule, **kw):
    "`run`, its history kept as a csv in the folder `cache` (None: no cache) keyed by every setting."
    if cache is None: return run(method, seed, schedule, **kw)
    key = '_'.join(f"{k}={v}" for k, v in sorted({**schedule, **kw, 'method': method, 'seed': seed}.items()))
    path = Path(cache) / f"{key}.csv"
    if path.is_file(): return pd.read_csv(path)
    t = time.time(); h = run(method, seed, schedule, **kw).assign(seconds=time.time() - t)
    atomic_write(path, h.to_csv(index=False))
    return h

def measure(seeds, methods, schedules, cache=None, **kw) -> pd.DataFrame:
    rows = []
    for name, schedule in schedules.items():
        warm = schedule['critic_warmup'] + schedule['lr_warmup']
        for method in methods:
            for seed in seeds:
                h = cached_run(cache, method, seed, schedule, **kw); secs = h.time.iloc[-1]
                share = bound_validity(h, after=warm)
                for c in CRITICS:
                    last = h.iloc[-1]
                    rows.append(dict(settings=name, method=method, seed=seed, critic=c, share_valid=share[c],
                                     steps_after_warmup=int((h.step > warm).sum()), final_infonce=last[f'{c}_infonce'],
                                     final_nce_club=last[c], min_infonce=h[h.step > warm][f'{c}_infonce'].min(), seconds=secs,
                                     **{k: str(v) for k, v in schedule.items()}))
                    print(rows[-1], flush=True)
    return pd.DataFrame(rows)

def plot(table:pd.DataFrame, title:str):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt, seaborn as sns
    t = table.assign(critic_of=table.method + '\n' + table.critic)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    sns.barplot(t, x='critic_of', y='share_valid', hue='settings', errorbar=('ci', 95), ax=ax, capsize=0.1)
    sns.stripplot(t, x='critic_of', y='share_valid', hue='settings', dodge=True, palette='dark:k', size=3, legend=False, ax=ax)
    ax.axhline(0.95, color='tab:red', ls='--', lw=1, label='95% rule')
    ax.set(ylim=(0, 1.02), xlabel='', ylabel='share of steps with\n0 <= InfoNCE <= NCE-CLUB', title=title)
    ax.legend(fontsize=8, loc='lower right'); fig.tight_layout()
    return fig

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--methods', nargs='+', default=['FactorCL-SUP', 'FactorCL-SSL'])
    ap.add_argument('--n', type=int, default=6000); ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--critic', default='separable', choices=['separable', 'concat'])
    ap.add_argument('--only', choices=['paper', 'ours'], help='run one schedule only')
    ap.add_argument('--out', default=str(Path(__file__).parents[1] / 'figures'), help='folder of critic_validity.{png,csv}')
    ap.add_argument('--name', default='critic_validity')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--cache', default=None, help='folder keeping each run\'s history (reused when present)')
    ap.add_argument('--schedule', nargs=5, metavar=('STEPS', 'FIRST', 'CRITIC_LR_FACTOR', 'WARMUP', 'LR_WARMUP'),
                    help='try another schedule instead of the two (FIRST: "first" or "after")')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    schedules = {'authors (1 step, no warm-up)': PAPER, 'ours (defaults)': OURS}
    if a.schedule:
        st, first, clr, w, lw = a.schedule
        schedules = {f'try {" ".join(a.schedule)}': dict(critic_steps=int(st), critic_first=first == 'first',
                                                          critic_lr=None, critic_lr_factor=float(clr),
                                                          critic_warmup=int(w), lr_warmup=int(lw))}
    if a.only: schedules = {k: v for k, v in schedules.items() if k.startswith('authors' if a.only == 'paper' else 'ours')}
    print(f"schedules: {schedules}")
    table = measure(a.seeds, a.methods, schedules, cache=a.cache, n=a.n, epochs=a.epochs, critic=a.critic)
    summary = table.groupby(['settings', 'method', 'critic']).share_valid.agg(['mean', 'min', 'count'])
    print(summary.to_string())
    out = Path(a.out)
    atomic_write(out / f'{a.name}.csv', table.to_csv(index=False))
    fig = plot(table, f"NCE-CLUB critics, synthetic {a.n} samples, {a.epochs} epochs, {a.critic} critics, seeds {a.seeds}")
    buf = io.BytesIO(); fig.savefig(buf, format='png', dpi=120, bbox_inches='tight'); atomic_write(out / f'{a.name}.png', buf.getvalue())
    print(f"wrote {out / a.name}.csv and .png")

if __name__ == '__main__': main()
