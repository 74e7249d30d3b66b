"""Where the time of one FactorCL-SSL step with concat critics goes: torch.profiler by operator, forward and backward.

    python benchmarks/profile_concat.py                 # batch 256, float32 and bf16 autocast
    python benchmarks/profile_concat.py --batch 32 --size smoke --top 5

One step = benchmarks/train_step.py's step (main step, then one critic step), after one warm-up step. For each
implementation it prints the split of self CPU time into matrix products (mm, addmm, addmv, ...) and everything
else, forward and backward (an op is backward when the autograd engine runs it), the non-matmul operators that
cost most, and the profiler's own table by operator and input shape.
"""
import argparse, sys
from collections import defaultdict
from pathlib import Path
import torch
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, str(Path(__file__).parent)); sys.path.insert(0, str(Path(__file__).parents[1]))
from train_step import make_step

MATMUL = ('aten::mm', 'aten::addmm', 'aten::addmv', 'aten::addmv_', 'aten::bmm', 'aten::baddbmm', 'aten::mv',
          'aten::dot', 'aten::linear', 'aten::matmul')

def phase(event) -> str:
    "'backward' when `event` runs inside the autograd engine (its own name or an ancestor's), else 'forward'."
    e = event
    while e is not None:
        if e.name.startswith('autograd::engine') or e.name.endswith('Backward') or 'Backward0' in e.name: return 'backward'
        e = e.cpu_parent
    return 'forward'

def split_times(events) -> dict:
    "Self CPU seconds by (phase, 'matmul' | 'other') and by (phase, operator) for the operators outside matmul."
    kinds, ops = defaultdict(float), defaultdict(float)
    for e in events:
        if not e.name.startswith('aten::'): continue       # wrappers (PairMLP, autograd nodes) keep only their own overhead
        ph, t = phase(e), e.self_cpu_time_total / 1e6
        kind = 'matmul' if e.name in MATMUL else 'other'
        kinds[ph, kind] += t
        if kind == 'other': ops[ph, e.name] += t
    return dict(kinds=dict(kinds), ops=dict(ops))

def profile_step(impl, n, size, top, chunk_size=None):
    "Profile one step of `impl`: (split_times dict, the profiler's table by operator and shape, total self s)."
    step = make_step(impl, n, size, chunk_size=chunk_size)
    step()                                                   # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof: step()
    ka = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in ka) / 1e6
    table = ka.table(sort_by='self_cpu_time_total', row_limit=top, max_name_column_width=36, max_shapes_column_width=60)
    return split_times(prof.events()), table, total

def report(impl, split, total, top):
    "Lines: matmul vs other time, forward and backward, and the costliest non-matmul operators."
    k, lines = split['kinds'], [f"=== {impl}: sum of self CPU time {total:.2f} s (profiler overhead included)"]
    aten = sum(k.values())
    for ph in ('forward', 'backward'):
        mm, other = k.get((ph, 'matmul'), 0.0), k.get((ph, 'other'), 0.0)
        lines.append(f"  {ph:<9} matmul {mm:8.3f} s   other aten ops {other:8.3f} s")
    mm = sum(v for (ph, kind), v in k.items() if kind == 'matmul')
    lines.append(f"  matrix products: {mm / max(aten, 1e-12):.0%} of the aten ops' self time; outside them, by operator:")
    for (ph, name), t in sorted(split['ops'].items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {name:<36} {ph:<9} {t:7.3f} s")
    return lines

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--size', choices=['full', 'smoke'], default='full')
    ap.add_argument('--impls', nargs='+', default=['concat', 'concat-bf16'])
    ap.add_argument('--chunk-size', type=int, default=None)
    ap.add_argument('--top', type=int, default=15)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FactorCL-SSL step, batch {a.batch}, "
          f"{a.size} architecture, concat critics" + (f", chunk_size={a.chunk_size}" if a.chunk_size else ''))
    for impl in a.impls:
        split, table, total = profile_step(impl, a.batch, a.size, 2 * a.top, a.chunk_size)
        print('\n' + '\n'.join(report(impl, split, total, a.top)))
        print(table, flush=True)

if __name__ == '__main__': main()
