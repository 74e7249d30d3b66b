"""Tests of the `factorcl-repro` command on tiny experiment notebooks built here (a few papermill runs)."""
import json, os, re, signal, subprocess, sys, time
from importlib import import_module
from pathlib import Path

import nbformat
import pytest

import factorcl_nb.repro as repro
from factorcl_nb.core import save_results
from factorcl_nb.repro import main, run_experiments, find_experiments, experiment_parameters, ExperimentError
from factorcl_nb.report import write_report

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}
# An experiment body: saves what it received (and whether it runs under factorcl-repro) with save_results.
SAVE = '''import os, time, pandas as pd
from factorcl_nb.core import save_results
t0 = time.perf_counter()
params = {k: globals()[k] for k in ('scale', 'out_dir', 'device', 'seed', 'data_dir') if k in globals()}
params['under_repro'] = os.environ.get('FACTORCL_REPRO')
figure = None
if WITH_FIGURE:
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    figure, ax = plt.subplots(); ax.plot([0, 1])
save_results(name, out_dir, table=pd.DataFrame(dict(scale=[scale])), figure=figure, params=params,
             report=f'Result of {name} at scale {scale}.', wall_time=time.perf_counter() - t0)'''


def make_experiment(folder, name, title, params, body=SAVE, with_figure=True):
    "Write `<folder>/<name>.ipynb`: a title, a cell tagged `parameters`, then `body`."
    pcell = nbformat.v4.new_code_cell('\n'.join(f'{k} = {v!r}' for k, v in params.items()),
                                      metadata={'tags': ['parameters']})
    body = f'name, WITH_FIGURE = {name!r}, {with_figure}\n' + body
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': KERNELSPEC}, cells=[
        nbformat.v4.new_markdown_cell(f'Intro line.\n\n# {title}\n\n> subtitle'), pcell, nbformat.v4.new_code_cell(body)])
    Path(folder).mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, Path(folder)/f'{name}.ipynb')


def make_good(folder):
    "demo_a declares every parameter except data_dir; demo_b only scale and out_dir."
    make_experiment(folder, 'demo_a', 'Figure 9: demo A', dict(scale='quick', out_dir='figures', device='cpu', seed=0))
    make_experiment(folder, 'demo_b', 'Table 9: demo B', dict(scale='quick', out_dir='figures'), with_figure=False)


@pytest.fixture(scope='module')
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp('nbs')/'experiments'
    make_good(d)
    return d


def papermill_parameters(notebook):
    return json.loads(Path(notebook).read_text())['metadata']['papermill']['parameters']


def test_list(good, capsys):
    assert main(['--list', '--nbs-dir', str(good)]) == 0
    assert capsys.readouterr().out.splitlines() == ['demo_a  Figure 9: demo A', 'demo_b  Table 9: demo B']
    assert main(['--list', '--nbs-dir', str(good.parent)]) == 0  # the `nbs` folder holding experiments/ works too
    assert 'demo_b  Table 9: demo B' in capsys.readouterr().out


