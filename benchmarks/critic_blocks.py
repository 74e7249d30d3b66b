"""One concat critic as in FactorCL (128 + 128 inputs, two hidden layers of 512), forward + backward of a
logsumexp loss at batch n: the module path against the fused PairMLP at several block sizes (rows of the score
matrix per block), critic frozen (as in the main step) and trained (as in the critic step), interleaved, median of 3.

    python benchmarks/critic_blocks.py 256 f32 8,32,128
    python benchmarks/critic_blocks.py 256 bf16 8,32,128

The 'floor share' column divides 2 (frozen) or 3 (trained) times the time of n/4 products [4n, 512] @ [512, 512]
by the step time; on a loaded machine the small products suffer more than the step, so read it as relative only.
"""
import sys, time, statistics
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parents[1]))
import torch
from factorcl_nb.critics import ConcatCritic
torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
bf16 = len(sys.argv) > 2 and sys.argv[2] == 'bf16'
torch.manual_seed(0)
crit = ConcatCritic(128, 128, hidden_dim=512, hidden_layers=2, fused=False)
def fast_scores(critic, x, y, block_rows):
    "The fused path with `block_rows` rows per block."
    critic.fused, critic.block_pairs = True, block_rows * len(y)
    try: return critic(x, y)
    finally: critic.fused = False
x = torch.randn(n,128,requires_grad=True); y = torch.randn(n,128,requires_grad=True)
def mk(fn, frozen):
    def step():
        for p in crit.parameters(): p.requires_grad_(not frozen)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            s = fn()
        s.float().logsumexp(1).sum().backward()
    return step
cases = {'old': lambda: crit(x, y)}
for br in map(int, sys.argv[3].split(',')) if len(sys.argv) > 3 else (1,2,4,8):
    cases[f'fast r={br}'] = (lambda br=br: fast_scores(crit, x, y, block_rows=br))
dt = torch.bfloat16 if bf16 else torch.float32
A = torch.randn(4*n, 512, dtype=dt); W = torch.randn(512,512, dtype=dt)
def mmt():
    for _ in range(n//4): A @ W
times = {}
for frozen in (True, False):
    fns = {f'{k} frozen={frozen}': mk(f, frozen) for k, f in cases.items()}
    fns['matmul'] = mmt
    for f in fns.values(): f()
    t = {k: [] for k in fns}
    for _ in range(3):
        for k, f in fns.items():
            t0 = time.perf_counter(); f(); t[k].append(time.perf_counter() - t0)
    for k, v in t.items():
        med = statistics.median(v)
        units = 2 if frozen else 3
        floor = units * statistics.median(t['matmul'])
        print(f"{k:28s} {med*1e3:8.1f} ms   floor share {floor/med:5.2f}")
