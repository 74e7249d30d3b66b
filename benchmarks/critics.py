"""Concat critic: factorcl_nb.critics.ConcatCritic against the naive tiled MLP (same parameters, same math).

    python benchmarks/critics.py            # all cases (the naive critic at n=1024 needs ~10 GB)
    python benchmarks/critics.py --quick    # small cases only

Step = forward + backward of the InfoNCE loss on the score matrix. Times are measured in this process,
both implementations interleaved; peak memory is measured in a fresh process per case (Linux peak RSS
increase during one step), so one case's allocations do not hide another's.
"""
import argparse, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent)); sys.path.insert(0, str(Path(__file__).parents[1]))
from common import timeit, isolated_peak
from factorcl_nb.critics import ConcatCritic, naive_concat_scores
from factorcl_nb.estimators import infonce_bound

def make_step(impl, n, d, hidden_layers, chunk_size=None, seed=0):
    torch.manual_seed(seed)
    critic = ConcatCritic(d, d, hidden_dim=512, hidden_layers=hidden_layers, chunk_size=chunk_size)
    x, y = torch.randn(n, d, requires_grad=True), torch.randn(n, d, requires_grad=True)
    score = (lambda: naive_concat_scores(critic, x, y)) if impl == 'naive' else (lambda: critic(x, y))
    def step():
        critic.zero_grad(set_to_none=True)
        (-infonce_bound(score())).backward()
    return step

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='skip n=1024 and the memory subprocesses of big cases')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("Figure 3 critic: n=64, d=200, Linear(400, 512) -> ReLU -> Linear(512, 1)")
    t_naive = timeit(make_step('naive', 64, 200, 1), repeat=20)
    t_ours = timeit(make_step('ours', 64, 200, 1), repeat=20)
    print(f"  naive tiled {t_naive*1e3:7.2f} ms   ConcatCritic {t_ours*1e3:7.2f} ms   speed-up {t_naive/t_ours:5.1f}x\n")

    print("FactorCL critic: d=256, two hidden layers of 512 (time: median step; memory: peak RSS increase in a step)")
    print(f"  {'n':>5} {'impl':>14} {'ms/step':>9} {'peak MB':>9} {'mem vs naive':>13}")
    for n in ([256, 512] if a.quick else [256, 512, 1024]):
        cases = [('naive', None), ('ours', None), ('ours', 64)]
        mem = {c: isolated_peak('critics', 'make_step', dict(impl=c[0], n=n, d=256, hidden_layers=2, chunk_size=c[1]))
               for c in cases}
        naive_mb = mem[('naive', None)]['peak_increase_mb'] if mem[('naive', None)] else None
        for impl, chunk in cases:
            label = impl if impl == 'naive' else f'ours chunk={chunk}'
            t = timeit(make_step(impl, n, 256, 2, chunk), repeat=3, warmup=1) if (mem[(impl, chunk)] or impl != 'naive') else None
            m = mem[(impl, chunk)]
            mb = m['peak_increase_mb'] if m else None
            ratio = f"{mb / naive_mb:12.3f}x" if (mb is not None and naive_mb) else ('  (naive did not fit)' if not naive_mb else '')
            shown = f"{mb:9.0f}" if mb is not None else '   failed'
            print(f"  {n:>5} {label:>14} {t*1e3 if t else float('nan'):9.1f} {shown} {ratio}")

if __name__ == '__main__': main()
