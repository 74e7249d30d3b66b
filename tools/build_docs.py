"""Build the documentation site: the committed notebooks (never executed here), the pages in docs/ and an API
reference from the docstrings, with Sphinx and myst-nb (configuration: docs/conf.py).

    python tools/build_docs.py                    # -> docs/_build/html/index.html
    python tools/build_docs.py --out /tmp/site    # somewhere else
    python tools/build_docs.py --fresh            # ignore the cache of an earlier build

Needs the `docs` extra: pip install -e ".[docs]". Exits with Sphinx's status; warnings go to <out>/warnings.txt.
"""
from __future__ import annotations
import argparse, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT/'docs'/'_build'/'html'


def build(out: Path = DEFAULT_OUT, fresh: bool = False, quiet: bool = True) -> Path:
    "Build the site into `out`; return `out`. Raises RuntimeError with Sphinx's output when the build fails."
    out = Path(out).resolve()
    if fresh and out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
               MPLBACKEND='Agg')
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT/'docs'), '-d', str(out/'.doctrees'),
           '-w', str(out/'warnings.txt'), *(['-q'] if quiet else []), str(ROOT), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0 or not (out/'index.html').exists():
        raise RuntimeError(f"sphinx-build failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Build the documentation site (Sphinx + myst-nb) from the notebooks.')
    p.add_argument('--out', type=Path, default=DEFAULT_OUT, help='output folder (default docs/_build/html)')
    p.add_argument('--fresh', action='store_true', help='delete the output folder first (no incremental build)')
    p.add_argument('--verbose', action='store_true', help="show Sphinx's progress")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try: out = build(args.out, args.fresh, quiet=not args.verbose)
    except RuntimeError as e:
        print(e, file=sys.stderr); return 1
    warnings = (out/'warnings.txt').read_text().strip()
    n = len(warnings.splitlines()) if warnings else 0
    print(f"built {out/'index.html'} in {time.perf_counter() - t0:.1f} s ({n} warning lines in {out/'warnings.txt'})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
