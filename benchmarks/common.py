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

def _status_mb(field):
    "A memory field of /proc/self/status (VmRSS, VmHWM) in MB."
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'): return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")

def _child(make, kwargs):
    import gc
    step = make(**kwargs)          # builds models and inputs
    gc.collect()
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')   # reset the peak (VmHWM) to the current RSS
    before = _status_mb('VmRSS')   # parameters and inputs are resident
    step()                         # the measured step: activations, gradients, optimizer state
    return dict(peak_increase_mb=_status_mb('VmHWM') - before, baseline_mb=before)
