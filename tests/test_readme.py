"""README.md is generated from nbs/index.ipynb by tools/make_readme.py (nbdev-readme needs Quarto)."""
import base64, importlib.util, re, subprocess, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('make_readme', ROOT/'tools'/'make_readme.py')
make_readme = importlib.util.module_from_spec(spec); spec.loader.exec_module(make_readme)
PNG = base64.b64encode(b'\x89PNG\r\n\x1a\n' + b'0' * 64).decode()


def test_committed_readme_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def tiny_notebook():
    v4 = nbformat.v4
    code = v4.new_code_cell('print("hi")\n1 + 1', outputs=[
        v4.new_output('stream', name='stdout', text='hi\n'),
        v4.new_output('stream', name='stderr', text='a warning\n'),
        v4.new_output('execute_result', data={'text/plain': '2'}, execution_count=1)])
    figure = v4.new_code_cell('plot()', outputs=[
        v4.new_output('display_data', data={'image/png': PNG, 'text/plain': '<Figure>'}),
        v4.new_output('display_data', data={'image/png': PNG}, metadata={'filenames': {'image/png': 'figures/demo.png'}}),
        v4.new_output('display_data', data={'text/html': '<img src="figures/a.png"/>', 'text/plain': '<Image>'}),
        v4.new_output('display_data', data={'text/html': f'<img src="data:image/png;base64,{PNG}"/>', 'text/plain': '<Image>'}),
        v4.new_output('display_data', data={'text/markdown': '**bold** output'})])
    return v4.new_notebook(cells=[
        v4.new_markdown_cell('# Demo lib\n\n> Does one thing well.\n\nIntro paragraph.'),
        v4.new_code_cell('#| hide\nfrom secret import setup', outputs=[v4.new_output('stream', name='stdout', text='hidden out\n')]),
        v4.new_markdown_cell('## Install\n\n```sh\npip install demo\n```'),
        code, figure,
        v4.new_code_cell('#| echo: false\nshow()', outputs=[v4.new_output('stream', name='stdout', text='only the output\n')]),
        v4.new_code_cell('#|output: false\nquiet()', outputs=[v4.new_output('stream', name='stdout', text='not shown\n')]),
        v4.new_code_cell('tagged()', metadata={'tags': ['remove-cell']}),
        v4.new_code_cell('s = "```"', outputs=[])])


def test_conversion():
    md = make_readme.notebook_to_markdown(nbformat.from_dict(tiny_notebook()))
    expected_start = f'# Demo lib\n\n> Does one thing well.\n\n{make_readme.NOTICE}\n\nIntro paragraph.\n\n## Install\n\n```sh\n'
    assert md.startswith(expected_start), md
    assert '```python\nprint("hi")\n1 + 1\n```\n\n```\nhi\n```\n\n```\n2\n```' in md
    assert 'secret' not in md and 'hidden out' not in md and 'a warning' not in md   # `#| hide`, stderr
    assert PNG[:20] not in md and 'data:image' not in md                            # no embedded images
    assert '![](figures/demo.png)' in md and '<img src="figures/a.png"/>' in md and '**bold** output' in md
    assert 'show()' not in md and 'only the output' in md                           # `#| echo: false`
    assert 'quiet()' in md and 'not shown' not in md                                # `#| output: false`
    assert 'tagged()' not in md
    assert '````python\ns = "```"\n````' in md                                      # the fence outgrows the backticks
    assert md.endswith('\n') and '\n\n\n' not in md


def test_write_and_check(tmp_path, capsys):
    nb = tmp_path/'index.ipynb'; nbformat.write(tiny_notebook(), nb)
    readme = tmp_path/'README.md'
    args = ['--nb', str(nb), '--out', str(readme)]
    assert make_readme.main(args + ['--check']) == 1  # no README yet
    assert make_readme.main(args) == 0 and readme.read_text().startswith('# Demo lib')
    assert make_readme.main(args + ['--check']) == 0
    readme.write_text(readme.read_text().replace('Intro paragraph.', 'Edited by hand.'))
    capsys.readouterr()
    assert make_readme.main(args + ['--check']) == 1
    err = capsys.readouterr().err
    assert 'out of date' in err and '-Edited by hand.' in err and '+Intro paragraph.' in err


