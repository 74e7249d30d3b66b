"The benchmark scripts run (tiny sizes) and compare like with like: the naive step computes our step's loss."
import os, subprocess, sys
import pytest, torch
from factorcl_nb.augment import identity
from factorcl_nb.models import independent
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))
import common, train_step, batch_scaling

def run_script(name, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert r.returncode == 0, f"{name} {args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout

def test_train_step_smoke():
    out = run_script('train_step.py', '--smoke', '--accuracy', '--threads', '1', timeout=600)   # 6 isolated memory runs
    for header in ('implementation', 'ms/step', 'speed-up vs naive', 'peak MB', 'memory vs naive', 'targets (issue 13)',
                   'GFLOP run', 'necessary', 'floor ms', 'share of floor', 'measured in this run', 'probe accuracy'):
        assert header in out, header
    for label in train_step.IMPLS.values():
        if 'naive,' not in label: assert label in out, label
    for row in ('untrained (same init)', 'float32', 'bf16 autocast'): assert row in out

def test_batch_scaling_smoke():
    out = run_script('batch_scaling.py', '--smoke')
    for header in ('batch', 'implementation', 'ms/step', 'peak MB', 'address space capped'): assert header in out
    for label in ('naive tiled', 'ours concat', 'ours concat chunk=8', 'ours separable'): assert label in out
    assert 'ERROR' not in out and 'does not fit' not in out

def test_batch_mi_smoke():
    out = run_script('batch_mi.py', '--smoke')
    for header in ('train batch', 'eval batch', 'log(batch)', 'InfoNCE', 'true MI'): assert header in out
    rows = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
    assert len(rows) == 3
    for train_b, eval_b, log_b, nce, *_ in rows:
        assert float(nce) <= float(log_b) + 1e-6   # InfoNCE never exceeds log(batch)

@pytest.mark.parametrize('chunk_size', [None, 8])
def test_naive_step_computes_our_loss(chunk_size):
    "Same weights, same batch, float64, identity augmentation: every term, the critic loss and the gradients agree."
    model = train_step.build_model('concat', 'smoke', chunk_size=chunk_size, augment=independent(identity)).double()
    naive = train_step.NaiveFactorCLSSL.from_model(model, 'smoke', augment_choices=('identity',))
    assert sum(p.numel() for p in naive.parameters()) == sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(2, 24, train_step.ARCHS['smoke']['in_dim'], generator=g, dtype=torch.float64)
    ours, ref = model.loss(x1, x2), naive.loss(x1, x2)
    for k in train_step.NaiveFactorCLSSL.CRITIC_TERMS + ('loss',):
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-10, atol=1e-10, msg=k)
    ours['loss'].backward(); ref['loss'].backward()
    for name in ('encoders', 'shared_x1', 'unique_x2'):
        for p, q in zip(getattr(model, name).parameters(), getattr(naive, name).parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(model.critic_loss(x1, x2), naive.critic_loss(x1, x2), rtol=1e-10, atol=1e-10)

def test_naive_augment_loops_per_sample():
    x = torch.randn(50, 7)
    torch.testing.assert_close(train_step.naive_augment(x, ('identity',)), x)
    torch.manual_seed(0)
    out = train_step.naive_augment(x)
    changed = (out != x).any(1)
    assert 0 < int(changed.sum()) < 50   # one transform per sample: some samples keep identity

def test_memory_cap_reports_does_not_fit():
    big = common.isolated_run('common', '_allocation_step', dict(gb=6), mem_cap_gb=3)
    assert big['status'] == 'oom', big
    small = common.isolated_run('common', '_allocation_step', dict(gb=0.1), mem_cap_gb=3, repeat=1)
    assert small['status'] == 'ok' and small['peak_increase_mb'] > 50 and small['step_s'] > 0, small
    assert common.isolated_run('common', 'no_such_step', {})['status'] == 'error'

def test_series_stops_where_it_no_longer_fits():
    ran, rows = [], []
    def fake_run(n, kwargs):
        ran.append(n)
        return dict(status='oom', message='no') if n >= 512 else dict(status='ok', step_s=0.1, peak_increase_mb=n)
    res = batch_scaling.run_series('x', {}, [256, 512, 1024, 2048], fake_run, lambda *r: rows.append(batch_scaling.format_row(*r)))
    assert ran == [256, 512]
    assert [res[n]['status'] for n in (256, 512, 1024, 2048)] == ['ok', 'oom', 'skipped', 'skipped']
    assert all('does not fit' in r for r in rows[1:]) and 'does not fit' not in rows[0]

def test_necessary_flops_from_the_critics_shapes():
    """Main step: 6 critics forward + input gradient, the 4 InfoNCE critics (main parameters) also their weight
    gradient; critic step: the 2 NCE-CLUB critics all three. 22 passes of 2 h^2 per pair for 2 x 512 critics."""
    model = train_step.build_model('concat', 'full')
    main = model.main_parameters()
    trained = [t for t in train_step.MAIN_TERMS if train_step.trained_in(main, t, model)]
    assert sorted(trained) == sorted(['shared_nce', 'unique_nce_x1', 'unique_nce_x2', 'unique_cond_nce'])
    assert not any(train_step.trained_in(main, t, model) for t in train_step.CRITIC_STEP_TERMS)
    assert all(train_step.trained_in(model.critic_parameters(), t, model) for t in train_step.CRITIC_STEP_TERMS)
    for n in (4, 256):
        assert train_step.necessary_flops(model, n) == 22 * n * n * 2 * 512 * 512
        assert train_step.necessary_flops(model, n, critic_steps=5) == (16 + 5 * 6) * n * n * 2 * 512 * 512
    smoke = train_step.build_model('concat', 'smoke')
    assert train_step.hidden_layers_of(smoke.shared_nce.critic) == [(32, 32)]

def test_executed_flops_count_products():
    run, f = train_step.matmul_probe(8, 4, torch.float32, calls=3)
    assert f == 3 * 2 * 8 * 4 * 4 and train_step.executed_flops(run) == f

def test_concat_step_executes_only_the_necessary_pairwise_products():
    "Executed minus necessary FLOPs of our concat step is per-sample work (encoders, heads, first layers): linear in n."
    for steps, first in ((1, False), (3, True)):
        extra = {}
        for n in (32, 64):
            step, model = train_step.make_step('concat', n=n, size='smoke', return_model=True, critic_steps=steps, critic_first=first)
            extra[n] = train_step.executed_flops(step) - train_step.necessary_flops(model, n, steps)
        assert extra[32] > 0 and extra[64] == 2 * extra[32], (steps, extra)

def test_profile_concat_splits_matmul_forward_backward():
    out = run_script('profile_concat.py', '--batch', '16', '--size', 'smoke', '--top', '3', '--threads', '1', '--impls', 'concat')
    for text in ('=== concat', 'forward   matmul', 'backward  matmul', 'matrix products:', 'Input Shapes'): assert text in out, text
    import profile_concat
    split, _, _ = profile_concat.profile_step('concat', 16, 'smoke', 3)
    k = split['kinds']
    assert k[('forward', 'matmul')] > 0 and k[('backward', 'matmul')] > 0 and k[('backward', 'other')] > 0
    assert any(ph == 'backward' and 'threshold_backward' in name for ph, name in split['ops'])

def test_fit_under_load_smoke():
    "The load benchmark times a fit with 1, 2 and the default torch threads, quiet and beside busy processes."
    out = run_script('fit_under_load.py', '--smoke', timeout=600)
    rows = [l.split() for l in out.splitlines()[2:] if l.strip()]
    assert [r[0] for r in rows] == ['1', '2', 'default'], out
    for r in rows:
        quiet, loaded, slowdown = float(r[-3]), float(r[-2]), float(r[-1].rstrip('x'))
        assert quiet > 0 and loaded > 0 and abs(slowdown - loaded / quiet) < 0.01, r
