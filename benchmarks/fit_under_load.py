"""How much a small `fit` slows down when other processes keep the cores busy, with 1 and 2 torch threads.

The workload is the README's example: FactorCL-SUP on the UCI digits (pixels and Fourier views), 2 epochs. Each run is
a fresh process that sets torch's thread count and times `fit` alone (data loading and imports excluded). 'Loaded'
runs have two busy processes at the lowest priority (nice 19) beside them, as on a laptop where something else is
always running. Reported: the median over `--repeat` runs of each (threads, load) case, and the slowdown
loaded / quiet per thread count; `default` is the thread count torch picks by itself in a fresh process.

    python benchmarks/fit_under_load.py            # 2 epochs, 3 runs per case (about 2 minutes)
    python benchmarks/fit_under_load.py --smoke    # tiny, for the tests
"""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r'''
import json, sys, time, torch
threads, epochs, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
default = torch.get_num_threads()
if threads > 0: torch.set_num_threads(threads)
from factorcl_nb.data import load_mfeat
from factorcl_nb.runner import build_encoders
from factorcl_nb.models import FactorCL
from factorcl_nb.train import fit
tr = load_mfeat(views=('pix', 'fou'))['train']
x1, x2, y = tr['x1'][:n], tr['x2'][:n], tr['y'][:n]
torch.manual_seed(0)
model = FactorCL(build_encoders((240, 76), 64, 256, 2), 64, mode='sup', n_classes=10, critic='separable')
t = time.perf_counter()
fit(model, (x1, x2, y), epochs=epochs, lr=1e-3, progress=False)
print(json.dumps(dict(seconds=time.perf_counter() - t, threads=torch.get_num_threads(), default=default)))
'''
BUSY = 'import os; os.nice(19)\nwhile True: pass'


def one_fit(threads, epochs, n):
    "Seconds of one fit in a fresh process (threads 0: torch's own default)."
    env = {k: v for k, v in os.environ.items() if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    r = subprocess.run([sys.executable, '-c', CHILD, str(threads), str(epochs), str(n)], capture_output=True,
                       text=True, env=env, timeout=1800)
    if r.returncode != 0: raise RuntimeError(f"fit failed ({threads} threads):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(threads_list, epochs, n, repeat, busy):
    "Median seconds per thread count, with `busy` lowest-priority spinning processes running beside each fit."
    spinners = [subprocess.Popen([sys.executable, '-c', BUSY]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)
        runs = {k: [] for k in threads_list}
        for _ in range(repeat):            # interleaved, so a change of load hits every case alike
            for k in threads_list: runs[k].append(one_fit(k, epochs, n))
    finally:
        for p in spinners: p.kill()
        for p in spinners: p.wait()
    return {k: dict(seconds=statistics.median(r['seconds'] for r in v), threads=v[0]['threads'],
                    default=v[0]['default']) for k, v in runs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--samples', type=int, default=1600, help='training samples (the README uses all 1600)')
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--busy', type=int, default=2, help='lowest-priority busy processes in the loaded case')
    ap.add_argument('--smoke', action='store_true', help='1 epoch on 300 samples, 1 run per case')
    ap.add_argument('--out', default=None, help='also write the table to this file')
    a = ap.parse_args(argv)
    if a.smoke: a.epochs, a.samples, a.repeat = 1, 300, 1
    cases = [1, 2, 0]
    quiet = measure(cases, a.epochs, a.samples, a.repeat, 0)
    loaded = measure(cases, a.epochs, a.samples, a.repeat, a.busy)
    default = quiet[0]['default']
    lines = [f"fit of FactorCL-SUP on UCI digits: {a.epochs} epochs, {a.samples} samples, median of {a.repeat} runs; "
             f"loaded: {a.busy} busy processes at nice 19; {os.cpu_count()} CPUs; torch's default: {default} threads",
             f"{'threads':>12} {'quiet s':>9} {'loaded s':>9} {'slowdown':>9}"]
    for k in cases:
        label = f"default ({quiet[k]['threads']})" if k == 0 else str(k)
        lines.append(f"{label:>12} {quiet[k]['seconds']:9.2f} {loaded[k]['seconds']:9.2f} "
                     f"{loaded[k]['seconds'] / quiet[k]['seconds']:9.2f}x")
    text = '\n'.join(lines)
    print(text)
    if a.out: Path(a.out).write_text(text + '\n')
    return quiet, loaded


if __name__ == '__main__':
    main()
