"""Step time and peak memory of the FactorCL-SSL training step as the batch grows, chunked and unchunked.

    python benchmarks/batch_scaling.py            # concat critics at batch 256..2048, separable up to 16384 (hours on 2 cores)
    python benchmarks/batch_scaling.py --quick    # the smallest sizes only
    python benchmarks/batch_scaling.py --smoke    # tiny model (seconds), for the tests

The step is benchmarks/train_step.py's (authors' synthetic architecture, main step + one critic step). Series:
the naive tiled implementation, our concat critics unchunked, our concat critics with `chunk_size` (rows of the
score matrix per checkpointed chunk, FactorCL(..., chunk_size=...)), and separable critics. Every case runs in
its own process whose address space is capped (RLIMIT_AS, --mem-cap-gb): a case that cannot allocate what it
needs is reported as 'does not fit', and its series stops there. The first step of a case gives the peak-RSS
increase; the following --repeat steps give the time (median).
"""
import argparse, re, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent)); sys.path.insert(0, str(Path(__file__).parents[1]))
from common import isolated_run, default_mem_cap_gb

SERIES = ('naive', 'concat', 'chunked', 'separable')
CONCAT_SIZES, SEPARABLE_SIZES = [256, 512, 1024, 2048], [256, 512, 1024, 2048, 4096, 8192, 16384]

def series(chunk_size):
    "The four series: (label, make_step kwargs)."
    return [('naive tiled', dict(impl='naive')), ('ours concat', dict(impl='concat')),
            (f'ours concat chunk={chunk_size}', dict(impl='concat', chunk_size=chunk_size)),
            ('ours separable', dict(impl='separable'))]

def run_series(label, kwargs, sizes, run, report):
    """Run `run(n, kwargs)` for each batch size in turn; once a size does not fit, the larger ones are not run.
    `report(label, n, result)` prints one row; returns the results by size."""
    results, stopped_at = {}, None
    for n in sizes:
        r = dict(status='skipped', message=f'batch {stopped_at} did not fit') if stopped_at else run(n, kwargs)
        if r['status'] == 'oom' and stopped_at is None: stopped_at = n
        results[n] = r; report(label, n, r)
    return results

def _short(message):
    "The useful part of an error message: the size of the allocation that failed, when it says so."
    m = re.search(r'tried to allocate (\d+) bytes', message)
    return f"(an allocation of {int(m.group(1)) / 1024**3:.2f} GB failed)" if m else message[:110]

def format_row(label, n, r):
    if r['status'] == 'ok':
        if r.get('step_s') is not None: t = f"{r['step_s'] * 1e3:12.1f}"
        elif r.get('first_step_s') is not None: t = f"{r['first_step_s'] * 1e3:11.1f}*"   # first step only (--repeat 0)
        else: t = f"{'-':>12}"
        return f"  {n:>6} {label:<28} {t} {r['peak_increase_mb']:10.0f}"
    what = {'oom': 'does not fit', 'skipped': 'does not fit', 'timeout': 'timeout', 'error': 'ERROR'}[r['status']]
    return f"  {n:>6} {label:<28} {what:>12} {'':>10}   {_short(r.get('message', ''))}"

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='only the smallest sizes')
    ap.add_argument('--smoke', action='store_true', help='tiny model and batches (seconds), for the tests')
    ap.add_argument('--chunk-size', type=int, default=128, help='rows per checkpointed chunk of the chunked series')
    ap.add_argument('--mem-cap-gb', type=float, default=None, help='address-space cap per case (default: 20 GB, '
                    'or 85%% of the available memory when that is less)')
    ap.add_argument('--repeat', type=int, default=None, help='timed steps per case after the first (default 3; 1 from batch 1024)')
    ap.add_argument('--concat-sizes', type=int, nargs='+', help=f'batch sizes of the concat series (default {CONCAT_SIZES})')
    ap.add_argument('--separable-sizes', type=int, nargs='+', help=f'batch sizes of the separable series (default {SEPARABLE_SIZES})')
    ap.add_argument('--series', nargs='+', choices=list(SERIES), default=list(SERIES),
                    help='which implementations to run (default: all four)')
    ap.add_argument('--timeout', type=float, default=4 * 3600, help='seconds per case')
    a = ap.parse_args(argv)
    cap = a.mem_cap_gb or default_mem_cap_gb()
    size = 'smoke' if a.smoke else 'full'
    if a.smoke: concat, separable, chunk = [16], [16, 32], 8
    elif a.quick: concat, separable, chunk = CONCAT_SIZES[:1], SEPARABLE_SIZES[:3], a.chunk_size
    else: concat, separable, chunk = CONCAT_SIZES, SEPARABLE_SIZES, a.chunk_size
    concat, separable = a.concat_sizes or concat, a.separable_sizes or separable
    repeat = lambda n: a.repeat if a.repeat is not None else (1 if a.smoke or n >= 1024 else 3)
    def run(n, kwargs):
        return isolated_run('train_step', 'make_step', dict(kwargs, n=n, size=size), mem_cap_gb=cap,
                            repeat=repeat(n), timeout=a.timeout)
    print(f"torch {torch.__version__}; every case in its own process, address space capped at {cap:g} GB")
    print("FactorCL-SSL training step (main step + 1 critic step), authors' synthetic architecture"
          + (' (smoke: tiny model)' if a.smoke else ''))
    print(f"time: median of the steps after the first (* = the first step itself, with --repeat 0); "
          f"memory: peak RSS increase during the first step\n")
    print(f"  {'batch':>6} {'implementation':<28} {'ms/step':>12} {'peak MB':>10}", flush=True)
    report = lambda label, n, r: print(format_row(label, n, r), flush=True)
    out = {}
    for key, (label, kwargs) in zip(SERIES, series(chunk)):
        if key not in a.series: continue
        out[label] = run_series(label, kwargs, separable if kwargs['impl'] == 'separable' else concat, run, report)
    errors = [(l, n) for l, rs in out.items() for n, r in rs.items() if r['status'] == 'error']
    if errors: sys.exit(f"cases failed: {errors}")

if __name__ == '__main__': main()
