"Small timing and peak-memory helpers shared by the benchmarks (CPU and CUDA)."
import json, os, resource, signal, statistics, subprocess, sys, time
from pathlib import Path
import torch

def _sync():
    if torch.cuda.is_available(): torch.cuda.synchronize()

def timeit(fn, repeat=5, warmup=2):
    "Median wall time of `fn()` in seconds (CUDA synchronised)."
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeat):
        _sync(); t = time.perf_counter(); fn(); _sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)

def timeit_interleaved(fns:dict, repeat=5, warmup=1) -> dict:
    """Median wall time (s) of each `fns[name]()`, the functions run in turn (round robin) so that a change of
    machine load during the measurement hits every implementation alike."""
    for _ in range(warmup):
        for fn in fns.values(): fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            _sync(); t = time.perf_counter(); fn(); _sync()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}

def peak_rss_mb():
    "Peak resident memory of this process so far, in MB (Linux ru_maxrss is in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def available_memory_gb():
    "MemAvailable of /proc/meminfo in GB (None where there is no /proc)."
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemAvailable:'): return int(line.split()[1]) / 1024**2
    except OSError: return None

def default_mem_cap_gb(ceiling=20.0):
    """Address-space cap for an isolated case: `ceiling` GB, lowered to 85% of the memory available now so that a
    case that does not fit fails inside its own process instead of waking the kernel's OOM killer."""
    avail = available_memory_gb()
    return ceiling if avail is None else round(min(ceiling, 0.85 * avail), 1)

_OOM_WORDS = ("can't allocate memory", 'cannot allocate memory', 'std::bad_alloc', 'out of memory', 'MemoryError')

def isolated_run(module, func, kwargs, mem_cap_gb=None, repeat=0, timeout=900):
    """In a fresh Python process, build the step closure `module.func(**kwargs)` (module: a file of benchmarks/),
    run one step and measure its peak RSS minus the RSS before it (MB), then time `repeat` more
    steps (median, s). The process's address space is capped at `mem_cap_gb` GB (RLIMIT_AS) when given.
    Returns dict(status='ok'|'oom'|'timeout'|'error', peak_increase_mb, baseline_mb, step_s, message):
    'oom' is an allocation that failed under the cap (or a kill by the kernel), 'error' anything else."""
    code = (f"import json,sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import common, {module} as m; "
            f"print(json.dumps(common._child(m.{func}, {kwargs!r}, {mem_cap_gb!r}, {repeat!r})))")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    try: r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired: return dict(status='timeout', message=f'no result after {timeout} s')
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines: return json.loads(lines[-1])
    tail = (r.stderr.strip().splitlines() or [''])[-1][:300]
    if r.returncode == -signal.SIGKILL or any(w.lower() in r.stderr.lower() for w in _OOM_WORDS):
        return dict(status='oom', message=tail or 'killed')
    return dict(status='error', message=f'exit code {r.returncode}: {tail}')

def isolated_peak(module, func, kwargs, timeout=900):
    """In a fresh Python process, build `module.func(**kwargs)` (a step closure), run one step and return
    dict(peak_increase_mb=its peak RSS minus the RSS before it, baseline_mb); None when it ran out of memory or failed."""
    r = isolated_run(module, func, kwargs, timeout=timeout)
    return dict(peak_increase_mb=r['peak_increase_mb'], baseline_mb=r['baseline_mb']) if r['status'] == 'ok' else None

def _status_mb(field):
    "A memory field of /proc/self/status (VmRSS, VmHWM) in MB."
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'): return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")

def _child(make, kwargs, mem_cap_gb=None, repeat=0):
    import gc
    if mem_cap_gb:
        cap = int(mem_cap_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        step = make(**kwargs)          # builds models and inputs
        gc.collect()
        # Reset the peak (VmHWM) to the current RSS: ru_maxrss never resets, so a step whose peak stays below the
        # peak of the imports or the setup would read 0.
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        before = _status_mb('VmRSS')   # parameters and inputs are resident
        t0 = time.perf_counter()
        step()                         # the measured step: activations, gradients, optimizer state
        first_step_s = time.perf_counter() - t0
        peak = _status_mb('VmHWM') - before
        step_s = timeit(step, repeat=repeat, warmup=0) if repeat else None
    except (RuntimeError, MemoryError) as e:
        if isinstance(e, MemoryError) or any(w.lower() in str(e).lower() for w in _OOM_WORDS):
            return dict(status='oom', message=str(e).splitlines()[0][:300])
        raise
    return dict(status='ok', peak_increase_mb=peak, baseline_mb=before, step_s=step_s, first_step_s=first_step_s)

def _allocation_step(gb:float):
    "A step that allocates and touches `gb` GB (tests the memory cap of `isolated_run`)."
    return lambda: torch.ones(int(gb * 1024**3) // 4).sum()