def test_missing_experiments_folder(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e: main(['--list', '--nbs-dir', str(tmp_path/'nope')])
    assert e.value.code == 2 and 'nbs_dir must be an existing folder' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(['--list', '--nbs-dir', str(tmp_path)])  # exists, but no notebooks
    assert e.value.code == 2 and 'no experiment notebooks' in capsys.readouterr().err
    monkeypatch.setattr(repro, 'package_root', lambda: tmp_path)  # as if installed outside a clone
    with pytest.raises(SystemExit) as e: main(['--list'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'pip install -e .' in err and '--nbs-dir' in err
    assert repro.default_out() == Path.cwd()/'figures'


def test_default_out_is_the_clones_figures():
    assert repro.package_root() == ROOT and repro.default_out() == ROOT/'figures'


def test_unknown_name_and_scale(good, capsys):
    with pytest.raises(SystemExit) as e: main(['demo_a', 'nope', '--nbs-dir', str(good)])
    assert e.value.code == 2
    assert "unknown experiment 'nope'; valid names: demo_a, demo_b" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(['--scale', 'huge', '--nbs-dir', str(good)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'huge'" in err and "'quick', 'paper'" in err
    with pytest.raises(ValueError, match='scale must be one of tiny, quick, paper'): run_experiments(scale='huge', nbs_dir=good)
    with pytest.raises(ValueError, match='valid names: demo_a, demo_b'): run_experiments(['x'], nbs_dir=good)


def test_only_declared_parameters_are_passed(good, tmp_path):
    exps = find_experiments(good)
    assert sorted(exps['demo_a'].parameters) == ['device', 'out_dir', 'scale', 'seed']
    full = experiment_parameters(exps['demo_a'], 'paper', tmp_path, 'cpu', seed=1, data_dir=tmp_path)
    assert full == dict(scale='paper', out_dir='.', device='cpu', seed=1)  # no data_dir; the kernel runs in out_dir
    assert experiment_parameters(exps['demo_b'], 'paper', tmp_path, 'cpu', seed=1) == dict(scale='paper', out_dir='.')
    assert 'seed' not in experiment_parameters(exps['demo_a'], 'quick', tmp_path, 'cpu')  # unset: notebook default


def test_default_run_stops_at_the_failing_notebook(good, tmp_path, capsys):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_good(nbs)
    make_experiment(nbs, 'zz_fails', 'Fails on purpose', dict(scale='quick'), body="raise RuntimeError('deliberate failure')")
    save_results('earlier', out, params=dict(scale='quick'), report='From an earlier run.', wall_time=65)
    assert main(['--nbs-dir', str(nbs), '--out', str(out), '--scale', 'paper', '--seed', '3']) == 1
    err = capsys.readouterr().err
    failed = out.resolve()/'zz_fails.failed.ipynb'
    assert "experiment 'zz_fails' failed: RuntimeError: deliberate failure" in err and str(failed) in err
    executed = nbformat.read(failed, as_version=4)
    assert any(o.output_type == 'error' and o.evalue == 'deliberate failure' for c in executed.cells if c.cell_type == 'code' for o in c.outputs)
    # both experiments before it ran, at paper scale, with only the parameters they declare
    assert papermill_parameters(out/'demo_b.ipynb') == dict(scale='paper', out_dir='.')  # relative: the kernel runs in out
    assert papermill_parameters(out/'demo_a.ipynb')['seed'] == 3
    assert not (out/'demo_b.png').exists() and (out/'demo_b.csv').exists()
    report = (out/'REPORT.md').read_text()
    assert 'Last run: scale **paper**' in report and '| torch |' in report
    assert report.index('## demo_a') < report.index('## demo_b') < report.index('## earlier')
    assert 'Result of demo_b at scale paper.' in report and '| demo_b | paper |' in report
    assert '_scale **quick** · wall time 1 min 05 s' in report and 'From an earlier run.' in report
    assert '| zz_fails | - | - | no result; last attempt failed |' in report and 'deliberate failure' in report
    assert not list(out.glob('.*.tmp')) and not list(out.glob('.*.backup')) and not (out/'zz_fails.ipynb').exists()
    assert os.environ.get('FACTORCL_REPRO') is None  # the variable was set for the kernels only


def test_a_notebook_that_writes_no_result_is_an_error(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'silent', 'Writes nothing', dict(out_dir='figures'), body='x = 1')
    save_results('silent', out, params=dict(scale='quick'))  # a stale result of an earlier run must not count
    with pytest.raises(ExperimentError, match='did not write') as e:
        run_experiments(nbs_dir=nbs, out=out, device='cpu', progress=False)
    assert e.value.notebook == out.resolve()/'silent.failed.ipynb' and e.value.notebook.exists()
    assert papermill_parameters(e.value.notebook) == dict(out_dir='.')  # no scale declared
    assert json.loads((out/'silent.json').read_text())['params'] == dict(scale='quick')  # the earlier result is kept


def test_console_script_runs_one_by_name(good, tmp_path):
    entry = re.search(r'^factorcl-repro\s*=\s*"([\w.]+):(\w+)"', (ROOT/'pyproject.toml').read_text(), re.M)
    module, func = entry.groups()  # (tomllib is Python 3.11+; the package supports 3.10)
    assert getattr(import_module(module), func) is main  # the console script is this main()
    out = tmp_path/'figures'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    r = subprocess.run([sys.executable, '-m', 'factorcl_nb.repro', 'demo_a', '--nbs-dir', str(good), '--out', str(out),
                        '--seed', '5', '--device', 'cpu'], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'demo_a: done' in r.stderr and f"report: {out/'REPORT.md'}" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ['REPORT.md', 'demo_a.csv', 'demo_a.ipynb', 'demo_a.json', 'demo_a.png']
    assert papermill_parameters(out/'demo_a.ipynb') == dict(scale='quick', out_dir='.', device='cpu', seed=5)
    params = json.loads((out/'demo_a.json').read_text())['params']
    assert params['seed'] == 5 and params['under_repro'] == '1'
    report = (out/'REPORT.md').read_text()
    assert '## demo_a: Figure 9: demo A' in report and 'Result of demo_a at scale quick.' in report
    assert '_scale **quick** · wall time' in report and '![demo_a](demo_a.png)' in report and 'demo_b' not in report
    r = subprocess.run([sys.executable, '-m', 'factorcl_nb.repro', 'bogus', '--nbs-dir', str(good)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and 'valid names: demo_a, demo_b' in r.stderr


# ---- a failed, interrupted, killed or hanging run keeps the evidence (and the last good result) ----
SAVE_THEN_FAIL = SAVE + "\nraise RuntimeError('failed after saving')"
SLEEP = "import time\nprint('started', flush=True)\ntime.sleep(120)"


def result_files(out, name):
    return {p.name: p.read_bytes() for p in Path(out).glob(f'{name}.*') if p.suffix in ('.json', '.csv', '.png') and '.failed' not in p.name}


def repro_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))


def last_cell_running(notebook):
    "Whether papermill has started the last cell of the notebook it is executing (it saves the notebook when a cell starts)."
    try: cells = json.loads(Path(notebook).read_text())['cells']
    except (OSError, ValueError): return False
    return cells[-1]['metadata'].get('papermill', {}).get('status') == 'running'


def wait_for_last_cell(notebook):
    for _ in range(1200):
        if last_cell_running(notebook): return time.sleep(1.0)   # and give it a moment to reach time.sleep
        time.sleep(0.05)
    pytest.fail('the sleeping cell never started')


def test_a_failed_run_keeps_the_last_good_result(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    assert main(['exp', '--nbs-dir', str(nbs), '--out', str(out)]) == 0
    good, good_nb = result_files(out, 'exp'), (out/'exp.ipynb').read_bytes()
    assert sorted(good) == ['exp.csv', 'exp.json', 'exp.png']
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'), body=SAVE_THEN_FAIL)
    with pytest.raises(ExperimentError, match='failed after saving') as e:
        run_experiments(['exp'], scale='paper', out=out, nbs_dir=nbs, progress=False)
    assert e.value.notebook == out.resolve()/'exp.failed.ipynb'
    assert result_files(out, 'exp') == good and (out/'exp.ipynb').read_bytes() == good_nb   # nothing of the good run lost
    failed = nbformat.read(out/'exp.failed.ipynb', as_version=4)
    assert any(o.output_type == 'error' and o.evalue == 'failed after saving' for c in failed.cells if c.cell_type == 'code' for o in c.outputs)
    record = json.loads((out/'exp.failed.json').read_text())
    assert record['error'] == 'RuntimeError: failed after saving' and not record['interrupted']
    report = (out/'REPORT.md').read_text()
    assert f"**The last attempt ({record['attempted']}) failed**: `RuntimeError: failed after saving`" in report
    assert '[exp.failed.ipynb](exp.failed.ipynb)' in report and 'Result of exp at scale quick.' in report
    assert '| exp | quick | ' in report and 'last attempt failed |' in report
    assert not list(out.glob('.*'))    # no backup folder or temporary file left
    # a later good run replaces the result and clears the failure
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    assert main(['exp', '--nbs-dir', str(nbs), '--out', str(out), '--scale', 'paper']) == 0
    assert not (out/'exp.failed.ipynb').exists() and not (out/'exp.failed.json').exists()
    report = (out/'REPORT.md').read_text()
    assert 'Result of exp at scale paper.' in report and 'last attempt' not in report


def test_ctrl_c_keeps_the_good_result_and_marks_the_notebook_interrupted(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    cmd = [sys.executable, '-m', 'factorcl_nb.repro', 'exp', '--nbs-dir', str(nbs), '--out', str(out)]
    assert subprocess.run(cmd, capture_output=True, env=repro_env(), timeout=120).returncode == 0
    good, good_nb = result_files(out, 'exp'), (out/'exp.ipynb').read_bytes()
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'), body=SLEEP)
    # a command started from a terminal has Ctrl-C at its default; a test runner's worker may ignore SIGINT, and an
    # ignored signal is inherited (Python then installs no KeyboardInterrupt handler), so restore the default
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=repro_env(), start_new_session=True,
                         preexec_fn=default_sigint)
    try:
        wait_for_last_cell(out/'exp.running.ipynb')
        os.killpg(p.pid, signal.SIGINT)          # what Ctrl-C in a terminal sends: the command and its kernel
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130 and "experiment 'exp' interrupted" in err
    assert result_files(out, 'exp') == good and (out/'exp.ipynb').read_bytes() == good_nb
    nb = json.loads((out/'exp.failed.ipynb').read_text())
    assert nb['metadata']['factorcl_repro']['status'] == 'interrupted' and nb['metadata']['papermill']['exception']
    statuses = [c['metadata']['papermill']['status'] for c in nb['cells'] if c['cell_type'] == 'code']
    assert statuses[-1] == 'interrupted' and 'completed' in statuses[:-1]   # the sleeping cell, not "every cell completed"
    assert 'Interrupted' in ''.join(nb['cells'][0]['source'])
    assert json.loads((out/'exp.failed.json').read_text())['interrupted'] is True
    report = (out/'REPORT.md').read_text()
    assert 'was interrupted**' in report and 'Result of exp at scale quick.' in report and 'last attempt interrupted |' in report


def test_a_killed_run_is_found_and_filed_by_the_next_run(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    cmd = [sys.executable, '-m', 'factorcl_nb.repro', 'exp', '--nbs-dir', str(nbs), '--out', str(out)]
    assert subprocess.run(cmd, capture_output=True, env=repro_env(), timeout=120).returncode == 0
    good = result_files(out, 'exp')
    # the killed run had already overwritten the table and half the json when it died
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'),
                    body="open('exp.csv', 'w').write('partial'); open('exp.json', 'w').write('{')\n" + SLEEP)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=repro_env(), start_new_session=True)
    try: wait_for_last_cell(out/'exp.running.ipynb')
    finally: os.killpg(p.pid, signal.SIGKILL); p.wait(timeout=30)
    assert (out/'exp.csv').read_text() == 'partial'      # what kill -9 leaves behind
    assert repro.recover_killed_run(out, 'exp') is True
    assert result_files(out, 'exp') == good
    nb = json.loads((out/'exp.failed.ipynb').read_text())
    assert nb['metadata']['factorcl_repro']['status'] == 'interrupted' and 'killed' in nb['metadata']['factorcl_repro']['reason']
    report = write_report(out).read_text()
    assert 'was interrupted**: `killed' in report and 'Result of exp at scale quick.' in report
    assert repro.recover_killed_run(out, 'exp') is False and not list(out.glob('.*'))


def test_a_hanging_cell_is_stopped_by_the_timeout(tmp_path, capsys):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'hangs', 'Hangs', dict(scale='tiny', out_dir='x'), body=SLEEP)
    t0 = time.perf_counter()
    code = main(['hangs', '--nbs-dir', str(nbs), '--out', str(out), '--timeout', '3'])
    assert code == 1 and time.perf_counter() - t0 < 60
    err = capsys.readouterr().err
    assert "experiment 'hangs' failed: a cell ran longer than the execution timeout of 3 s and was stopped" in err and '--timeout' in err
    record = json.loads((out/'hangs.failed.json').read_text())
    assert 'execution timeout of 3 s' in record['error'] and record['timed_out']
    nb = json.loads((out/'hangs.failed.ipynb').read_text())
    assert nb['metadata']['factorcl_repro']['status'] == 'timed out'
    assert [c['metadata']['papermill']['status'] for c in nb['cells'] if c['cell_type'] == 'code'][-1] == 'timed out'
    assert 'execution timeout of 3 s' in (out/'REPORT.md').read_text()
    with pytest.raises(SystemExit): main(['hangs', '--nbs-dir', str(nbs), '--timeout', '0'])
    with pytest.raises(ValueError, match='timeout must be a positive number'): run_experiments(nbs_dir=nbs, timeout=-1)


def test_no_kernel_transport_warning(good, tmp_path):
    r = subprocess.run([sys.executable, '-m', 'factorcl_nb.repro', 'demo_b', '--nbs-dir', str(good), '--out', str(tmp_path)],
                       capture_output=True, text=True, env=repro_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'without encryption' not in r.stderr and 'demo_b: done' in r.stderr


# ---- one run per output folder, verified backups, leftover temporary files, a bad --out, a report that survives ----
WAIT_FOR_RELEASE = ("import os, time\nfor _ in range(400):   # at most 40 s: until the test creates `release`\n"
                    "    if os.path.exists('release'): break\n    time.sleep(0.1)\n" + SAVE)


def run_main(*argv):
    "main(argv) in process: (exit status, whether it raised SystemExit)."
    try: return main(list(argv)), False
    except SystemExit as e: return e.code, True


def test_a_second_run_on_the_same_folder_is_refused_or_waits(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x', seed=0), body=WAIT_FOR_RELEASE)
    cmd = [sys.executable, '-m', 'factorcl_nb.repro', 'exp', '--nbs-dir', str(nbs), '--out', str(out)]
    t_start = time.time()
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=repro_env(),
                             start_new_session=True)
    waiting = None
    try:
        wait_for_last_cell(out/'exp.running.ipynb')
        holder = json.loads((out/'.factorcl-repro.lock').read_text())
        assert holder['pid'] == first.pid
        started = time.mktime(time.strptime(holder['started'], '%Y-%m-%dT%H:%M:%S%z'))
        assert t_start - 2 <= started <= time.time()
        # a second run is refused at once, naming the first; it touches nothing of the live run
        r = subprocess.run(cmd, capture_output=True, text=True, env=repro_env(), timeout=60)
        assert r.returncode == repro.EXIT_BUSY, r.stderr
        assert f"process {first.pid}" in r.stderr and holder['started'] in r.stderr and '--wait' in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert (out/'.exp.backup').is_dir() and (out/'exp.running.ipynb').exists()
        assert not (out/'exp.failed.json').exists() and not (out/'exp.failed.ipynb').exists()
        # with --wait it starts when the first run ends
        waiting = subprocess.Popen(cmd + ['--wait', '--seed', '9'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=repro_env(), start_new_session=True)
        time.sleep(3)
        assert waiting.poll() is None     # still waiting
        (out/'release').touch()
        _, err1 = first.communicate(timeout=60)
        _, err2 = waiting.communicate(timeout=120)
    finally:
        for p in (first, waiting):
            if p is not None and p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    assert first.returncode == 0, err1
    assert waiting.returncode == 0, err2
    assert f"waiting for process {first.pid}" in err2
    assert json.loads((out/'exp.json').read_text())['params']['seed'] == 9   # the waiting run ran after the first
    assert not (out/'exp.failed.json').exists() and 'last attempt' not in (out/'REPORT.md').read_text()
    assert not (out/'.factorcl-repro.lock').exists() and not list(out.glob('.exp.backup*'))


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    out = tmp_path/'figures'; out.mkdir()
    code = (f"import os; from factorcl_nb.repro import output_lock\n"
            f"with output_lock({str(out)!r}): os._exit(9)")   # dies holding the lock: the OS releases it
    r = subprocess.run([sys.executable, '-c', code], env=repro_env(), timeout=120)
    assert r.returncode == 9 and (out/'.factorcl-repro.lock').exists()
    t0 = time.perf_counter()
    with repro.output_lock(out):
        assert json.loads((out/'.factorcl-repro.lock').read_text())['pid'] == os.getpid()
        with repro.output_lock(out): pass             # the same thread may nest
        import threading
        errors = []
        def other():
            try:
                with repro.output_lock(out): pass
            except repro.OutputBusyError as e: errors.append(str(e))
        t = threading.Thread(target=other); t.start(); t.join(30)
        assert len(errors) == 1 and f'process {os.getpid()}' in errors[0]
        assert (out/'.factorcl-repro.lock').exists()  # still held after the nested block
    assert time.perf_counter() - t0 < 5 and not (out/'.factorcl-repro.lock').exists()


def good_results(nbs, out, name='exp'):
    "A finished result of `name` (json, csv, png) written without a kernel, and the notebook that would rerun it."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    import pandas as pd
    make_experiment(nbs, name, 'An experiment', dict(scale='quick', out_dir='x'))
    fig, ax = plt.subplots(); ax.plot([0, 1, 0]); plt.close(fig)
    save_results(name, out, table=pd.DataFrame(dict(a=[1, 2])), figure=fig, params=dict(scale='quick'), report='Good.')
    return result_files(out, name)


def test_a_backup_that_fails_half_way_never_replaces_a_good_result(tmp_path, monkeypatch, capsys):
    import errno, shutil
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    good = good_results(nbs, out)
    real_copy, calls = shutil.copy2, []
    def full_disk(src, dst, **kw):     # writes half of the file, then the disk is full
        calls.append(Path(src).name)
        data = Path(src).read_bytes(); Path(dst).write_bytes(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(shutil, 'copy2', full_disk)
    code, _ = run_main('exp', '--nbs-dir', str(nbs), '--out', str(out))
    err = capsys.readouterr().err
    assert calls and code == 1
    assert 'could not back up' in err and 'No space left on device' in err and 'Traceback' not in err
    assert result_files(out, 'exp') == good and not (out/'exp.running.ipynb').exists()
    monkeypatch.setattr(shutil, 'copy2', real_copy)
    repro.recover_killed_run(out, 'exp')              # what the next run does first
    assert result_files(out, 'exp') == good and not list(out.glob('.exp.backup*'))


def test_recovery_restores_only_backups_whose_checksum_matches(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    good = good_results(nbs, out)
    with repro.output_lock(out): backup = repro.backup_results(out, 'exp')
    # the run that was killed had rewritten the figure and table and written a new file
    (out/'exp.png').write_bytes(b'new figure'); (out/'exp.csv').write_text('new table')
    (out/'exp.claims.csv').write_text('claim\n')
    damaged = backup/'exp.png'; damaged.write_bytes(damaged.read_bytes()[:-10])   # the backup copy went bad
    with pytest.warns(repro.BackupWarning, match=r'exp\.png') as w:
        assert repro.recover_killed_run(out, 'exp') is True
    assert len(w) == 1
    assert (out/'exp.png').read_bytes() == b'new figure'          # not replaced by a damaged copy
    assert (out/'exp.csv').read_bytes() == good['exp.csv'] and (out/'exp.json').read_bytes() == good['exp.json']
    assert not (out/'exp.claims.csv').exists() and not backup.exists()
    record = json.loads((out/'exp.failed.json').read_text())
    assert record['not_restored'] == ['exp.png']
    report = write_report(out).read_text()
    assert 'exp.png' in report[report.index('## exp'):] and 'not restored' in report


def test_leftover_temporary_files_of_a_killed_run_are_removed(tmp_path):
    nbs, out = tmp_path/'experiments', tmp_path/'figures'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    # a process killed inside atomic_write (after its temporary file is written, before the rename)
    code = ("import os\nfrom factorcl_nb import core\nos.replace = lambda *a: os._exit(9)\n"
            f"core.atomic_write({str(out/'exp.json')!r}, '{{}}')")
    assert subprocess.run([sys.executable, '-c', code], env=repro_env(), timeout=120).returncode == 9
    leftovers = list(out.glob('.*.tmp'))
    assert len(leftovers) == 1 and leftovers[0].name.startswith('.exp.json.')
    mine = ['notes.tmp', '.exp.json.tmp', '.draft.tmp', 'exp.json.abcd1234.tmp', '.exp.json.abcd12345.tmp']
    for n in mine: (out/n).write_text('mine')
    assert main(['exp', '--nbs-dir', str(nbs), '--out', str(out), '--device', 'cpu']) == 0
    assert not leftovers[0].exists()
    assert sorted(p.name for p in out.glob('*.tmp')) == sorted(mine) and (out/'exp.json').read_text() != '{}'


def test_an_out_that_is_a_file_is_a_clear_usage_error(good, tmp_path, capsys):
    f = tmp_path/'results.txt'; f.write_text('mine')
    for target in (f, f/'sub'):
        code, _ = run_main('demo_b', '--nbs-dir', str(good), '--out', str(target))
        err = capsys.readouterr().err
        lines = [l for l in err.splitlines() if l.strip()]
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith('factorcl-repro: error: argument --out:') and str(target) in lines[0]
        assert 'folder' in lines[0] and 'Traceback' not in err
    assert f.read_text() == 'mine'


def test_a_read_only_out_is_a_clear_usage_error(tmp_path):
    import stat
    nbs, ro = tmp_path/'experiments', tmp_path/'ro'
    make_experiment(nbs, 'exp', 'An experiment', dict(scale='quick', out_dir='x'))
    ro.mkdir(); ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    def unprivileged():
        "Root writes anywhere: the command runs without the capabilities that override file modes, as a user would."
        if os.geteuid() != 0: return
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):   # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: out of the next program's set
            if libc.prctl(24, cap, 0, 0, 0) != 0: raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP)')
    try:
        for target in (ro, ro/'new'):
            r = subprocess.run([sys.executable, '-m', 'factorcl_nb.repro', 'exp', '--nbs-dir', str(nbs),
                                '--out', str(target)], capture_output=True, text=True, env=repro_env(),
                               preexec_fn=unprivileged, timeout=120)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            assert r.returncode == 2 and len(lines) == 1, r.stderr
            assert lines[0].startswith('factorcl-repro: error: argument --out:') and str(target) in lines[0]
            assert 'writable folder' in lines[0]
        assert list(ro.iterdir()) == []
    finally: ro.chmod(0o755)


def test_the_report_survives_a_broken_ast_parser(tmp_path, monkeypatch):
    "After Ctrl-C lands inside ast.parse, CPython 3.11 may raise SystemError on every later parse in the process."
    import factorcl_nb.core as core
    out = tmp_path/'figures'; nb = tmp_path/'exp.ipynb'
    make_experiment(tmp_path, 'exp', 'An experiment', dict(scale='quick'))
    monkeypatch.setenv('FACTORCL_NOTEBOOK', str(nb))
    save_results('current', out, params=dict(scale='quick'), report='Current.')
    save_results('changed', out, params=dict(scale='quick'), report='Changed.')
    meta = json.loads((out/'changed.json').read_text())
    meta['fingerprint']['modules']['factorcl_nb.core'] = '0' * 16      # as if produced by other library code
    (out/'changed.json').write_text(json.dumps(meta))
    table = lambda report: report[report.index('| experiment | scale |'):]
    expected = table(write_report(out).read_text())
    assert '| current | quick |' in expected and '| changed | quick |' in expected and '| stale |' in expected
    calls = []
    def broken(path):
        calls.append(path)
        raise SystemError('AST constructor recursion depth mismatch (before=0, after=2)')
    monkeypatch.setattr(core, 'source_digest', broken)
    (out/'REPORT.md').unlink()
    assert table(write_report(out).read_text()) == expected and calls   # the same verdicts, from a fresh process
    # should the fresh process fail as well, the report is still written, without calling anything current
    import factorcl_nb.report as report_mod
    def no_python(*a, **kw): raise RuntimeError('the staleness check failed in a fresh process too: boom')
    monkeypatch.setattr(report_mod, 'fingerprint_changes_in_subprocess', no_python)
    (out/'REPORT.md').unlink()
    report = write_report(out).read_text()
    assert '| current | quick | ? | unchecked |' in report and '| changed | quick | ? | unchecked |' in report
    assert 'could not be checked this time' in report and 'boom' in report
    assert not re.search(r'\| current \|$', report, re.M)   # no row says its sources are current
