"""The paired comparisons of `factorcl_nb.stats` pair two methods' runs by seed, whatever the order of the rows."""
import math
import numpy as np
import pandas as pd
from scipy import stats as st
from factorcl_nb.stats import claims_table, compare, paired_difference

SEEDS = [3, 11, 5, 8, 0, 21]
GAIN = [0.020, 0.022, 0.019, 0.021, 0.023, 0.018]   # per seed: A - B, small and all positive

def shuffled_table():
    "Method B's rows in another seed order than A's; seed-to-seed variation much larger than the gain."
    base = np.array([0.60, 0.85, 0.70, 0.95, 0.55, 0.78])
    a = pd.DataFrame(dict(method='A', seed=SEEDS, acc=base + GAIN))
    b = pd.DataFrame(dict(method='B', seed=SEEDS, acc=base)).iloc[[4, 2, 0, 5, 1, 3]]
    assert list(b.seed) != list(a.seed)
    return pd.concat([a, b], ignore_index=True)

def by_hand(table, confidence=0.95):
    "Differences seed by seed, then the Student-t interval of their mean."
    acc = table.set_index(['method', 'seed']).acc
    d = np.array([acc['A', s] - acc['B', s] for s in SEEDS])
    n, m, sd = len(d), d.mean(), d.std(ddof=1)
    half = st.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return d, m, m - half, m + half

def test_compare_pairs_rows_by_seed_not_by_row_order():
    table = shuffled_table()
    d, mean, lo, hi = by_hand(table)
    np.testing.assert_allclose(d, GAIN, atol=1e-12)
    r = compare(table, 'acc', {'method': 'A'}, {'method': 'B'})
    assert r['pairs'] == len(SEEDS) and r['n'] == len(SEEDS)
    np.testing.assert_allclose([r['mean'], r['lo'], r['hi'], r['sd']], [mean, lo, hi, d.std(ddof=1)], rtol=1e-9)
    assert lo > 0 and r['verdict'] == 'holds'
    # paired by row order the same rows would give the same mean, a far wider interval and no verdict
    rows = paired_difference(table[table.method == 'A'].acc, table[table.method == 'B'].acc)
    assert math.isclose(rows['mean'], mean) and rows['verdict'] == 'inconclusive' and rows['sd'] > 50 * r['sd']

def test_claims_table_pairs_by_seed_and_on_shared_seeds_only():
    table = shuffled_table()
    extra = pd.DataFrame(dict(method=['A', 'B'], seed=[99, 98], acc=[0.1, 0.9]))   # seeds without a partner
    table = pd.concat([extra.iloc[:1], table, extra.iloc[1:]], ignore_index=True)
    d, mean, lo, hi = by_hand(table)
    row = claims_table(table, 'acc', [('A beats B', {'method': 'A'}, {'method': 'B'})]).iloc[0]
    assert row.pairs == len(SEEDS) and row.verdict == 'holds'
    np.testing.assert_allclose([row.difference, row.lo, row.hi], [mean, lo, hi], rtol=1e-9)