def python_blocks(markdown:str) -> dict:
    "The README's ```python blocks, keyed by the heading of their section."
    import re
    blocks, heading = {}, None
    for part in re.split(r'^(## .*)$', markdown, flags=re.M):
        if part.startswith('## '): heading = part[3:].strip(); continue
        for code in re.findall(r'```python\n(.*?)```', part, re.S): blocks[heading] = code
    return blocks


def test_readme_examples_run_as_written(tmp_path):
    "The code a new user copies from the README runs unchanged, and the mfeat example reaches a useful probe accuracy."
    readme = (ROOT/'README.md').read_text()
    blocks = python_blocks(readme)
    example = blocks['Train FactorCL on real data in ten lines']
    shown = re.search(re.escape(example) + r'```\n\n```\n(.*?)\n```', readme, re.S)   # the output saved in index.ipynb
    assert shown, "the README shows no output under its example: execute nbs/index.ipynb"
    assert 0.9 <= float(shown.group(1).strip().splitlines()[-1]) <= 1.0, shown.group(1)
    assert len([l for l in example.splitlines() if l.strip()]) <= 12
    env = dict(__import__('os').environ, PYTHONPATH=str(ROOT))
    for heading, code in blocks.items():
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
        assert r.returncode == 0, f"README section {heading!r} fails:\n{r.stderr[-2000:]}"
        if heading == 'Train FactorCL on real data in ten lines':
            accuracy = float(r.stdout.strip().splitlines()[-1])
            assert 0.9 <= accuracy <= 1.0, accuracy   # raw pixel+Fourier features reach about 0.97 (08b_mfeat)


def local_targets(markdown: str) -> list:
    "Relative link and image targets of a markdown text (no URLs, no anchors), outside code fences."
    text = re.sub(r'^(`{3,}).*?^\1', '', markdown, flags=re.S | re.M)
    targets = re.findall(r'\]\(([^)\s]+)\)', text) + re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', text)
    return [t.split('#')[0] for t in targets if not re.match(r'^([a-z][a-z0-9+.-]*:|#|/)', t, re.I)]


def test_links_work_from_the_readme_and_from_the_notebook():
    "Every relative link and image resolves from README.md (at the root) and from nbs/index.ipynb (in nbs/)."
    readme = local_targets((ROOT/'README.md').read_text())
    nb = nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4)
    from_nb = local_targets('\n\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown'))
    assert 'figures/information_diagram.png' in readme and '../figures/information_diagram.png' in from_nb
    assert 'nbs/tutorial_factorcl.ipynb' in readme and 'CONTRIBUTING.md' in readme
    missing = [t for t in readme if not (ROOT/t).exists()] + [f'nbs/{t}' for t in from_nb if not (ROOT/'nbs'/t).exists()]
    assert not missing, f"links to missing files: {missing}"


def test_rebase_links():
    md = '![d](../figures/a.png) [t](01_critics.ipynb#sec) [w](https://x.org/a.png) [a](#top) <img src="../figures/b.png"/>'
    assert make_readme.rebase_links(md, 'nbs') == ('![d](figures/a.png) [t](nbs/01_critics.ipynb#sec) '
                                                   '[w](https://x.org/a.png) [a](#top) <img src="figures/b.png"/>')
    assert make_readme.rebase_links(md, '') == md


def test_repository_cites_no_files_outside_it():
    "No tracked file names documents that are not in the repository, or the retired script-first converter."
    words = ['DESIGN' + '.md', 'REFERENCE' + '_NOTES', '../' + 'shared', 'STYLE' + '.md', 'py2' + 'nb']
    r = subprocess.run(['git', 'grep', '-n', '-I', '-F', *sum((['-e', w] for w in words), [])],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr            # 1: no match
    assert not r.stdout, f"mentions of files that are not in the repository:\n{r.stdout[:3000]}"
