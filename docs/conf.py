"""Sphinx configuration of the documentation site: the notebooks as they are committed (never executed here)
plus an API reference from the package's docstrings. Build it with `python tools/build_docs.py`.

The source folder is the repository root, so every relative link a notebook uses in JupyterLab or on GitHub
(`../figures/x.png`, `01_critics.ipynb`, `../CONTRIBUTING.md`) resolves the same way on the site."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # autodoc imports this checkout's factorcl_nb

project = 'factorcl_nb'
author = 'factorcl_nb developers'
copyright = '2026, factorcl_nb developers'

extensions = ['myst_nb', 'sphinx.ext.autodoc', 'sphinx.ext.mathjax', 'sphinx-mathjax-offline']
root_doc = 'nbs/index'
# the experiment notebooks are shown as executed by `factorcl-repro` (figures/<name>.ipynb), beside REPORT.md
include_patterns = ['nbs/*.ipynb', 'docs/*.md', 'CONTRIBUTING.md', 'figures/*.ipynb', 'figures/REPORT.md']
exclude_patterns = ['docs/_build', '**/.ipynb_checkpoints', '**/.nbval-*', 'figures/*.running.ipynb', 'figures/.*']

nb_execution_mode = 'off'            # show the outputs the notebooks carry; never run them
nb_output_stderr = 'remove'          # warnings and progress bars are not part of the page
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type']

autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
autodoc_default_options = {'members': True, 'undoc-members': False, 'show-inheritance': True}

html_theme = 'sphinx_book_theme'
html_title = 'factorcl_nb'
html_extra_path = ['_extra']    # index.html at the site's root, forwarding to nbs/index.html
html_theme_options = {'show_toc_level': 2, 'use_download_button': True}
html_show_sourcelink = False
html_static_path = ['_static']
html_js_files = ['full_size_figures.js']   # a click on a figure opens it at full size

# The reading route: the order of the left-hand navigation. Notebooks not named here (new ones) follow it.
ROUTE = [('Start here', ['tutorial_factorcl', 'tutorial_when']),
         ('The method, step by step', ['01_critics', '02_estimators', '02a_conditional', '03_augment', '04_encoders',
                                       '05_models', '05b_successors', '06_train', '07_evaluate', '07a_stats']),
         ('Data, experiments and tools', ['08_data', '08a_synthetic', '08b_mfeat', '08c_multibench', '08d_irfl',
                                          '08e_interactions', '08f_trifeatures', '09_runner', '07c_claims', '09a_tasks', '09c_audit',
                                          '09b_report', '10_repro', '11_sklearn', '12_clip', 'tutorial_explorer']),
         ('Engineering', ['00_core', '00a_distributed', '00b_checkpoint'])]
PAGES = [('Results', ['/docs/results', '/figures/REPORT']),
         ('Reference', ['/docs/api', '/docs/data', '/docs/distributed', '/CONTRIBUTING'])]
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
NBVAL = re.compile(r'^\s*#\s*NBVAL_\w+\s*$')   # nbval's markers: for the test suite, not for readers


def toctree_cells() -> list:
    "Markdown cells holding the hidden navigation (toctrees) of the landing page."
    present = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb') if p.stem != 'index')
    named = [n for _, names in ROUTE for n in names]
    groups = [(cap, [n for n in names if n in present]) for cap, names in ROUTE]
    groups.append(('More notebooks', [n for n in present if n not in named]))
    cells = []
    experiments = sorted(f'/figures/{p.stem}' for p in (ROOT/'figures').glob('*.ipynb') if p.stem.isidentifier())
    for caption, names in groups + PAGES + [('Experiments, as executed', experiments)]:
        if names:
            body = '\n'.join(names)
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'id': f'toc{len(cells)}',
                          'source': f'```{{toctree}}\n:hidden:\n:caption: {caption}\n:maxdepth: 1\n\n{body}\n```'})
    return cells


def clean_cell(cell: dict) -> dict | None:
    "Apply nbdev's cell directives for readers: `#| hide` drops the cell, `#| echo: false` its code; directive lines go."
    if cell.get('cell_type') != 'code': return cell
    src = ''.join(cell.get('source', ''))
    lines, opts, i = src.splitlines(), {}, 0
    while i < len(lines) and (DIRECTIVE.match(lines[i]) or not lines[i].strip()):
        m = DIRECTIVE.match(lines[i])
        if m: opts[m.group(1).lower()] = m.group(2).lower() or 'true'
        i += 1
    if 'hide' in opts or opts.get('include') == 'false': return None
    cell['source'] = '\n'.join(l for l in lines[i:] if not NBVAL.match(l))
    for out in cell.get('outputs', []):   # show_doc opens with a horizontal rule, which docutils cannot place in an output
        md = out.get('data', {}).get('text/markdown')
        if md is not None:
            text = ''.join(md)
            if text.startswith('---\n'): out['data']['text/markdown'] = text[len('---\n'):].lstrip('\n')
    tags = cell.setdefault('metadata', {}).setdefault('tags', [])
    if opts.get('echo') == 'false': tags.append('remove-input')
    if opts.get('output') == 'false': tags.append('remove-output')
    return cell


VERDICTS = '<!-- verdict table -->'   # docs/results.md: replaced by the table built from figures/*.claims.csv


def prepare_notebook(app, docname, source):
    "source-read hook: clean nbdev directives, give the landing page the site's navigation, fill the verdict table."
    if docname == 'docs/results' and VERDICTS in source[0]:
        from factorcl_nb.report import verdict_markdown
        source[0] = source[0].replace(VERDICTS, verdict_markdown(ROOT/'figures')); return
    if not docname.startswith(('nbs/', 'figures/')) or not docname.split('/')[-1][:1].isalnum(): return
    if docname.startswith('figures/') and not source[0].lstrip().startswith('{'): return   # REPORT.md
    nb = json.loads(source[0])
    nb['cells'] = [c for c in map(clean_cell, nb['cells']) if c is not None]
    if docname == root_doc: nb['cells'] += toctree_cells()
    source[0] = json.dumps(nb)


def skip_member(app, what, name, obj, skip, options):
    "Leave out scikit-learn's generated metadata-routing methods (set_fit_request, ...): not this package's API."
    return True if name.startswith('set_') and name.endswith('_request') else skip


def setup(app):
    app.connect('source-read', prepare_notebook)
    app.connect('autodoc-skip-member', skip_member)
