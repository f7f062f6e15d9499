"""Development-only: the confident-learning rule written in ``core.audit.findings`` flags and ranks what
cleanlab's reference implementation does (cleanlab is AGPL-3.0, so it is a development dependency only,
in requirements-dev.txt; the app never imports it)."""

import numpy as np
import pytest

from core.audit import findings

cleanlab_filter = pytest.importorskip("cleanlab.filter")


@pytest.mark.parametrize("seed", range(5))
def test_the_same_issues_in_the_same_order_as_cleanlab(seed):
    rng = np.random.default_rng(seed)
    n, k = 300, 4
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flip = rng.choice(n, 30, replace=False)
    given[flip] = (given[flip] + rng.integers(1, k, 30)) % k
    reference = cleanlab_filter.find_label_issues(
        given, probs, filter_by="confident_learning", return_indices_ranked_by="self_confidence", n_jobs=1
    )
    ours = findings.label_issues(given, probs)
    assert len(reference) > 10
    assert ours.rows.tolist() == reference.tolist()
