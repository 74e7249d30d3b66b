"""Authoring helper: convert jupytext 'percent' scripts to notebooks (and back) for nbs/.

    python tools/py2nb.py nbs/02_estimators.py        # -> nbs/02_estimators.ipynb, removes the .py
    python tools/py2nb.py --to-py nbs/02_estimators.ipynb

The notebooks stay the source of truth; the .py form is only a convenient way to edit them.
"""
import sys, json
from pathlib import Path
import jupytext

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}

def to_nb(p: Path):
    nb = jupytext.read(p)
    nb.metadata = {"kernelspec": KERNEL}
    for c in nb.cells:
        c.metadata.pop('lines_to_next_cell', None)
    out = p.with_suffix('.ipynb')
    jupytext.write(nb, out, fmt='ipynb')
    p.unlink()
    print(out)

def to_py(p: Path):
    nb = jupytext.read(p)
    nb.metadata = {'jupytext': {'notebook_metadata_filter': '-all'}}  # no YAML header in the script
    out = p.with_suffix('.py')
    jupytext.write(nb, out, fmt='py:percent')
    print(out)

if __name__ == '__main__':
    args = sys.argv[1:]
    if args and args[0] == '--to-py':
        for a in args[1:]: to_py(Path(a))
    else:
        for a in args: to_nb(Path(a))
