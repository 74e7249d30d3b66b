"""Committed notebooks carry clean outputs: what a reader sees on GitHub or on the site is the demo's result, not
the noise of the machine that ran it. Every notebook in `nbs/`, `nbs/experiments/` and `figures/` is checked."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('nbs/experiments/*.ipynb'), *ROOT.glob('figures/*.ipynb')]
                   if '.running.' not in p.name)   # a run in progress is not committed
MAX_LINES = 60
# absolute paths of a machine: home folders, temporary folders, installed packages, Windows user folders
MACHINE_PATH = re.compile(r'(?<![\w.])(/root/|/home/\w|/Users/\w|/tmp/|/var/folders/|/private/var/|/work/|/opt/conda'
                          r'|[\w/.-]*site-packages/|[A-Z]:\\\\?Users\\\\?)')
PROGRESS = re.compile(r'\d+%\|')
WIDGET = 'application/vnd.jupyter.widget-view+json'


def output_text(o: dict) -> str:
    "The text a reader sees of one output (stream text, plain text of results, traceback of errors)."
    if o.get('output_type') == 'stream': t = o.get('text', '')
    elif o.get('output_type') == 'error': t = o.get('traceback', [])
    else: t = o.get('data', {}).get('text/plain', '')
    return ''.join(t) if isinstance(t, list) else t


def problems(nb: Path) -> list:
    "One line per unclean output of `nb`: cell index and what is wrong."
    out = []
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    for i, c in enumerate(cells):
        for o in c.get('outputs', []) if c['cell_type'] == 'code' else []:
            text, kind = output_text(o), o.get('output_type')
            where = f'{nb.relative_to(ROOT)} cell {i}'
            if kind == 'error': out.append(f"{where}: error output {o.get('ename')}")
            if kind == 'stream' and o.get('name') == 'stderr' and 'Traceback' in text:
                out.append(f'{where}: a traceback on stderr')
            if m := MACHINE_PATH.search(text): out.append(f'{where}: absolute machine path {m.group(0)!r}')
            if WIDGET in o.get('data', {}) and PROGRESS.search(text):
                out.append(f'{where}: a widget progress bar (frozen on GitHub and the site): pass progress=False')
            if (n := len(text.splitlines())) > MAX_LINES: out.append(f'{where}: {n} lines of output (at most {MAX_LINES})')
    return out


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_saved_outputs_are_clean(nb):
    found = problems(nb)
    assert not found, 'unclean saved outputs:\n' + '\n'.join(found)


def test_the_check_finds_each_kind_of_noise(tmp_path):
    "Each rule fires on an output that breaks it, and stays quiet on a clean one."
    def nb_with(*outputs):
        p = tmp_path/f'n{len(list(tmp_path.iterdir()))}.ipynb'
        p.write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': '', 'outputs': list(outputs)}]}))
        return p.relative_to(ROOT) if False else p
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        stream = lambda text, name='stdout': {'output_type': 'stream', 'name': name, 'text': text}
        assert problems(nb_with(stream('accuracy 0.93\n'))) == []
        assert 'error output ZMQError' in problems(nb_with({'output_type': 'error', 'ename': 'ZMQError', 'traceback': []}))[0]
        assert 'traceback on stderr' in problems(nb_with(stream('Traceback (most recent call last):\n', 'stderr')))[0]
        assert 'absolute machine path' in problems(nb_with(stream('see /root/.pyenv/x.py\n')))[0]
        assert 'absolute machine path' in problems(nb_with(stream('in /usr/lib/python3/site-packages/zmq\n')))[0]
        assert problems(nb_with(stream('figures/mfeat.png and ../nbs/x.ipynb\n'))) == []
        bar = {'output_type': 'display_data', 'data': {WIDGET: {}, 'text/plain': '  0%|          | 0/8'}}
        assert 'widget progress bar' in problems(nb_with(bar))[0]
        assert f'{MAX_LINES + 1} lines' in problems(nb_with(stream('x\n' * (MAX_LINES + 1))))[0]
    finally: ROOT = saved


LIBRARY = sorted(ROOT.glob('nbs/[0-9]*.ipynb'))

@pytest.mark.parametrize('nb', LIBRARY, ids=[p.name for p in LIBRARY])
def test_library_notebook_opens_with_its_title(nb):
    "A reader meets the title and the one-line summary first; nbdev's default_exp cell is hidden from the site."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    first = ''.join(cells[0]['source'])
    assert cells[0]['cell_type'] == 'markdown' and first.startswith('# '), f"{nb.name} opens with {first[:40]!r}"
    exp = [c for c in cells if c['cell_type'] == 'code' and '#| default_exp' in ''.join(c['source'])]
    assert all('#| hide' in ''.join(c['source']) for c in exp), f"{nb.name}: its default_exp cell shows on the site"


def test_no_text_calls_a_result_reproduced():
    "Whether a claim reproduces is a verdict (holds / does not hold / inconclusive) in the report, never a title."
    texts = [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('nbs/experiments/*.ipynb'), *ROOT.glob('docs/*.md'),
             ROOT/'README.md', ROOT/'figures'/'REPORT.md']
    said = [p.relative_to(ROOT).as_posix() for p in texts if re.search(r'\breproduced\b', p.read_text(encoding='utf-8'))]
    assert not said, f"'reproduced' in {said}: say what the verdict is instead"
