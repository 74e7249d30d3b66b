"""Print which module of factorcl_nb imports which, read from the package's source with `ast` (nothing is imported).

    python tools/module_map.py            # the diagram, as CONTRIBUTING.md shows it
    python tools/module_map.py --check    # exit 1 when CONTRIBUTING.md's diagram differs from the sources

Every module is one node (the `data` subpackage is one node too); an import anywhere in a module counts, also one
inside a function. Modules are listed by level: level 0 imports no other module of the package, and a module
stands one level above the highest module it imports.
"""
import ast, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'factorcl_nb'
BEGIN, END = '<!-- module map: begin -->', '<!-- module map: end -->'


def node(path: Path) -> str:
    "The diagram node of a source file: its module name, or 'data' for the data subpackage."
    rel = path.relative_to(ROOT/PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> set:
    "The package's nodes that the file at `path` imports."
    here = path.relative_to(ROOT).with_suffix('').parts[:-1]   # its package, e.g. ('factorcl_nb', 'data')
    found = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            base = list(here[:len(here) - n.level + 1]) if n.level else []
            parts = base + (n.module.split('.') if n.module else [])
            names = [parts + [a.name] for a in n.names] if not n.module else [parts]
        elif isinstance(n, ast.Import): names = [a.name.split('.') for a in n.names]
        else: continue
        for p in names:
            if len(p) > 1 and p[0] == PACKAGE and ((ROOT/PACKAGE/p[1]).with_suffix('.py').exists() or (ROOT/PACKAGE/p[1]).is_dir()):
                found.add(p[1])
    return found


def module_graph() -> dict:
    "node -> sorted nodes it imports (itself and the package's generated index excluded)."
    graph = {}
    for path in sorted((ROOT/PACKAGE).rglob('*.py')):
        name = node(path)
        if name in ('__init__', '_modidx') or '__pycache__' in path.parts: continue
        graph.setdefault(name, set()).update(imports(path))
    return {k: sorted(v - {k, '__init__', '_modidx'}) for k, v in sorted(graph.items())}


def levels(graph: dict) -> dict:
    "node -> level (0: imports nothing of the package; else one more than its highest import)."
    out = {}
    def level(n, seen=()):
        if n in seen: raise ValueError(f"import cycle through {' -> '.join(seen + (n,))}")
        if n not in out: out[n] = 1 + max((level(d, seen + (n,)) for d in graph[n]), default=-1)
        return out[n]
    for n in graph: level(n)
    return out


def diagram() -> str:
    "The text diagram: one line per module, top level first, with the modules it imports."
    graph = module_graph(); lv = levels(graph)
    width = max(map(len, graph))
    rows = sorted(graph, key=lambda n: (-lv[n], n))
    return '\n'.join((f"level {lv[n]}  {n:<{width}}" + (f"  -> {', '.join(graph[n])}" if graph[n] else '')).rstrip() for n in rows)


def documented(text: str) -> str:
    "The diagram between the markers of CONTRIBUTING.md (without the code fence)."
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    return '\n'.join(l.rstrip() for l in block.splitlines() if not l.startswith('```'))


if __name__ == '__main__':
    if '--check' in sys.argv[1:]:
        same = documented((ROOT/'CONTRIBUTING.md').read_text()) == diagram()
        print('CONTRIBUTING.md matches the sources' if same else 'CONTRIBUTING.md differs: paste the output of tools/module_map.py')
        sys.exit(0 if same else 1)
    print(diagram())
