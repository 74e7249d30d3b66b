"Small timing and peak-memory helpers shared by the benchmarks (CPU and CUDA)."
import json, os, resource, subprocess, sys, time
from pathlib import Path
import torch

def timeit(fn, repeat=5, warmup=2):
    "Median wall time of `fn()` in seconds (CUDA synchronised)."
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        t = time.perf_counter(); fn()
        if torch.cuda.is_available(): torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]

def peak_rss_mb():
    "Peak resident memory of this process so far, in MB (Linux ru_maxrss is in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def isolated_peak(module, func, kwargs, timeout=900):
    """In a fresh Python process, build `module.func(**kwargs)` (a step closure), run one step and return the
    increase of the peak RSS (MB) over the peak after setup; None when it ran out of memory or failed."""
    code = (f"import json,sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import common, {module} as m; "
            f"print(json.dumps(common._child(m.{func}, {kwargs!r})))")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    try: r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired: return None
    if r.returncode != 0: return None
    return json.loads(r.stdout.strip().splitlines()[-1])

def _child(make, kwargs):
    import gc
    step = make(**kwargs)          # builds models and inputs
    gc.collect()
    before = peak_rss_mb()         # peak so far: imports, parameters, inputs
    step()                         # the measured step: its activations and gradients raise the peak
    return dict(peak_increase_mb=peak_rss_mb() - before, baseline_mb=before)
