"""Every verdict a committed text states about a committed result is that result's verdict.

A stale sentence is the easiest way for a reproduction to claim more than it measured: a notebook executed before the
figures were regenerated, a report section kept from an older run. These tests read the saved claims
(`figures/<name>.claims.csv`) and every committed text that names them: REPORT.md's claim tables, the verdict tables
saved in notebooks, and reading sentences of the form `<experiment>: <claim>: **<verdict>**`."""
import json, re
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT/'figures'
VERDICT = r'(holds|does not hold|inconclusive)'


def saved_claims() -> dict:
    "experiment -> {claim: (verdict, uncorrected verdict)} from the committed claims files."
    out = {}
    for p in sorted(FIG.glob('*.claims.csv')):
        c = pd.read_csv(p, keep_default_na=False, na_values=[''])
        out[p.name[:-len('.claims.csv')]] = dict(zip(c.claim, zip(c.verdict, c.verdict_unadjusted)))
    return out


def texts() -> dict:
    "Committed texts a reader sees: Markdown files, and the Markdown and outputs of every committed notebook."
    found = {p: p.read_text(encoding='utf-8') for p in [ROOT/'README.md', *sorted((ROOT/'docs').glob('*.md'))]}
    for nb in [*sorted((ROOT/'nbs').glob('*.ipynb')), *sorted(FIG.glob('*.ipynb'))]:
        parts = []
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] == 'markdown': parts.append(''.join(c['source']))
            for o in c.get('outputs', []):
                parts.append(''.join(o.get('text', '')))
                for kind in ('text/markdown', 'text/plain'): parts.append(''.join(o.get('data', {}).get(kind, '')))
        found[nb] = '\n'.join(parts)
    return found


def test_report_claim_rows_match_the_saved_claims():
    "Each experiment's section of REPORT.md lists each of its claims with the saved verdicts."
    report = (FIG/'REPORT.md').read_text(encoding='utf-8')
    sections = re.split(r'\n(?=## )', report)
    checked = 0
    for name, claims in saved_claims().items():
        section = next((s for s in sections if s.startswith('## ') and f'(`{name}`)' in s.splitlines()[0]), None)
        assert section is not None, f"REPORT.md has no section for {name}, which has saved claims"
        rows = {}
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            m = re.fullmatch(VERDICT + r' \(unadjusted: ' + VERDICT + r'\)', cells[-1]) if len(cells) >= 2 else None
            if m: rows[cells[0]] = (m.group(1), m.group(2))
        for claim, verdicts in claims.items():
            if claim in rows:
                assert rows[claim] == verdicts, f"REPORT.md, {name}: {claim!r} reads {rows[claim]}, saved {verdicts}"
                checked += 1
    assert checked > 100, f"only {checked} claim rows found in REPORT.md"


def test_saved_verdict_tables_are_current():
    "A verdict table saved in a notebook's output, or at the top of REPORT.md, is what the saved claims give now."
    from factorcl_nb.report import verdict_markdown
    full = verdict_markdown(FIG)
    assert full in (FIG/'REPORT.md').read_text(encoding='utf-8'), "REPORT.md's verdict table is not the current one"
    tutorial = texts()[ROOT/'nbs'/'tutorial_factorcl.ipynb']
    now = verdict_markdown(FIG, experiments=['synthetic_probe', 'mfeat', 'interactions', 'trifeatures', 'critic_audit'])
    assert now in tutorial, "the tutorial's saved verdict table differs from the committed claims: re-execute it"


def test_reading_sentences_match_the_saved_claims():
    "Sentences `<experiment>: <claim>: **<verdict>**` anywhere in the committed texts state the saved verdict."
    claims, seen, wrong = saved_claims(), 0, []
    pattern = re.compile(r'\b(' + '|'.join(map(re.escape, claims)) + r'): (.+?): \*\*' + VERDICT + r'\*\*')
    for path, text in texts().items():
        for m in pattern.finditer(text):
            name, claim, verdict = m.groups()
            saved = claims[name].get(claim)
            if saved is None: wrong.append(f"{path.name}: {name} has no claim {claim!r}")
            elif saved[0] != verdict: wrong.append(f"{path.name}: {name}: {claim!r} reads {verdict}, saved {saved[0]}")
            seen += 1
    assert not wrong, '\n'.join(wrong)
    assert seen >= 8, f"only {seen} reading sentences found (tutorial_when states its verdicts this way)"
