"""What a larger batch buys: InfoNCE on correlated Gaussians with true MI above log(batch).

    python benchmarks/batch_mi.py            # dim 20, true MI 8 nats, batch 64 vs 1024 (about a minute or two)
    python benchmarks/batch_mi.py --smoke    # a few steps (seconds), for the tests

InfoNCE can never exceed log(batch) (its scores are a softmax over the batch), so at batch 64 (log 64 = 4.16) an
8-nat dependence is estimated at most 4.16 nats; batch 1024 lifts the ceiling to 6.93. Each critic is trained with
factorcl_nb.estimators.train_critic_on_gaussians (Adam lr 5e-3, fresh batches every step) at its batch size, then
evaluated on fresh batches; the critic trained at 64 is also evaluated at 1024, which separates the ceiling of the
evaluation batch from what training at a large batch teaches the critic. NCE-CLUB (the upper bound from the same
critic) is printed beside it.
"""
import argparse, math, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parents[1]))
from factorcl_nb.estimators import NCECLUB, sample_gaussian_pair, train_critic_on_gaussians

def train(batch, dim=20, mi=8.0, steps=2000, critic='separable', chunk_size=None, seed=0):
    "An NCE-CLUB estimator whose critic is trained by InfoNCE on `steps` fresh batches of `batch` pairs."
    torch.manual_seed(seed)
    kw = dict(chunk_size=chunk_size) if critic == 'concat' else {}
    est = NCECLUB(dim, dim, critic=critic, hidden_dim=512, **kw)
    return train_critic_on_gaussians(est, dim, mi, steps=steps, batch_size=batch, lr=5e-3, seed=seed)

@torch.no_grad()
def evaluate(est, batch, dim=20, mi=8.0, batches=20, seed=1):
    "Mean (InfoNCE, NCE-CLUB) over `batches` fresh batches of `batch` pairs."
    g = torch.Generator().manual_seed(seed)
    vals = torch.tensor([[float(v) for v in est.both(*sample_gaussian_pair(batch, dim, mi, g))] for _ in range(batches)])
    return vals.mean(0).tolist()

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dim', type=int, default=20)
    ap.add_argument('--mi', type=float, default=8.0, help='true mutual information, nats')
    ap.add_argument('--steps', type=int, default=2000, help='critic training steps per batch size')
    ap.add_argument('--batches', type=int, nargs='+', default=[64, 1024])
    ap.add_argument('--critic', choices=['separable', 'concat'], default='separable')
    ap.add_argument('--chunk-size', type=int, default=128, help='concat critic: rows per checkpointed chunk')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--smoke', action='store_true', help='a few steps with small batches (seconds)')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    steps, batches, n_eval = (20, [16, 64], 2) if a.smoke else (a.steps, a.batches, 20)
    print(f"InfoNCE on correlated Gaussians: dim {a.dim}, true MI {a.mi:g} nats, {a.critic} critic, {steps} training steps\n")
    print(f"  {'train batch':>11} {'eval batch':>10} {'log(batch)':>10} {'InfoNCE':>8} {'NCE-CLUB':>9} {'true MI':>8} {'train s':>8}")
    trained = {}
    for b in batches:
        t = time.perf_counter()
        trained[b] = train(b, a.dim, a.mi, steps, a.critic, a.chunk_size)
        sec = time.perf_counter() - t
        nce, club = evaluate(trained[b], b, a.dim, a.mi, n_eval)
        print(f"  {b:>11} {b:>10} {math.log(b):10.2f} {nce:8.2f} {club:9.2f} {a.mi:8.2f} {sec:8.1f}", flush=True)
    small, large = min(batches), max(batches)
    if small != large:
        nce, club = evaluate(trained[small], large, a.dim, a.mi, n_eval)
        print(f"  {small:>11} {large:>10} {math.log(large):10.2f} {nce:8.2f} {club:9.2f} {a.mi:8.2f} {'-':>8}")
    print("\n  InfoNCE <= log(eval batch) always: the larger batch raises the ceiling on what it can report.")

if __name__ == '__main__': main()
