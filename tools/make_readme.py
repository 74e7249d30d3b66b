"""Write README.md from nbs/index.ipynb: a small stand-in for `nbdev-readme`, which needs Quarto.

    python tools/make_readme.py            # rewrite README.md
    python tools/make_readme.py --check    # exit 1 when README.md differs from what it would write

Markdown cells are copied verbatim, except that the notebook's leading `# Title` and `> subtitle` become
the README's header. Code cells become ```python fences and their text outputs plain fences; markdown
and HTML outputs are copied; image outputs appear only when they point to a file (an HTML <img src> or a
`filenames` entry in the output's metadata), never as embedded base64. Cells marked `#| hide` (or
`#| include: false`, or tagged `hide`/`remove-cell`) are skipped; `#| echo: false` drops a cell's source,
`#| output: false` its outputs; stderr streams are left out.

Relative links and images are written for the notebook's folder (so they work when nbs/index.ipynb is opened
in JupyterLab or on GitHub) and rebased onto the README's folder: `../figures/a.png` becomes `figures/a.png`,
`01_critics.ipynb` becomes `nbs/01_critics.ipynb`.
"""
from __future__ import annotations
import argparse, difflib, json, os, re, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = ('<!-- WARNING: generated from nbs/index.ipynb by tools/make_readme.py; '
          'edit the notebook, then run `python tools/make_readme.py`. -->')
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
BASE64_IMG = re.compile(r'src\s*=\s*["\']data:', re.I)
HIDE_TAGS = {'hide', 'remove-cell', 'remove_cell'}
HIDE_INPUT_TAGS = {'hide-input', 'remove-input', 'remove_input'}
HIDE_OUTPUT_TAGS = {'hide-output', 'remove-output', 'remove_output'}
MD_LINK = re.compile(r'(!?\[[^\]]*\]\()([^)\s]+)')                      # [text](path and ![alt](path
HTML_LINK = re.compile(r'((?:src|href)\s*=\s*["\'])([^"\']+)', re.I)      # src="path" and href="path"


def text_of(x) -> str:
    "A notebook field (a string or a list of lines) as one string."
    return ''.join(x) if isinstance(x, list) else (x or '')


def split_directives(source: str) -> tuple[dict, str]:
    "The leading `#| key: value` lines of a cell as a dict (keys lowercased), and the source without them."
    lines, opts, i = source.splitlines(), {}, 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if m: opts[m.group(1).lower()] = m.group(2).strip().lower() or 'true'
        elif lines[i].strip(): break
        i += 1
    return opts, '\n'.join(lines[i:]).strip('\n')


def fence(text: str, lang: str = '') -> str:
    "`text` in a code fence longer than any run of backticks inside it."
    ticks = '`' * max(3, 1 + max((len(m) for m in re.findall(r'`+', text)), default=0))
    return f'{ticks}{lang}\n{text.rstrip()}\n{ticks}'


def rebase_path(path: str, prefix: str) -> str:
    "`path`, relative to the notebook's folder, as seen from `prefix` up (e.g. prefix 'nbs'); URLs and anchors unchanged."
    if not prefix or re.match(r'^([a-z][a-z0-9+.-]*:|#|/)', path, re.I): return path
    target, _, anchor = path.partition('#')
    out = os.path.normpath(os.path.join(prefix, target)).replace(os.sep, '/')
    return out + ('#' + anchor if anchor else '')


def rebase_links(text: str, prefix: str) -> str:
    "Every relative markdown link or image, and HTML src/href, in `text` rebased by `rebase_path`."
    if not prefix: return text
    fix = lambda m: m.group(1) + rebase_path(m.group(2), prefix)
    return HTML_LINK.sub(fix, MD_LINK.sub(fix, text))


