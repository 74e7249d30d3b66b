"The critic audit experiment: its table has one row per (method, term, seed, schedule) with U, L* and their gap."
import numpy as np


def test_critic_audit_rows_and_columns(run_experiment_tiny, read_claims):
    df, meta = run_experiment_tiny('critic_audit')
    assert {'method', 'term', 'seed', 'schedule', 'upper', 'fresh_lower', 'gap', 'infonce', 'accuracy'} <= set(df.columns)
    keys = df[['method', 'term', 'seed', 'schedule']]
    assert not keys.duplicated().any(), "one row per (method, term, seed, schedule)"
    assert set(df.term) == {'shared_club', 'unique_club'}
    assert set(df.schedule) == set(meta['params']['variants']) and df.seed.nunique() == meta['params']['seeds']
    np.testing.assert_allclose(df.gap, df.fresh_lower - df.upper, atol=1e-12)
    # the in-training critic's own InfoNCE never exceeds its NCE-CLUB (Jensen), and InfoNCE <= log(batch size)
    assert (df.infonce <= df.upper + 1e-6).all()
    cap = np.log(meta['params']['train']['batch_size'])
    assert (df[['infonce', 'fresh_lower']] <= cap + 1e-6).all().all()
    claims = read_claims('critic_audit', meta['report'])
    assert claims.claim.str.contains('bounds \\(U > L\\*\\)').any()
