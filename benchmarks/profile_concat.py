"""Where the time of one FactorCL-SSL step with concat critics goes: torch.profiler by operator.

    python benchmarks/profile_concat.py                 # batch 256, float32 and bf16 autocast
    python benchmarks/profile_concat.py --batch 32 --size smoke --top 5

One step = benchmarks/train_step.py's step (main step with frozen critics, then one critic step), after one
warm-up step. The table lists operators by their own CPU time (forward and backward ops both appear: backward
ops are named e.g. `ThresholdBackward0` / `aten::threshold_backward`).
"""
import argparse, sys
from pathlib import Path
import torch
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, str(Path(__file__).parent)); sys.path.insert(0, str(Path(__file__).parents[1]))
from train_step import make_step

def profile_step(impl, n, size, top, chunk_size=None):
    step = make_step(impl, n, size, chunk_size=chunk_size)
    step()                                                   # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof: step()
    ka = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ka)
    return ka.table(sort_by='self_cpu_time_total', row_limit=top, max_name_column_width=40), total / 1e6

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--size', choices=['full', 'smoke'], default='full')
    ap.add_argument('--impls', nargs='+', default=['concat', 'concat-bf16'])
    ap.add_argument('--chunk-size', type=int, default=None)
    ap.add_argument('--top', type=int, default=25)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FactorCL-SSL step, batch {a.batch}, "
          f"{a.size} architecture, concat critics" + (f", chunk_size={a.chunk_size}" if a.chunk_size else ''))
    for impl in a.impls:
        table, total = profile_step(impl, a.batch, a.size, a.top, a.chunk_size)
        print(f"\n=== {impl}: sum of self CPU time {total:.2f} s (profiler overhead included) ===")
        print(table, flush=True)

if __name__ == '__main__': main()
