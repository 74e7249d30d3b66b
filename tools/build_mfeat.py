"""Build the package's compact copy of the UCI Multiple Features data: factorcl_nb/data/mfeat.npz.

    python tools/build_mfeat.py --src DIR       # DIR: the six mfeat-*.csv files and their SHA256SUMS
    python tools/build_mfeat.py --src DIR --out factorcl_nb/data/mfeat.npz

Data: UCI Machine Learning Repository, "Multiple Features" (CC BY 4.0). Cite M. van Breukelen,
R.P.W. Duin, D.M.J. Tax, J.E. den Hartog, "Handwritten digit recognition by combined classifiers",
Kybernetika 34(4):381-386, 1998, and the UCI Machine Learning Repository (https://archive.ics.uci.edu).

Every CSV is checked against SHA256SUMS before it is read. The archive holds one float32 array per
view ([2000, d]), int64 `labels`, the source file names and their sha256, and the attribution.
It is written with fixed zip timestamps, so rebuilding from the same CSVs with the same zlib gives the same bytes.
Only this script reads the CSVs; the package reads the .npz.
"""
import argparse, hashlib, io, sys, zipfile
from pathlib import Path
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO/'factorcl_nb'/'data'/'mfeat.npz'
VIEWS = {'fou': 76, 'fac': 216, 'kar': 64, 'pix': 240, 'zer': 47, 'mor': 6}  # view -> number of features
ATTRIBUTION = ("UCI Multiple Features data (CC BY 4.0): M. van Breukelen, R.P.W. Duin, D.M.J. Tax, "
               "J.E. den Hartog, 'Handwritten digit recognition by combined classifiers', Kybernetika "
               "34(4):381-386, 1998; UCI Machine Learning Repository, https://archive.ics.uci.edu")

def read_checksums(src: Path) -> dict:
    "File name -> expected sha256, from SHA256SUMS."
    sums = src/'SHA256SUMS'
    if not sums.exists(): raise FileNotFoundError(f"{sums} not found: the source folder must hold SHA256SUMS")
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            out[name.lstrip('*')] = digest
    return out

def read_view(src: Path, view: str, expected: dict) -> tuple:
    "Features (float32) and labels (int64) of one verified CSV."
    path = src/f'mfeat-{view}.csv'
    if not path.exists(): raise FileNotFoundError(f"{path} not found")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if expected.get(path.name) != digest:
        raise ValueError(f"{path.name}: sha256 {digest} does not match SHA256SUMS ({expected.get(path.name)})")
    table = np.loadtxt(io.BytesIO(raw), delimiter=',', skiprows=1, dtype=np.float64)
    if table.shape != (2000, VIEWS[view] + 1):
        raise ValueError(f"{path.name}: expected shape (2000, {VIEWS[view] + 1}), got {table.shape}")
    labels = table[:, -1]
    if not np.array_equal(labels, np.round(labels)): raise ValueError(f"{path.name}: labels are not integers")
    return table[:, :-1].astype(np.float32), labels.astype(np.int64), digest

def write_npz(out: Path, arrays: dict):
    "np.savez_compressed with fixed timestamps (reproducible bytes)."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            npy = io.BytesIO(); np.lib.format.write_array(npy, np.asarray(arr), allow_pickle=False)
            zf.writestr(info, npy.getvalue(), compresslevel=6)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix('.tmp'); tmp.write_bytes(buf.getvalue()); tmp.replace(out)

def build(src: Path, out: Path = DEFAULT_OUT) -> Path:
    "Verify the six CSVs in `src` and write the compressed archive `out`."
    src, out = Path(src), Path(out)
    if not src.is_dir(): raise FileNotFoundError(f"source folder {src} not found (expected the folder of the six mfeat-*.csv files and SHA256SUMS)")
    expected = read_checksums(src)
    arrays, labels, digests = {}, None, []
    for view in VIEWS:
        x, y, digest = read_view(src, view, expected)
        if labels is None: labels = y
        elif not np.array_equal(labels, y): raise ValueError(f"mfeat-{view}.csv: labels differ from mfeat-fou.csv")
        arrays[view] = x; digests.append(digest)
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, 200)):
        raise ValueError(f"expected 200 digits per class 0-9, got counts {np.bincount(labels).tolist()}")
    arrays['labels'] = labels
    arrays['source_files'] = np.array([f'mfeat-{v}.csv' for v in VIEWS])
    arrays['source_sha256'] = np.array(digests)
    arrays['attribution'] = np.array(ATTRIBUTION)
    write_npz(out, arrays)
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--src', type=Path, required=True, help='folder with the six mfeat-*.csv and SHA256SUMS')
    p.add_argument('--out', type=Path, default=DEFAULT_OUT, help='archive to write')
    a = p.parse_args()
    path = build(a.src, a.out)
    print(f"{path}: {path.stat().st_size/1024:.0f} KiB")
