"""Probe accuracy after float32 vs bf16-autocast training of the small synthetic FactorCL run, seed by seed.

    python benchmarks/bf16_accuracy.py                          # FactorCL-SUP and -SSL, seeds 0 1 2, n=3000, 8 epochs
    python benchmarks/bf16_accuracy.py --methods FactorCL-SUP --seeds 0 --n 600 --epochs 1   # seconds

Each run is `factorcl_nb.runner.small_factorcl_run` (separable critics unless `--critic concat`, batch 128) on the training part of a
train/test split of the synthetic data; the trained network's factors (all of `model.embed`) are probed with
`factorcl_nb.evaluate.linear_probe` on the held-out part, standardised with the training part's statistics as the
run does. A run has diverged when any logged term exceeds `--diverged` in absolute value or is not finite.
Reported per seed: final loss, largest |term| over the run, accuracy in float32 and in bf16, and the mean
accuracy difference bf16 - float32 over the seeds."""
import argparse, math, os, sys, time
from pathlib import Path
from unittest import mock
import torch
sys.path.insert(0, str(Path(__file__).parents[1]))
import factorcl_nb.runner as runner
from factorcl_nb.data import make_synthetic
from factorcl_nb.evaluate import linear_probe

TERMS = ('loss', 'shared_nce', 'shared_club', 'shared_club_infonce', 'unique_nce_x1', 'unique_nce_x2', 'unique_club',
         'unique_club_infonce', 'unique_cond_nce')

def trained_run(method, seed, amp, n, epochs, test_size, critic=None):
    "`small_factorcl_run` on the training split; returns (history, trained model). The model is caught at its `fit` call."
    caught = {}
    def fit(model, *args, **kw):
        caught['model'] = model
        return real_fit(model, *args, **kw)
    real_fit = runner.fit
    with mock.patch.object(runner, 'fit', fit):
        hist = runner.small_factorcl_run(method, seed=seed, n=n, test_size=test_size, epochs=epochs, amp=amp,
                                         model=None if critic is None else dict(critic=critic))
    return hist, caught['model']

def held_out_accuracy(model, seed, n, test_size):
    "Linear-probe accuracy of all embeddings: fitted on the training split, scored on the test split."
    d = make_synthetic(n, seed=seed)
    tr, te = d.split(test_size, seed=seed)
    mu1, sd1, mu2, sd2 = tr.x1.mean(0), tr.x1.std(0) + 1e-6, tr.x2.mean(0), tr.x2.std(0) + 1e-6
    feats = lambda s: runner.probe_features(model, (s.x1 - mu1) / sd1, (s.x2 - mu2) / sd2)
    return linear_probe(feats(tr), tr.y, feats(te), te.y)['accuracy']

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--methods', nargs='+', default=['FactorCL-SUP', 'FactorCL-SSL'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--n', type=int, default=3000, help='synthetic samples (train + test)')
    ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--test-size', type=float, default=0.3)
    ap.add_argument('--diverged', type=float, default=50.0,
                    help='nats: a run diverged when a logged |term| exceeds this (InfoNCE on a batch of 128 is at most log 128 = 4.9)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--critic', choices=['separable', 'concat'], default=None,
                    help="the runs' critics (default: small_factorcl_run's, separable)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); small_factorcl_run ({a.critic or 'default'} critics), n={a.n} "
          f"(test {a.test_size:.0%}), {a.epochs} epochs; probe: linear_probe on all embeddings, held-out split")
    print(f"\n  {'method':<14} {'seed':>4} {'amp':>5} {'final loss':>11} {'max |term|':>11} {'diverged':>9} "
          f"{'accuracy':>9} {'train s':>8}")
    summary = {}
    for method in a.methods:
        for seed in a.seeds:
            for amp in ('off', 'bf16'):
                t = time.perf_counter()
                hist, model = trained_run(method, seed, amp, a.n, a.epochs, a.test_size, a.critic)
                sec = time.perf_counter() - t
                terms = hist[[c for c in TERMS if c in hist.columns]].to_numpy()
                worst = float(abs(terms).max()) if math.isfinite(abs(terms).max()) else float('inf')
                diverged = not (abs(terms) <= a.diverged).all()
                acc = held_out_accuracy(model, seed, a.n, a.test_size)
                summary.setdefault(method, {}).setdefault(seed, {})[amp] = acc
                print(f"  {method:<14} {seed:4d} {amp:>5} {hist['loss'].iloc[-1]:11.4f} {worst:11.3g} "
                      f"{'YES' if diverged else 'no':>9} {acc:9.3f} {sec:8.1f}", flush=True)
    print("\n  accuracy difference bf16 - float32 (target: bf16 at most 1 point below float32 on average)")
    for method, by_seed in summary.items():
        diffs = [r['bf16'] - r['off'] for r in by_seed.values()]
        mean = sum(diffs) / len(diffs)
        print(f"    {method:<14} per seed {' '.join(f'{d:+.3f}' for d in diffs)}   mean {mean:+.4f}  "
              f"{'met' if mean >= -0.01 else 'NOT met'}")

if __name__ == '__main__': main()