def split_header(markdown: str) -> tuple[str, str, str]:
    "Split a leading `# Title` and `> subtitle` off `markdown`: (title, subtitle, rest); '' where absent."
    lines = markdown.strip('\n').splitlines()
    if not lines or not lines[0].startswith('# '): return '', '', markdown.strip('\n')
    title, i = lines[0][2:].strip(), 1
    while i < len(lines) and not lines[i].strip(): i += 1
    sub = []
    while i < len(lines) and lines[i].startswith('>'):
        sub.append(lines[i].lstrip('>').strip()); i += 1
    return title, ' '.join(s for s in sub if s), '\n'.join(lines[i:]).strip('\n')


def render_output(out: dict) -> str | None:
    "Markdown for one cell output, or None when it has nothing to show in a README."
    kind = out.get('output_type')
    if kind == 'stream':
        return fence(ANSI.sub('', text_of(out.get('text')))) if out.get('name') != 'stderr' else None
    if kind == 'error':
        return fence(ANSI.sub('', f"{out.get('ename')}: {out.get('evalue')}"))
    data, meta = out.get('data', {}), out.get('metadata', {}) or {}
    if 'text/markdown' in data: return text_of(data['text/markdown']).strip('\n')
    html = text_of(data.get('text/html'))
    if html and not BASE64_IMG.search(html) and '<script' not in html.lower(): return html.strip('\n')
    files = meta.get('filenames') or {}
    images = [files[k] for k in data if k.startswith('image/') and k in files]
    if images: return '\n'.join(f'![]({f})' for f in images)
    if any(k.startswith('image/') for k in data): return None  # embedded image and no file: left out
    if 'text/plain' in data: return fence(ANSI.sub('', text_of(data['text/plain'])))
    return None


def notebook_to_markdown(nb: dict, prefix: str = '') -> str:
    "The README text for the notebook `nb` (a dict as read from an .ipynb file); relative links rebased by `prefix`."
    blocks, header_done = [], False
    for cell in nb.get('cells', []):
        tags = set((cell.get('metadata') or {}).get('tags') or [])
        opts, source = split_directives(text_of(cell.get('source')))
        if tags & HIDE_TAGS or 'hide' in opts or opts.get('include') == 'false': continue
        if cell.get('cell_type') == 'markdown':
            if not header_done:
                header_done = True
                title, sub, source = split_header(source)
                if title: blocks += [f'# {title}'] + ([f'> {sub}'] if sub else []) + [NOTICE]
            if source.strip(): blocks.append(rebase_links(source.strip('\n'), prefix))
        elif cell.get('cell_type') == 'code':
            if source.strip() and opts.get('echo') != 'false' and not tags & HIDE_INPUT_TAGS:
                blocks.append(fence(source, 'python'))
            if opts.get('output') != 'false' and not tags & HIDE_OUTPUT_TAGS:
                outs = [render_output(o) for o in cell.get('outputs', [])]
                blocks += [o if o.startswith('`') else rebase_links(o, prefix) for o in outs if o]
    return '\n\n'.join(blocks) + '\n'


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Write README.md from nbs/index.ipynb (nbdev-readme without Quarto).')
    p.add_argument('--nb', type=Path, default=ROOT/'nbs'/'index.ipynb', help='source notebook')
    p.add_argument('--out', type=Path, default=ROOT/'README.md', help='README to write or check')
    p.add_argument('--check', action='store_true', help='exit 1 if the README differs from what would be written')
    args = p.parse_args(argv)
    prefix = os.path.relpath(args.nb.resolve().parent, args.out.resolve().parent)
    text = notebook_to_markdown(json.loads(args.nb.read_text(encoding='utf-8')), '' if prefix == '.' else prefix)
    current = args.out.read_text(encoding='utf-8') if args.out.exists() else None
    if args.check:
        if current == text: return 0
        diff = list(difflib.unified_diff((current or '').splitlines(), text.splitlines(), str(args.out), 'expected', lineterm=''))
        print(f"{args.out} is out of date with {args.nb}: run `python tools/make_readme.py`", file=sys.stderr)
        print('\n'.join(diff[:40] + (['...'] if len(diff) > 40 else [])), file=sys.stderr)
        return 1
    if current != text:
        fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix='.README.', suffix='.tmp')
        with os.fdopen(fd, 'w', encoding='utf-8') as f: f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.out)
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
