"The paper's numbers as data and the paper-vs-ours table: checks that fail if a number is misfiled or misread."
import math
import numpy as np
import pandas as pd
import pytest
from factorcl_nb.paper import paper_numbers, paper_vs_ours, report_markdown, DATASETS
from factorcl_nb.stats import mean_ci

def test_every_number_has_a_table_source_and_one_cell():
    nums = paper_numbers()
    assert {'experiment', 'table', 'method', 'metric', 'value', 'source'} <= set(nums.columns)
    assert not nums.duplicated(['table', 'dataset', 'method', 'factors']).any()
    assert set(nums.dataset) == set(DATASETS) and nums.value.between(0, 100).all()
    assert all(src.endswith(tab) for src, tab in zip(nums.source, nums.table))
    # the paper's headline: FactorCL-SUP is the best method of Table 2 on every dataset
    t2 = paper_numbers(table='Table 2')
    assert (t2.loc[t2.groupby('dataset').value.idxmax(), 'method'] == 'FactorCL-SUP').all()

def test_paper_vs_ours_pairs_cells_by_key_and_scales():
    "Ours = paper + 2 points + 0..0.3 point of seed noise: every cell is paired with its own paper number, scaled to %."
    want = paper_numbers(table='Table 4')
    ours = pd.DataFrame([dict(seed=s, probe=f, data=d, acc=(v + 2 + 0.1 * s) / 100)
                         for s in range(4) for f, d, v in want[['factors', 'dataset', 'value']].itertuples(index=False)])
    out = paper_vs_ours(ours, 'acc', want, on={'factors': 'probe', 'dataset': 'data'}, scale=100, digits=3)
    assert len(out) == len(want) and (out.runs == 4).all()
    assert np.allclose(out.difference, 2.15)
    assert set(out.paper_in_interval) == {'no (paper lower)'}           # +-0.2 interval around +2.15
    near = ours.assign(acc=ours.acc - 0.0215)                           # now centred on the paper's value
    assert set(paper_vs_ours(near, 'acc', want, on={'factors': 'probe', 'dataset': 'data'}, scale=100).paper_in_interval) == {'yes'}

def test_report_markdown_shows_missing_as_dash():
    want = paper_numbers(table='Table 2').iloc[:2]
    out = paper_vs_ours(pd.DataFrame(dict(method=['nobody'], dataset=['MIMIC'], acc=[0.5])), 'acc', want,
                        on={'method': 'method', 'dataset': 'dataset'})
    assert (out.ours == 'not run').all() and out.difference.isna().all()
    md = report_markdown(out.drop(columns='source'))
    assert 'nan' not in md and '| — |' in md
