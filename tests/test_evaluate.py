"Linear probes and the held-out estimate probe_mi: checks that fail when the held-out half leaks into the fit."
import math
import numpy as np
import pytest
from factorcl_nb.evaluate import linear_probe, probe_mi

def held_out_half(n, seed=0):
    "The samples probe_mi scores on: the second half of its seeded permutation."
    return np.random.default_rng(seed).permutation(n)[n // 2:]

def test_probe_mi_reads_about_zero_on_few_samples_of_independent_noise():
    """40 samples, 10 noise coordinates, an independent w: a read-out fitted on the other half predicts nothing on the
    held-out half. Fitted on the held-out half itself, it would explain about half of w's variance by chance
    (10 coefficients for 20 samples), about 0.5 bit."""
    rng = np.random.default_rng(0)
    estimates = [probe_mi(rng.normal(size=(40, 10)), rng.normal(size=40), seed=k) for k in range(20)]
    assert np.mean(estimates) < 0.1 and np.median(estimates) < 0.05, estimates

def test_probe_mi_drops_to_zero_when_w_is_shuffled_on_the_held_out_half_only():
    """z carries w (true I = 1/2 log2(1 + 1/0.25) = 1.16 bits); with w permuted on the held-out half only, the fitted
    read-out is still good but its predictions no longer match the held-out w: the estimate must read about 0."""
    rng = np.random.default_rng(1)
    n = 60
    w = rng.normal(size=n); z = np.concatenate([(w + 0.5 * rng.normal(size=n))[:, None], rng.normal(size=(n, 5))], 1)
    intact = probe_mi(z, w)
    assert intact > 0.5, intact
    shuffled = []
    for k in range(20):
        held = held_out_half(n); ws = w.copy(); ws[held] = w[rng.permutation(held)]
        shuffled.append(probe_mi(z, ws))
    assert np.mean(shuffled) < 0.1, shuffled
    # shuffling the fitting half instead spoils the read-out: also about 0, while the held-out w still matches z
    fit_half = np.setdiff1d(np.arange(n), held_out_half(n))
    ws = w.copy(); ws[fit_half] = w[rng.permutation(fit_half)]
    assert probe_mi(z, ws) < intact / 2

def test_probe_mi_matches_the_gaussian_formula():
    rng = np.random.default_rng(2)
    n, d, sigma = 20000, 3, 0.5
    w = rng.normal(size=(n, d)); z = np.concatenate([w + sigma * rng.normal(size=(n, d)), rng.normal(size=(n, 10))], 1)
    truth = d / 2 * math.log2(1 + 1 / sigma ** 2)
    assert probe_mi(z, w) == pytest.approx(truth, rel=0.05)

def test_linear_probe_reads_separable_classes_and_not_noise():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 600)
    assert linear_probe(np.eye(3)[y] * 2 + rng.normal(size=(600, 3)), y)['accuracy'] > 0.8
    assert linear_probe(rng.normal(size=(600, 3)), y)['accuracy'] < 0.45   # chance is 1/3
    with pytest.raises(ValueError, match='train_x and train_y must have as many rows'): linear_probe(rng.normal(size=(10, 3)), y)

def test_linear_probe_reports_convergence_instead_of_warning_and_probe_log_counts_it():
    "A probe stopped at max_iter says so in its result (no ConvergenceWarning); probe_log counts such fits once."
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from factorcl_nb.evaluate import probe_log
    rng = np.random.default_rng(4); n = 1000
    z = rng.normal(size=(n, 3)); y = (z[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    x = z @ rng.normal(size=(3, 40)) + 0.1 * rng.normal(size=(n, 40))
    with warnings.catch_warnings(record=True) as caught, probe_log() as log:
        warnings.simplefilter('always')
        capped, full = linear_probe(x, y, max_iter=3), linear_probe(x, y)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert (capped['converged'], capped['n_iter']) == (False, 3) and full['converged'] and 3 < full['n_iter'] < 1000
    assert len(log) == 2 and log.not_converged == 1 and '1 did not converge' in log.summary()
    linear_probe(x, y); assert len(log) == 2            # the block ended: no longer recording
    # converged probes agree with a much longer run of the same solver (the optimum is unique)
    assert linear_probe(x, y, max_iter=20000)['accuracy'] == full['accuracy']
